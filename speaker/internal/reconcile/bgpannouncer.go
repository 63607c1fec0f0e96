package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/bgp"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// BGPSpeaker is what bgpAnnouncer needs of speaker/bgp's Speaker.
type BGPSpeaker interface {
	Set(ctx context.Context, d bgp.Desired) error
	Status() []bgp.PeerStatus
	Changes() <-chan struct{}
	Close(ctx context.Context) error
}

// bgpAnnouncer adapts speaker/bgp to announcer. The GoBGP server is created
// only while this node has at least one BGPPeer, and closed when the last
// one goes, so a node without peers runs no BGP at all. Set, BGPSessions,
// Statuses and Close are called from the reconcile loop (and Close after
// it); Changes may be read from any goroutine.
type bgpAnnouncer struct {
	routerID netip.Addr
	log      *slog.Logger
	// newSpeaker starts a speaker (bgp.New in the daemon).
	newSpeaker func(bgp.Options) (BGPSpeaker, error)

	changes chan struct{}

	mu      sync.Mutex // guards sp and stop, read by the forwarder
	sp      BGPSpeaker
	stop    context.CancelFunc
	applied bgp.Desired
	ok      bool // applied was applied without error
}

func newBGPAnnouncer(routerID netip.Addr, log *slog.Logger, newSpeaker func(bgp.Options) (BGPSpeaker, error)) *bgpAnnouncer {
	return &bgpAnnouncer{routerID: routerID, log: log, newSpeaker: newSpeaker, changes: make(chan struct{}, 1)}
}

// Changes receives a value, coalesced, when a session's status changed:
// read BGPSessions and Statuses then.
func (b *bgpAnnouncer) Changes() <-chan struct{} { return b.changes }

func (b *bgpAnnouncer) notify() {
	select {
	case b.changes <- struct{}{}:
	default:
	}
}

// Set applies d's BGP part: this node's peers, and the addresses it
// advertises with their BGPAdvertisements.
func (b *bgpAnnouncer) Set(ctx context.Context, d decide.Desired) error {
	addrs := make(map[netip.Addr][]config.BGPAdvertisement, len(d.BGP))
	for a, e := range d.BGP {
		addrs[a] = e.Advertisements
	}
	want, err := bgp.DesiredFromModel(d.BGPPeers, addrs)
	if err != nil {
		return fmt.Errorf("speaker: bgp desired state: %w", err)
	}
	if b.ok && reflect.DeepEqual(want, b.applied) {
		return nil
	}
	b.mu.Lock()
	sp := b.sp
	b.mu.Unlock()
	if len(want.Peers) == 0 {
		if sp == nil {
			return nil
		}
		// Deconfigure the peers first, so the routers withdraw at once
		// (Close alone would leave graceful-restart routes stale).
		err := sp.Set(ctx, want)
		b.closeSpeaker(ctx)
		b.ok = false
		if err != nil {
			return fmt.Errorf("speaker: bgp: withdraw from the last peers: %w", err)
		}
		return nil
	}
	if sp == nil {
		sp, err = b.newSpeaker(bgp.Options{RouterID: b.routerID, Logger: b.log})
		if err != nil {
			return fmt.Errorf("speaker: bgp: start: %w", err)
		}
		fwdCtx, stop := context.WithCancel(context.Background())
		b.mu.Lock()
		b.sp, b.stop = sp, stop
		b.mu.Unlock()
		go b.forward(fwdCtx, sp.Changes())
	}
	err = sp.Set(ctx, want)
	b.applied, b.ok = want, err == nil
	if err != nil {
		return fmt.Errorf("speaker: bgp: %w", err)
	}
	return nil
}

// forward passes one speaker's change signals on until ctx is done.
func (b *bgpAnnouncer) forward(ctx context.Context, ch <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			b.notify()
		}
	}
}

func (b *bgpAnnouncer) closeSpeaker(ctx context.Context) {
	b.mu.Lock()
	sp, stop := b.sp, b.stop
	b.sp, b.stop = nil, nil
	b.mu.Unlock()
	if sp == nil {
		return
	}
	stop()
	if err := sp.Close(ctx); err != nil {
		b.log.Warn("stop BGP", "err", err)
	}
	b.notify()
}

// Close stops the BGP server, if one runs. Graceful-restart sessions are
// closed without a notification, so routers keep the routes while the
// speaker restarts.
func (b *bgpAnnouncer) Close(ctx context.Context) { b.closeSpeaker(ctx) }

// Statuses returns the sessions' statuses, nil when no server runs.
func (b *bgpAnnouncer) Statuses() []bgp.PeerStatus {
	b.mu.Lock()
	sp := b.sp
	b.mu.Unlock()
	if sp == nil {
		return nil
	}
	return sp.Status()
}

// BGPSessions returns the sessions as SpeakerStatus shows them.
func (b *bgpAnnouncer) BGPSessions() []v1alpha1.BGPSessionStatus {
	return sessionStatuses(b.Statuses())
}

// sessionStatuses maps the bgp package's statuses onto SpeakerStatus's.
// A configuration error takes precedence over the last session error.
func sessionStatuses(sts []bgp.PeerStatus) []v1alpha1.BGPSessionStatus {
	if len(sts) == 0 {
		return nil
	}
	out := make([]v1alpha1.BGPSessionStatus, len(sts))
	for i, st := range sts {
		s := v1alpha1.BGPSessionStatus{
			Peer: st.Name, State: string(st.State), BFDState: string(st.BFD),
			LastError: truncate(st.LastError, 1024), PrefixesAdvertised: int32(st.AdvertisedPrefixes),
		}
		if st.Address.IsValid() {
			s.PeerAddress = st.Address.String()
		}
		if st.ConfigError != "" {
			s.LastError = truncate(st.ConfigError, 1024)
		}
		if !st.Since.IsZero() {
			t := metav1.NewTime(st.Since.Truncate(time.Second))
			s.Since = &t
		}
		out[i] = s
	}
	return out
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
