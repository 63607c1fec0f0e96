package reconcile

import (
	"context"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/membership"
	"github.com/herald-dev/herald/speaker/internal/probe"
)

// publishLocal publishes this node's MACs and kube-proxy verdicts in
// membership, and tells the probe loop what to probe.
func (s *Loop) publishLocal(services []decide.Service, macs []net.HardwareAddr) {
	s.probeMu.Lock()
	s.probeTargets = probe.Targets(services, s.cfg.NodeName)
	s.localMACs = macs
	// Started: this speaker reconciles, so one that starts beside it need
	// not wait for the others (decide.StartupWait).
	meta := membership.Meta{MACs: macs, DataPlaneDown: s.verdict.DataPlaneDown, Started: true}
	for _, k := range s.verdict.Withdrawn {
		meta.Withdrawn = append(meta.Withdrawn, membership.ServiceHash(k))
	}
	s.probeMu.Unlock()
	if err := s.members.SetLocal(meta); err != nil {
		s.log.Warn("publish member metadata", "err", err)
	}
}

// probeLoop probes kube-proxy and publishes what it says.
func (s *Loop) probeLoop(ctx context.Context) {
	p := probe.NewProber(s.cfg.NodeIP, s.cfg.KubeProxyHealthPort)
	tick := time.NewTicker(s.cfg.KubeProxyProbeInterval)
	defer tick.Stop()
	for {
		s.probeMu.Lock()
		targets := s.probeTargets
		prev := s.verdict
		s.probeMu.Unlock()
		v := p.Probe(ctx, targets)
		for k, n := range v.Results {
			s.metrics.KubeProxyProbes.WithLabelValues(k[0], k[1]).Add(float64(n))
		}
		if v.DataPlaneDown != prev.DataPlaneDown || !slices.Equal(v.Withdrawn, prev.Withdrawn) {
			s.log.Info("kube-proxy verdict changed", "dataPlaneDown", v.DataPlaneDown, "withdrawn", len(v.Withdrawn))
			s.probeMu.Lock()
			s.verdict = v
			s.probeMu.Unlock()
			s.changes.Poke()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// joinPeers joins the other Nodes' speakers that are not live members,
// and the extra addresses when this speaker is alone, a random batch of
// them at a time. It returns how many answered.
func (s *Loop) joinPeers(ctx context.Context, initial bool) int {
	return s.joinNodes(ctx, initial, nil)
}

// joinNodes is joinPeers limited to the Nodes that only accepts (nil:
// every Node).
func (s *Loop) joinNodes(ctx context.Context, initial bool, only func(name string) bool) int {
	alive := s.members.Alive()
	var targets []string
	nodes, _ := s.inf.Nodes.List(labels.Everything())
	for _, n := range nodes {
		if n.Name == s.cfg.NodeName || alive[n.Name] || only != nil && !only(n.Name) {
			continue
		}
		if a, ok := kubeinput.NodeAddress(n); ok {
			targets = append(targets, membership.JoinAddress(a.String(), s.cfg.MemberlistPort))
		}
	}
	if initial || len(alive) == 1 {
		targets = append(targets, s.cfg.MemberlistJoin...)
	}
	if len(targets) == 0 || ctx.Err() != nil {
		return 0
	}
	// One live member that answers hands over the whole membership (a
	// join is a full state exchange), so contacting every Node was O(N)
	// state exchanges of O(N) members each per speaker and round: every 2
	// s during churn, and at every speaker's start (issue 18). A batch of
	// joinBatch random targets per round; at start, batches until one
	// answers.
	for _, batch := range joinBatches(targets, joinBatch, rand.Shuffle) {
		if n := s.members.Join(batch); n > 0 || !initial || ctx.Err() != nil {
			return n
		}
	}
	return 0
}

// joinBatch is how many speakers a join round contacts at most.
const joinBatch = 4

// joinBatches returns targets, shuffled, in batches of at most size.
func joinBatches(targets []string, size int, shuffle func(n int, swap func(i, j int))) [][]string {
	targets = slices.Clone(targets)
	shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	var out [][]string
	for len(targets) > 0 {
		n := min(size, len(targets))
		out = append(out, targets[:n:n])
		targets = targets[n:]
	}
	return out
}

// joinLoop rejoins every 2 s: speakers that started later, and the other
// side after a partition healed (memberlist does not look for dead members
// by itself), a few at a time (joinPeers).
func (s *Loop) joinLoop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := s.joinPeers(ctx, false); n > 0 {
			s.log.Info("joined speakers", "contacted", n)
		}
	}
}

// janitorLoop marks the SpeakerStatus of speakers that membership lost as
// not ready, from the first live member by name only, once this speaker has
// been a member long enough to trust its view. It lists the records (from
// the API server) when the live members change, and every sweep interval
// for records of nodes that were never members.
func (s *Loop) janitorLoop(ctx context.Context) {
	const (
		settle = 10 * time.Second
		sweep  = 30 * time.Second
	)
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var marked map[string]bool // the live members at the last successful pass
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(start) < settle {
			continue
		}
		alive := s.members.Alive()
		names := make([]string, 0, len(alive))
		for n := range alive {
			names = append(names, n)
		}
		if slices.Min(names) != s.cfg.NodeName {
			marked = nil
			continue
		}
		if maps.Equal(alive, marked) && time.Since(last) < sweep {
			continue
		}
		if err := s.status.MarkGone(ctx, alive, time.Now()); err != nil {
			s.log.Warn("mark gone speakers", "err", err)
			continue
		}
		marked, last = alive, time.Now()
	}
}
