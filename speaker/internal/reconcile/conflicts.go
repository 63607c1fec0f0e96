package reconcile

import (
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/layer2"
)

// handleConflict resolves a layer-2 conflict reported by the announcer.
//
// This node yields only to a speaker whose node may announce the address
// in its own view (decide.Incremental.MayAnnounce), whatever that node's
// liveness: a node that may not keeps nothing by answering, and this node
// re-announces at once and warns (decide.ConflictNotCandidate).
//
// When membership says the other speaker is alive too, the two views
// differ only for the moment one of them takes to see the latest change
// (an endpoint moved, a node joined): the stale side is about to withdraw.
// So neither acts at once: the higher-ranked side re-asserts only if it
// still holds the address after conflictSettleKeep, and the lower-ranked
// side yields only if the other re-asserted (another conflict) before
// conflictSettleYield ends. When the other speaker is not alive in this
// view (a partition, a stale member list), the views may differ for long,
// and both act at once.
func (s *Loop) handleConflict(c layer2.Conflict) {
	if s.leaving.Load() {
		return
	}
	other, known := s.members.NodeForMAC(c.OtherMAC)
	if known && other == s.cfg.NodeName {
		return
	}
	outcome := decide.ResolveConflict(decide.ConflictParties{
		Addr: c.Addr, Self: s.cfg.NodeName, Other: other, OtherKnown: known,
		OtherIsCandidate: known && s.inc.MayAnnounce(c.Addr, other),
	})
	otherAlive := known && s.liveMembers()[other]
	s.log.Info("layer-2 conflict", "address", c.Addr, "interface", c.Interface, "otherMAC", c.OtherMAC.String(),
		"otherNode", other, "otherAlive", otherAlive, "evidence", string(c.Evidence), "outcome", string(outcome))
	// A device or node that may not announce the address gets no settle
	// time: there is no view of the cluster in which it is right.
	if !otherAlive || outcome == decide.ConflictForeign || outcome == decide.ConflictNotCandidate {
		s.settleConflict(c, other, outcome, otherAlive)
		return
	}
	now := time.Now()
	if p, ok := s.pending[c.Addr]; ok && p.other == other {
		p.seenAgain = true
		s.pending[c.Addr] = p
		return
	}
	delay := conflictSettleYield
	if outcome == decide.ConflictKept {
		delay = conflictSettleKeep
	}
	s.pending[c.Addr] = pendingConflict{conflict: c, other: other, outcome: outcome, at: now}
	time.AfterFunc(delay, func() {
		select {
		case s.settled <- c.Addr:
		default:
			s.changes.Poke()
		}
	})
}

// The settle times of a conflict with a live speaker (see handleConflict).
// The keeping side re-asserts after conflictSettleKeep; its gratuitous
// burst (0, 100 and 300 ms) reaches the yielding side well before
// conflictSettleYield, so the loser stops within about half a second.
const (
	conflictSettleKeep  = 150 * time.Millisecond
	conflictSettleYield = 450 * time.Millisecond
)

// pendingConflict is a conflict with a live speaker waiting to settle.
type pendingConflict struct {
	conflict  layer2.Conflict
	other     string
	outcome   decide.ConflictOutcome
	at        time.Time
	seenAgain bool
}

// settlePending acts on a pending conflict whose settle time has come.
func (s *Loop) settlePending(addr netip.Addr) {
	p, ok := s.pending[addr]
	if !ok {
		return
	}
	delete(s.pending, addr)
	if _, owned := s.prev.Layer2[addr]; !owned {
		s.log.Info("layer-2 conflict settled: this node no longer announces the address", "address", addr, "otherNode", p.other)
		return
	}
	if p.outcome == decide.ConflictYielded && !p.seenAgain {
		s.log.Info("layer-2 conflict settled: the other node withdrew", "address", addr, "otherNode", p.other)
		return
	}
	s.settleConflict(p.conflict, p.other, p.outcome, true)
}

// settleOverdue settles the pending conflicts whose settle time has passed
// (their timer could not reach the loop).
func (s *Loop) settleOverdue(now time.Time) {
	for a, p := range s.pending {
		delay := conflictSettleYield
		if p.outcome == decide.ConflictKept {
			delay = conflictSettleKeep
		}
		if now.Sub(p.at) >= delay {
			s.settlePending(a)
		}
	}
}

// settleConflict carries out a conflict's outcome.
func (s *Loop) settleConflict(c layer2.Conflict, other string, outcome decide.ConflictOutcome, otherAlive bool) {
	s.metrics.Conflicts.WithLabelValues(string(outcome)).Inc()
	keys := s.prev.Layer2[c.Addr].Services
	switch outcome {
	case decide.ConflictKept:
		s.l2.Reannounce(c.Addr)
		s.event(keys, corev1.EventTypeWarning, decide.EventAddressConflict, fmt.Sprintf(
			"Nodes %s and %s both answered for %s on %s; %s outranks %s for this address and keeps it.",
			s.cfg.NodeName, other, c.Addr, c.Interface, s.cfg.NodeName, other))
	case decide.ConflictYielded:
		s.held.Yield(c.Addr, other, otherAlive, time.Now())
		s.event(keys, corev1.EventTypeWarning, decide.EventAddressConflict, fmt.Sprintf(
			"Nodes %s and %s both answered for %s on %s; %s outranks %s for this address, so %s stops announcing it.",
			s.cfg.NodeName, other, c.Addr, c.Interface, other, s.cfg.NodeName, s.cfg.NodeName))
	case decide.ConflictNotCandidate:
		s.l2.Reannounce(c.Addr)
		s.event(keys, corev1.EventTypeWarning, decide.EventAddressConflict, fmt.Sprintf(
			"Node %s (MAC %s) answered for %s on %s, but it may not announce this address (no L2Advertisement of its pool selects it, it is excluded, or it has no endpoint that makes it eligible); node %s keeps announcing it. Check node %s.",
			other, c.OtherMAC, c.Addr, c.Interface, s.cfg.NodeName, other))
	case decide.ConflictForeign:
		s.event(keys, corev1.EventTypeWarning, decide.EventAddressConflict, fmt.Sprintf(
			"A device that is not a Herald speaker (MAC %s) answers for %s on %s; node %s keeps announcing it. Find the device and remove the address from it.",
			c.OtherMAC, c.Addr, c.Interface, s.cfg.NodeName))
	}
	s.log.Warn("layer-2 conflict resolved", "address", c.Addr, "otherNode", other, "outcome", string(outcome))
}

// drainConflicts handles the conflicts and settled conflicts already
// queued, so that a burst of them costs one reconcile rather than one
// each. (A speaker that started with a partial view of the membership
// claims addresses that others own; the other nodes then report hundreds
// of conflicts within a second, and one reconcile each kept the loop busy
// for tens of seconds at 10,000 Services.)
func (s *Loop) drainConflicts() {
	conflicts, _ := s.layer2Channels()
	for {
		select {
		case c := <-conflicts:
			s.handleConflict(c)
		case a := <-s.settled:
			s.settlePending(a)
		default:
			return
		}
	}
}
