package decide

import (
	"net/netip"
	"slices"
	"time"
)

// Drain is a layer-2 address this node took over from a node that is still
// up. For a while after the move, the packets of connections this node has
// no connection-tracking state for (TCP segments without SYN that begin a
// flow here) are not handed to kube-proxy, which would pick them up
// mid-stream and NAT them to a pod that knows nothing of them (the client
// gets a reset): they are forwarded to the previous owner, whose kube-proxy
// and connection tracking still hold them (docs/figures.md, "Planned
// moves").
type Drain struct {
	Addr netip.Addr
	// Node is the previous owner and Via its node address, the next hop.
	Node string
	Via  netip.Addr
	// Until is when the drain ends.
	Until time.Time
}

// DrainInputs are what PlanDrains decides from.
type DrainInputs struct {
	// Self is this node.
	Self string
	// Now is the time of the pass, and Window how long a drain lasts.
	Now    time.Time
	Window time.Duration
	// Previous are the drains of the last pass.
	Previous []Drain
	// Changes are this pass's layer-2 ownership changes (OwnershipChanges
	// of the last and this desired state).
	Changes []OwnershipChange
	// Layer2 are the addresses this node announces in this pass.
	Layer2 map[netip.Addr]Layer2Entry
	// NodeAddrs are the nodes' addresses, at least those of the
	// previous owners in Changes (see DrainCandidates).
	NodeAddrs map[string]netip.Addr
	// Down are the nodes known to be down: presumed dead by the fast
	// failure detector, or whose kernel did not answer an echo request.
	// Forwarding to them would turn a reset into a black hole.
	Down map[string]bool
}

// DrainCandidates returns the previous owners of the addresses gained in
// changes (other nodes only), sorted and without duplicates: the nodes whose
// liveness and address PlanDrains needs.
func DrainCandidates(self string, changes []OwnershipChange) []string {
	var out []string
	for _, c := range changes {
		if c.Gained && c.Previous != "" && c.Previous != self {
			out = append(out, c.Previous)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PlanDrains returns this node's drains, sorted by address, and when the
// first of them ends (the zero time when there is none):
//
//   - an address gained from another node that is not Down, whose address
//     (of the same family) is known, drains to it for Window from Now,
//     replacing any drain of that address;
//   - a drain of the last pass goes on until its end, unless this node no
//     longer announces the address (the new owner drains, not this node)
//     or its node is now Down.
//
// PlanDrains is pure. Cost: O((C + P) log (C + P)) for C changes and P
// previous drains.
func PlanDrains(in DrainInputs) ([]Drain, time.Time) {
	byAddr := map[netip.Addr]Drain{}
	for _, d := range in.Previous {
		if _, owned := in.Layer2[d.Addr]; owned && in.Now.Before(d.Until) && !in.Down[d.Node] {
			byAddr[d.Addr] = d
		}
	}
	for _, c := range in.Changes {
		if !c.Gained || c.Previous == "" || c.Previous == in.Self || in.Down[c.Previous] || in.Window <= 0 {
			continue
		}
		if _, owned := in.Layer2[c.Addr]; !owned {
			continue
		}
		via, ok := in.NodeAddrs[c.Previous]
		if !ok || !via.IsValid() || via.Is4() != c.Addr.Is4() {
			continue
		}
		byAddr[c.Addr] = Drain{Addr: c.Addr, Node: c.Previous, Via: via, Until: in.Now.Add(in.Window)}
	}
	out := make([]Drain, 0, len(byAddr))
	var next time.Time
	for _, d := range byAddr {
		out = append(out, d)
		if next.IsZero() || d.Until.Before(next) {
			next = d.Until
		}
	}
	slices.SortFunc(out, func(a, b Drain) int { return a.Addr.Compare(b.Addr) })
	return out, next
}

// StartChanges returns the ownership changes of the first desired state
// after this node's speaker started, which has no previous one: while the
// speaker was away, each address it announces now was announced by the
// next node of the address's ranking, its successor (Desired.Successors),
// and moves from it. Sorted by address.
func StartChanges(d Desired, self string) []OwnershipChange {
	var out []OwnershipChange
	for a, e := range d.Layer2 {
		p := d.Successors[a]
		if p == self {
			p = ""
		}
		out = append(out, OwnershipChange{Addr: a, Gained: true, Previous: p, Next: self, Services: e.Services, Interfaces: e.Interfaces})
	}
	slices.SortFunc(out, func(x, y OwnershipChange) int { return x.Addr.Compare(y.Addr) })
	return out
}
