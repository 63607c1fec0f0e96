package decide

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
	// ConflictYielded: the other speaker outranks this node and may announce
	// the address; this node stops announcing it and holds back.
	ConflictYielded ConflictOutcome = "yielded"
	// ConflictForeign: the other MAC belongs to no speaker; this node keeps
	// announcing (stepping back would hand the address to a device that is
	// not Herald's) and warns.
	ConflictForeign ConflictOutcome = "foreign"
	// ConflictNotCandidate: the other MAC belongs to a speaker whose node,
	// in this node's view, may not announce the address at all (no
	// L2Advertisement of its pool selects it, it is excluded, or it has no
	// endpoint that makes it eligible), whatever it outranks: this node
	// keeps announcing, re-announces and warns. Yielding would let a
	// compromised or misconfigured node take any address by answering for
	// it.
	ConflictNotCandidate ConflictOutcome = "notCandidate"
)

// ConflictParties are the two sides of a layer-2 conflict over Addr, as
// this node sees them.
type ConflictParties struct {
	Addr netip.Addr
	// Self is this node.
	Self string
	// Other is the node whose speaker owns the other MAC; OtherKnown is
	// false when the MAC belongs to no speaker.
	Other      string
	OtherKnown bool
	// OtherIsCandidate is whether, in this node's view, Other may announce
	// Addr (Incremental.MayAnnounce): a node an L2Advertisement of the
	// address's pool selects and that kube-proxy's rules make eligible for
	// the Services sharing it, whatever its speaker's liveness.
	OtherIsCandidate bool
}

// ResolveConflict decides a layer-2 conflict. This node yields only to a
// speaker that may announce the address and outranks it. Two candidates
// reach opposite outcomes from Outranks alone, whatever their views of the
// cluster's liveness; a node that is no candidate never takes the address
// by answering for it.
func ResolveConflict(p ConflictParties) ConflictOutcome {
	switch {
	case !p.OtherKnown:
		return ConflictForeign
	case !p.OtherIsCandidate:
		return ConflictNotCandidate
	case Outranks(p.Addr, p.Self, p.Other):
		return ConflictKept
	default:
		return ConflictYielded
	}
}

// HoldBack records the addresses this node yielded after losing a
// conflict. An address is held back (left out of the desired state even
// when this node's own election picks it) until one of:
//
//   - the winner, seen alive by membership at the conflict or since (a
//     restarted winner often claims its addresses a moment before this
//     node hears that it joined), is no longer alive: it crashed or left,
//     and this node must take over at once, as after any failure;
//   - the winner is alive here and the firm part of the hold has passed.
//     This node's election picks itself only when the winner is not
//     eligible in its view (its endpoint moved, kube-proxy says it cannot
//     serve), so the winner, whose membership view is the same, is about
//     to withdraw too. The firm part is 1 s, doubled for each new conflict
//     over the address within strikeMemory (up to hold): a winner that
//     keeps re-asserting from a stale view makes this node back off
//     further instead of flapping;
//   - hold has passed since the last conflict. This bounds the case where
//     membership cannot tell (a partition: the winner looks dead from here
//     although it still answers on the wire). If the winner still claims
//     the address when the hold ends, the next conflict yields again at
//     once; if it stopped (its view changed), this node takes over.
//
// HoldBack is not safe for concurrent use; the speaker's reconcile
// goroutine owns it.
type HoldBack struct {
	hold    time.Duration
	addrs   map[netip.Addr]heldAddr
	strikes map[netip.Addr]strike
}

type heldAddr struct {
	winner string
	// winnerWasAlive is true once membership has seen the winner alive
	// since the conflict.
	winnerWasAlive bool
	firmUntil      time.Time
	until          time.Time
}

// strike counts recent conflicts lost over an address.
type strike struct {
	n    int
	last time.Time
}

const (
	firmHold     = time.Second
	strikeMemory = 30 * time.Second
)

func NewHoldBack(hold time.Duration) *HoldBack {
	return &HoldBack{hold: hold, addrs: map[netip.Addr]heldAddr{}, strikes: map[netip.Addr]strike{}}
}

// Yield holds addr back in favour of winner from now on.
func (h *HoldBack) Yield(addr netip.Addr, winner string, winnerAlive bool, now time.Time) {
	st := h.strikes[addr]
	if now.Sub(st.last) > strikeMemory {
		st.n = 0
	}
	firm := firmHold << min(st.n, 16)
	st.n++
	st.last = now
	h.strikes[addr] = st
	h.addrs[addr] = heldAddr{winner: winner, winnerWasAlive: winnerAlive, firmUntil: now.Add(min(firm, h.hold)), until: now.Add(h.hold)}
}

// Active forgets the holds that ended (see HoldBack) and returns the
// addresses still held back, and the earliest time a hold may end (zero
// when none).
func (h *HoldBack) Active(alive map[string]bool, now time.Time) (map[netip.Addr]bool, time.Time) {
	out := map[netip.Addr]bool{}
	var next time.Time
	for a, st := range h.strikes {
		if now.Sub(st.last) > strikeMemory {
			delete(h.strikes, a)
		}
	}
	for a, s := range h.addrs {
		winnerAlive := alive[s.winner]
		if !now.Before(s.until) || (s.winnerWasAlive && !winnerAlive) || (winnerAlive && !now.Before(s.firmUntil)) {
			delete(h.addrs, a)
			continue
		}
		if !s.winnerWasAlive && winnerAlive {
			s.winnerWasAlive = true
			h.addrs[a] = s
		}
		out[a] = true
		end := s.until
		if winnerAlive {
			end = s.firmUntil
		}
		if next.IsZero() || end.Before(next) {
			next = end
		}
	}
	return out, next
}
