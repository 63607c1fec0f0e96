package reconcile

import (
	"context"
	"net/netip"
	"slices"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/layer2"
)

// announcer carries one protocol's share of this node's desired state out
// onto the network. Set takes the whole desired state every time and
// applies the difference itself; it must be idempotent and must not block
// for long (the reconcile loop calls every announcer in turn). Errors are
// logged and the next reconcile calls Set again.
//
// Layer 2 is layer2Announcer, BGP bgpAnnouncer (whose sessions, with the
// BGPPeers the configuration left out, appear in this node's
// SpeakerStatus; see bgpStatuses).
type announcer interface {
	Set(ctx context.Context, d decide.Desired) error
}

// layer2Announcer adapts layer2.Announcer to announcer. It skips Set when
// the layer-2 part is what it last applied without error: with thousands
// of addresses, rebuilding the Announcer's indexes on every reconcile costs
// more than comparing.
type layer2Announcer struct {
	a       *layer2.Announcer
	applied map[netip.Addr]decide.Layer2Entry
}

func (l *layer2Announcer) Set(ctx context.Context, d decide.Desired) error {
	if l.applied != nil && sameInterfaces(l.applied, d.Layer2) {
		return nil
	}
	err := l.a.Set(ctx, layer2Desired(d))
	l.applied = nil
	if err == nil {
		l.applied = d.Layer2
	}
	return err
}

// sameInterfaces reports whether a and b announce the same addresses on the
// same interfaces.
func sameInterfaces(a, b map[netip.Addr]decide.Layer2Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for addr, e := range a {
		f, ok := b[addr]
		if !ok || !slices.Equal(e.Interfaces, f.Interfaces) {
			return false
		}
	}
	return true
}

// layer2Desired returns the layer-2 part of d in the form
// layer2.Announcer.Set takes.
func layer2Desired(d decide.Desired) layer2.Desired {
	out := make(layer2.Desired, len(d.Layer2))
	for a, e := range d.Layer2 {
		out[a] = slices.Clone(e.Interfaces)
	}
	return out
}
