package speaker

import (
	"net/netip"
	"time"
)

// ConflictOutcome is what a speaker does about another machine answering
// for an address it announces. The values are stable, for metric labels.
type ConflictOutcome string

// The outcomes of a layer-2 conflict.
const (
	// ConflictKept: this node outranks the other speaker; it keeps the
	// address and re-announces it so neighbours switch back.
	ConflictKept ConflictOutcome = "kept"
	// ConflictYielded: the other speaker outranks this node; this node stops
	// announcing the address and holds back.
	ConflictYielded ConflictOutcome = "yielded"
	// ConflictForeign: the other MAC belongs to no speaker; this node keeps
	// announcing (stepping back would hand the address to a device that is
	// not Herald's) and warns.
	ConflictForeign ConflictOutcome = "foreign"
)

// ResolveConflict decides a layer-2 conflict over addr between this node
// (self) and the node whose speaker owns the other MAC (other; known is
// false when the MAC belongs to no speaker). Both nodes reach opposite
// outcomes from Outranks alone, whatever their views of the cluster.
func ResolveConflict(addr netip.Addr, self, other string, known bool) ConflictOutcome {
	switch {
	case !known:
		return ConflictForeign
	case Outranks(addr, self, other):
		return ConflictKept
	default:
		return ConflictYielded
	}
}

// holdBack records the addresses this node yielded after losing a
// conflict. An address is held back (left out of the desired state even
// when this node's own election picks it) until one of:
//
//   - the winner, seen alive by membership at the conflict or since (a
//     restarted winner often claims its addresses a moment before this
//     node hears that it joined), is no longer alive: it crashed or left,
//     and this node must take over at once, as after any failure;
//   - hold has passed since the last conflict. This bounds the case where
//     membership cannot tell (a partition: the winner looks dead from here
//     although it still answers on the wire). If the winner still claims
//     the address when the hold ends, the next conflict yields again at
//     once; if it stopped (its view changed), this node takes over.
//
// holdBack is not safe for concurrent use; the speaker's reconcile
// goroutine owns it.
type holdBack struct {
	hold  time.Duration
	addrs map[netip.Addr]heldAddr
}

type heldAddr struct {
	winner string
	// winnerWasAlive is true once membership has seen the winner alive
	// since the conflict.
	winnerWasAlive bool
	until          time.Time
}

func newHoldBack(hold time.Duration) *holdBack {
	return &holdBack{hold: hold, addrs: map[netip.Addr]heldAddr{}}
}

// yield holds addr back in favour of winner from now on.
func (h *holdBack) yield(addr netip.Addr, winner string, winnerAlive bool, now time.Time) {
	h.addrs[addr] = heldAddr{winner: winner, winnerWasAlive: winnerAlive, until: now.Add(h.hold)}
}

// active forgets the holds that ended (see holdBack) and returns the
// addresses still held back, and the earliest time one ends (zero when none).
func (h *holdBack) active(alive map[string]bool, now time.Time) (map[netip.Addr]bool, time.Time) {
	out := map[netip.Addr]bool{}
	var next time.Time
	for a, s := range h.addrs {
		if !now.Before(s.until) || (s.winnerWasAlive && !alive[s.winner]) {
			delete(h.addrs, a)
			continue
		}
		if !s.winnerWasAlive && alive[s.winner] {
			s.winnerWasAlive = true
			h.addrs[a] = s
		}
		out[a] = true
		if next.IsZero() || s.until.Before(next) {
			next = s.until
		}
	}
	return out, next
}
