package reconcile

import (
	"net/netip"
	"slices"
	"time"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// Drainer programs this node's drains (package drain).
type Drainer interface {
	Set([]decide.Drain) error
}

// KernelsUp asks the kernels of nodes (by name, at their address) whether
// they are up, and returns those that answered within a short time.
type KernelsUp func(nodes map[string]netip.Addr) map[string]bool

// SetDrain turns the drain on, before Run: d programs the drains and up
// asks previous owners' kernels whether they are up.
func (s *Loop) SetDrain(d Drainer, up KernelsUp) {
	s.drainer, s.kernelsUp = d, up
}

// planDrains decides and programs this node's drains for desired state d,
// before the announcers apply it: the previous owner of a layer-2 address
// this node takes, and a node that stops advertising a BGP address this node
// goes on advertising, keep receiving the connections they held
// (decide.PlanDrains). It runs only when the drain is on (Deps.Drainer).
func (s *Loop) planDrains(d decide.Desired, now time.Time) {
	var changes []decide.OwnershipChange
	var withdrawals []decide.Withdrawal
	if s.prev.Owners == nil {
		changes = decide.StartChanges(d, s.cfg.NodeName)
	} else {
		changes = decide.OwnershipChanges(s.prev, d, s.cfg.NodeName)
		withdrawals = decide.BGPWithdrawals(s.prev, d, s.cfg.NodeName)
	}
	down := map[string]bool{}
	if s.fast != nil {
		for n := range s.fast.Dead() {
			down[n] = true
		}
	}
	in := decide.DrainInputs{
		Self: s.cfg.NodeName, Now: now, Window: s.cfg.DrainWindow, Previous: s.drains,
		Changes: changes, Withdrawals: withdrawals, Layer2: d.Layer2, BGP: d.BGP, Down: down,
	}
	candidates := decide.DrainCandidates(in)
	addrs := map[string]netip.Addr{}
	for _, n := range candidates {
		if down[n] {
			continue
		}
		if node, err := s.inf.Nodes.Get(n); err == nil {
			if a, ok := kubeinput.NodeAddress(node); ok {
				addrs[n] = a
			}
		}
	}
	if len(addrs) > 0 && s.kernelsUp != nil {
		up := s.kernelsUp(addrs)
		for n := range addrs {
			if !up[n] {
				down[n] = true
			}
		}
	}
	in.NodeAddrs = addrs
	drains, next := decide.PlanDrains(in)
	s.drainT = rearm(s.drainT, next, s.changes.Poke)
	for _, dr := range drains {
		if !slices.Contains(s.drains, dr) {
			s.log.Info("draining connections of a moved address to its previous node", "address", dr.Addr, "previous", dr.Node, "via", dr.Via, "until", dr.Until)
		}
	}
	for _, n := range candidates {
		if down[n] {
			s.log.Info("not draining to a previous node that is down", "previous", n)
		}
	}
	s.drains = drains
	s.metrics.DrainedAddresses.Set(float64(len(drains)))
	if err := s.drainer.Set(drains); err != nil {
		s.metrics.DrainErrors.Inc()
		s.log.Warn("program drains", "err", err)
	}
}
