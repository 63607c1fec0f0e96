package speaker

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/membership"
	"github.com/herald-dev/herald/speaker/internal/report"
)

// keyDirInterval is how often the mounted gossip key Secret is read. The
// kubelet takes up to about a minute to update the files after the Secret
// changed; a second more costs nothing.
const keyDirInterval = time.Second

// gossipKeys keeps membership's keyring on the gossip key Secret mounted
// in dir (empty: a fixed key, or none) and reports the keyring in the
// SpeakerStatus and the metrics.
type gossipKeys struct {
	dir     string
	log     *slog.Logger
	members *membership.Membership
	status  *report.StatusWriter
	changed chan struct{}

	mu      sync.Mutex
	read    map[string][]byte // the directory's content last read
	problem string            // why read is not applied, "" when it is
}

// loadGossipKeys reads the keys membership starts with: from the mounted
// Secret (cfg.MemberlistKeysDir), else from a fixed key file, else none.
func loadGossipKeys(cfg Config, log *slog.Logger) (*gossipKeys, membership.KeySet, error) {
	g := &gossipKeys{dir: cfg.MemberlistKeysDir, log: log, changed: make(chan struct{}, 1)}
	switch {
	case g.dir != "":
		entries, err := membership.ReadKeyDir(g.dir)
		if err != nil {
			return nil, membership.KeySet{}, err
		}
		ks, err := membership.ParseKeySet(entries)
		if err != nil {
			return nil, membership.KeySet{}, err
		}
		g.read = entries
		return g, ks, nil
	case cfg.MemberlistSecretKeyFile != "":
		key, err := readSecretKey(cfg.MemberlistSecretKeyFile)
		if err != nil {
			return nil, membership.KeySet{}, err
		}
		return g, membership.SingleKey(key), nil
	}
	return g, membership.KeySet{}, nil
}

// poke tells run that membership's keyring changed; it never blocks.
func (g *gossipKeys) poke() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// report returns the keyring for the status and the metrics, nil without
// encryption.
func (g *gossipKeys) report() *v1alpha1.GossipKeyStatus {
	if g.members == nil {
		return nil
	}
	ks := g.members.KeyStatus()
	if ks.Primary == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return &v1alpha1.GossipKeyStatus{Primary: ks.Primary, Installed: ks.Installed, Waiting: ks.Waiting, SecretProblem: g.problem}
}

// run rereads the directory every keyDirInterval and applies a changed
// Secret, and hands the keyring to the status writer whenever it changed,
// until ctx is done.
func (g *gossipKeys) run(ctx context.Context) {
	g.status.SetGossipKeys(g.report())
	tick := time.NewTicker(keyDirInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.changed:
		case <-tick.C:
			if g.dir == "" || !g.reread() {
				continue
			}
		}
		g.status.SetGossipKeys(g.report())
	}
}

// reread reads the directory and, when it changed, applies it. It reports
// whether anything the status shows may have changed.
func (g *gossipKeys) reread() bool {
	entries, err := membership.ReadKeyDir(g.dir)
	if err != nil {
		g.setProblem(err.Error())
		return true
	}
	g.mu.Lock()
	same := maps.EqualFunc(entries, g.read, bytes.Equal)
	g.read = entries
	g.mu.Unlock()
	if same {
		return false
	}
	ks, err := membership.ParseKeySet(entries)
	if err == nil {
		err = g.members.SetKeys(ks)
	}
	if err != nil {
		g.setProblem(err.Error())
		return true
	}
	g.setProblem("")
	g.log.Info("gossip key Secret changed", "primaryEntry", ks.Primary, "keys", len(ks.Keys))
	return true
}

func (g *gossipKeys) setProblem(p string) {
	g.mu.Lock()
	changed := g.problem != p
	g.problem = p
	g.mu.Unlock()
	if changed && p != "" {
		g.log.Warn("gossip key Secret not applied; keeping the keys in use", "problem", p)
	}
}
