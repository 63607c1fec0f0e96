package decide

import (
	"net/netip"
	"slices"
	"time"
)

// Drain is an address whose connections moved to this node from a node that
// is still up: a layer-2 address this node took over, or a BGP address
// another node stopped advertising while this one goes on (the router
// rehashes that node's flows onto the others). For a while after the move,
// the packets of connections this node has no connection-tracking state for
// (TCP segments without SYN that begin a flow here) are not handed to
// kube-proxy, which would pick them up mid-stream and NAT them to a pod that
// knows nothing of them (the client gets a reset): they are forwarded to the
// previous node, whose kube-proxy and connection tracking still hold them
// (docs/figures.md, "Planned moves").
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
	// Withdrawals are this pass's BGP moves (BGPWithdrawals of the last and
	// this desired state).
	Withdrawals []Withdrawal
	// Layer2 and BGP are the addresses this node announces in this pass.
	Layer2 map[netip.Addr]Layer2Entry
	BGP    map[netip.Addr]BGPEntry
	// NodeAddrs are the nodes' addresses, at least those of the
	// previous owners in Changes (see DrainCandidates).
	NodeAddrs map[string]netip.Addr
	// Down are the nodes known to be down: presumed dead by the fast
	// failure detector, or whose kernel did not answer an echo request.
	// Forwarding to them would turn a reset into a black hole.
	Down map[string]bool
}

// Withdrawal is a BGP address that Node stopped advertising while this node
// goes on advertising it.
type Withdrawal struct {
	Addr netip.Addr
	Node string
}

// BGPWithdrawals compares two consecutive desired states of node self and
// returns, sorted by address, the addresses self advertises in both that
// exactly one other node stopped advertising while it still serves them
// (BGPEntry.Serving: a Local Service's last ready endpoint there turned
// terminating but serving, or its speaker stopped with its pods running).
//
// When several nodes stop advertising an address in the same pass, the
// router rehashes the flows of each onto the nodes left, and nothing here
// tells whose a flow was: no withdrawal is returned, and those connections
// may be reset as without the drain. A node that begins advertising an
// address returns none either (it cannot tell from which node its flows
// came). Cost: O(A x N) for A addresses and N advertisers each.
func BGPWithdrawals(prev, next Desired, self string) []Withdrawal {
	var out []Withdrawal
	for a, e := range next.BGP {
		p, had := prev.BGP[a]
		if !had {
			continue
		}
		var gone []string
		for _, n := range p.Advertisers {
			if n != self && !slices.Contains(e.Advertisers, n) {
				gone = append(gone, n)
			}
		}
		if len(gone) == 1 && slices.Contains(e.Serving, gone[0]) {
			out = append(out, Withdrawal{Addr: a, Node: gone[0]})
		}
	}
	slices.SortFunc(out, func(x, y Withdrawal) int { return x.Addr.Compare(y.Addr) })
	return out
}

// drainMove is one move PlanDrains may drain: addr's connections came from
// node.
type drainMove struct {
	addr netip.Addr
	node string
}

// moves returns the moves of in that concern an address this node announces
// now: the BGP withdrawals, then the layer-2 addresses gained from another
// node (which win when an address is both).
func (in DrainInputs) moves() []drainMove {
	var out []drainMove
	for _, w := range in.Withdrawals {
		if _, ok := in.BGP[w.Addr]; ok && w.Node != "" && w.Node != in.Self {
			out = append(out, drainMove{w.Addr, w.Node})
		}
	}
	for _, c := range in.Changes {
		if _, ok := in.Layer2[c.Addr]; ok && c.Gained && c.Previous != "" && c.Previous != in.Self {
			out = append(out, drainMove{c.Addr, c.Previous})
		}
	}
	return out
}

// DrainCandidates returns the nodes the moves of in came from (other nodes
// only), sorted and without duplicates: the nodes whose liveness and address
// PlanDrains needs. Only Self, Changes, Withdrawals, Layer2 and BGP are read.
func DrainCandidates(in DrainInputs) []string {
	var out []string
	for _, m := range in.moves() {
		out = append(out, m.node)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PlanDrains returns this node's drains, sorted by address, and when the
// first of them ends (the zero time when there is none):
//
//   - an address moved here from another node that is not Down, whose
//     address (of the same family) is known, drains to it for Window from
//     Now, replacing any drain of that address: a layer-2 address gained
//     from it (Changes), or a BGP address it stopped advertising
//     (Withdrawals); a layer-2 move wins over a BGP one of the same address;
//   - a drain of the last pass goes on until its end, unless this node no
//     longer announces the address, at layer 2 or over BGP (at layer 2, the
//     new owner drains, not this node), or its node is now Down.
//
// PlanDrains is pure. Cost: O((C + W + P) log (C + W + P)) for C changes,
// W withdrawals and P previous drains.
func PlanDrains(in DrainInputs) ([]Drain, time.Time) {
	byAddr := map[netip.Addr]Drain{}
	for _, d := range in.Previous {
		_, l2 := in.Layer2[d.Addr]
		_, bgp := in.BGP[d.Addr]
		if (l2 || bgp) && in.Now.Before(d.Until) && !in.Down[d.Node] {
			byAddr[d.Addr] = d
		}
	}
	for _, m := range in.moves() {
		if in.Down[m.node] || in.Window <= 0 {
			continue
		}
		via, ok := in.NodeAddrs[m.node]
		if !ok || !via.IsValid() || via.Is4() != m.addr.Is4() {
			continue
		}
		byAddr[m.addr] = Drain{Addr: m.addr, Node: m.node, Via: via, Until: in.Now.Add(in.Window)}
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
