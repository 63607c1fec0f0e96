package decide

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/herald-dev/herald/config"
)

// Node is what the desired-state computation needs of one Node: its
// eligibility summary and its labels (which advertisements select it).
type Node struct {
	State  NodeState
	Labels map[string]string
}

// Inputs are everything one node's desired state depends on. Compute reads
// them only.
type Inputs struct {
	// Self is this node's name.
	Self string
	// Model is the validated configuration; nil announces nothing.
	Model *config.Model
	// Services are the Services with addresses this speaker serves.
	Services []Service
	// Nodes are all the cluster's Nodes, with SpeakerAlive from membership.
	Nodes []Node
	// Interfaces are this node's network interfaces.
	Interfaces []NodeInterface
	// Suppressed are addresses this node lost a layer-2 conflict for and
	// must not announce while the winner still claims them.
	Suppressed map[netip.Addr]bool
	// DataPlaneDown are nodes whose kube-proxy says they cannot serve at all
	// (node health check failing): they announce nothing.
	DataPlaneDown map[string]bool
	// Withdrawn are, per Service, nodes whose kube-proxy health check for
	// that Service says it has no local endpoint (externalTrafficPolicy
	// Local), whatever the EndpointSlices say.
	Withdrawn map[ServiceKey][]string
}

// Desired is one node's whole desired state. Announcers take it whole
// (Set) and apply the difference themselves.
type Desired struct {
	// Layer2 are the addresses this node answers ARP/NDP for.
	Layer2 map[netip.Addr]Layer2Entry
	// Owners maps every address that has a layer-2 advertisement to the node
	// elected to announce it, or "" when no node is eligible. It is the same
	// on every speaker that has the same view; the speaker uses it for
	// events and metrics.
	Owners map[netip.Addr]string
	// Successors maps every address of Owners to the node that takes it
	// over if its owner goes (the second node of its ranking), or "" when
	// there is none. The owner sends heartbeats to it, and it watches the
	// owner (package heartbeat): the one node that acts on the owner's
	// death is the one that learns of it first.
	Successors map[netip.Addr]string
	// BGP are the addresses this node advertises over BGP: every eligible
	// node advertises (ECMP at the router), not one elected node.
	BGP map[netip.Addr]BGPEntry
	// BGPPeers are the BGPPeers this node opens sessions with, sorted by name.
	BGPPeers []config.BGPPeer
	// BGPPeersWithoutSource are the BGPPeers that select this node but whose
	// sourceAddress, or interface (unnumbered peers), the node does not
	// have: it opens no session with them (and reports so), sorted by name.
	BGPPeersWithoutSource []config.BGPPeer
}

// Layer2Entry is one address announced at layer 2 from this node.
type Layer2Entry struct {
	// Interfaces are where the address is announced, sorted.
	Interfaces []string
	// Services are the Services sharing the address, sorted.
	Services []ServiceKey
}

// BGPEntry is one address advertised over BGP from this node.
type BGPEntry struct {
	// Services are the Services sharing the address, sorted.
	Services []ServiceKey
	// Advertisements are the BGPAdvertisements that advertise the address's
	// pool from this node, sorted by name; each says to which peers and
	// with which attributes (BGPAdvertisement.AdvertisesTo).
	Advertisements []config.BGPAdvertisement
	// Advertisers are all the nodes that advertise the address, this one
	// included, sorted, when Serving is not empty (nil otherwise). The
	// drain (BGPWithdrawals) compares them between two passes to learn
	// which node stopped. Shared: never modify it.
	Advertisers []string
	// Serving are the nodes, sorted, that run a serving endpoint (ready, or
	// terminating but serving) of a Local-policy Service of the address and
	// whose data plane is not down: a node among them that stops
	// advertising still serves the connections it holds.
	Serving []string
}

// Compute returns this node's desired state. For each address (Services
// sharing an address are taken together):
//
//   - The address's pool is its claim's, which the Services carry (see
//     Service.Addresses and addressPool), never the pool whose range holds
//     it now: a pool edit that leaves the address outside its pool, or
//     moves its range to another pool, changes nothing. An address of no
//     pool ("") is not announced.
//   - Layer 2: the candidate nodes are those an L2Advertisement of the pool
//     selects; EligibleNodes applies kube-proxy's rules to each sharer
//     (after removing nodes whose data plane is down or withdrawn for the
//     sharer); SharedCandidates combines the sharers; AnnouncingNode elects
//     one. When it is Self and the address is not Suppressed, the address
//     is announced on the interfaces ChooseInterfaces picks for each
//     advertisement (union), if any.
//   - BGP: the same eligibility over the nodes a BGPAdvertisement of the
//     pool selects; when Self is among them, the address is advertised with
//     Self's advertisements.
//
// Compute is pure and deterministic. Cost: O(S x (N + E)) for S Services,
// N nodes and E endpoints per Service, plus O(N x A) advertisement matches
// per pool.
func Compute(in Inputs) Desired {
	d := Desired{
		Layer2:     map[netip.Addr]Layer2Entry{},
		Owners:     map[netip.Addr]string{},
		Successors: map[netip.Addr]string{},
		BGP:        map[netip.Addr]BGPEntry{},
	}
	if in.Model == nil {
		return d
	}
	c := newAddressComputer(in)
	d.BGPPeers, d.BGPPeersWithoutSource = peersForNode(in.Model, c.selfLabels, in.Interfaces)

	// sharers groups the Services by address, in Service order.
	services := slices.Clone(in.Services)
	slices.SortFunc(services, func(a, b Service) int { return CompareServiceKeys(a.Key, b.Key) })
	sharers := map[netip.Addr][]int{}
	var addrs []netip.Addr
	for i, s := range services {
		for _, a := range s.Addresses {
			if _, seen := sharers[a.Addr]; !seen {
				addrs = append(addrs, a.Addr)
			}
			if !slices.Contains(sharers[a.Addr], i) {
				sharers[a.Addr] = append(sharers[a.Addr], i)
			}
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)

	var group []Service
	for _, addr := range addrs {
		group = group[:0]
		for _, i := range sharers[addr] {
			group = append(group, services[i])
		}
		c.address(addr, addressPool(addr, group), group).apply(d, addr)
	}
	return d
}

// newDesired returns an empty desired state whose maps are made.
func newDesired() Desired {
	return Desired{
		Layer2:     map[netip.Addr]Layer2Entry{},
		Owners:     map[netip.Addr]string{},
		Successors: map[netip.Addr]string{},
		BGP:        map[netip.Addr]BGPEntry{},
	}
}

// addressPool returns the pool whose advertisements announce addr: its
// claim's, as the Services sharing it (group, sorted by key) carry it. They
// all read it from the one claim of addr; should their summaries disagree
// for a moment (a claim replaced between two rebuilds), the first
// Service's decides, so that Compute and Incremental agree.
func addressPool(addr netip.Addr, group []Service) string {
	for _, s := range group {
		if i := slices.IndexFunc(s.Addresses, func(a config.ClaimedAddress) bool { return a.Addr == addr }); i >= 0 {
			return s.Addresses[i].Pool
		}
	}
	return ""
}

// addressComputer computes one address's part of a node's desired state.
// It memoises, per pool, which nodes the advertisements select, so it is
// valid only for the Inputs it was made for (their Services aside: those
// are passed per address).
type addressComputer struct {
	in         Inputs
	selfLabels map[string]string
	m          *matcher
}

func newAddressComputer(in Inputs) *addressComputer {
	c := &addressComputer{in: in}
	for _, n := range in.Nodes {
		if n.State.Name == in.Self {
			c.selfLabels = n.Labels
		}
	}
	nodes := slices.Clone(in.Nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.State.Name, b.State.Name) })
	c.m = newMatcher(in.Model, nodes, in.DataPlaneDown)
	return c
}

// addressResult is one address's part of a desired state.
type addressResult struct {
	hasOwner bool // the address has a layer-2 advertisement: Owners holds owner
	owner    string
	next     string // the owner's successor, "" for none
	layer2   *Layer2Entry
	bgp      *BGPEntry
}

// apply sets addr's entries in d to r (and removes those r does not have).
func (r addressResult) apply(d Desired, addr netip.Addr) {
	delete(d.Owners, addr)
	delete(d.Successors, addr)
	delete(d.Layer2, addr)
	delete(d.BGP, addr)
	if r.hasOwner {
		d.Owners[addr] = r.owner
		d.Successors[addr] = r.next
	}
	if r.layer2 != nil {
		d.Layer2[addr] = *r.layer2
	}
	if r.bgp != nil {
		d.BGP[addr] = *r.bgp
	}
}

// address computes addr's part of the desired state, announced with the
// advertisements of pool (its claim's); group are the Services that have
// addr, sorted by key (see Compute).
func (c *addressComputer) address(addr netip.Addr, pool string, group []Service) addressResult {
	var r addressResult
	in := c.in
	if pool == "" || len(group) == 0 {
		return r
	}
	keys := make([]ServiceKey, 0, len(group))
	for _, s := range group {
		keys = append(keys, s.Key)
	}

	if l2nodes := c.m.l2Nodes(pool); len(l2nodes.states) > 0 {
		candidates, nodeKeys := candidatesFor(addr, group, l2nodes, in)
		r.owner, r.next = announcingPair(addr, candidates, nodeKeys)
		r.hasOwner = true
		if r.owner != "" && (r.next == "" || len(group) > 1) {
			// Without the owner, sharers' candidates can widen (the nodes
			// serving most sharers change) and a Local Service can fall
			// back to serving-terminating endpoints: elect again. A lone
			// Service with two candidates keeps the rest in order.
			rest, _ := candidatesFor(addr, group, l2nodes.without(r.owner, in.DataPlaneDown), in)
			r.next, _ = AnnouncingNode(addr, rest)
		}
		if r.owner == in.Self && !in.Suppressed[addr] {
			if ifaces := interfacesFor(in.Interfaces, addr, in.Model.L2AdvertisementsFor(pool, c.selfLabels)); len(ifaces) > 0 {
				r.layer2 = &Layer2Entry{Interfaces: ifaces, Services: keys}
			}
		}
	}

	if bgpNodes := c.m.bgpNodes(pool); bgpNodes.isUsable[in.Self] {
		if candidates, _ := candidatesFor(addr, group, bgpNodes, in); slices.Contains(candidates, in.Self) {
			r.bgp = &BGPEntry{Services: keys, Advertisements: in.Model.BGPAdvertisementsFor(pool, c.selfLabels),
				Serving: servingNodes(addr, group, in.DataPlaneDown)}
			if len(r.bgp.Serving) > 0 {
				// Only the drain reads them, and only where a node serves
				// a Local sharer: a Cluster address's advertisers are
				// every usable node, which would tie each address to every
				// node's state (Incremental elects again only those a
				// changed node can affect).
				r.bgp.Advertisers = candidates
			}
		}
	}
	return r
}

// candidatesFor returns the nodes of set that may announce addr for all
// (or as many as possible) of its sharers, and their node keys when they
// are all of set's usable nodes (nil otherwise).
func candidatesFor(addr netip.Addr, sharers []Service, set nodeSet, in Inputs) ([]string, []uint64) {
	sets := make([][]string, 0, len(sharers))
	for _, svc := range sharers {
		eps := svc.endpointsFor(addr)
		if w := in.Withdrawn[svc.Key]; len(w) > 0 {
			usable := make([]NodeState, 0, len(set.states))
			for _, n := range set.states {
				if !slices.Contains(w, n.Name) {
					usable = append(usable, n)
				}
			}
			set = newNodeSet(usable, in.DataPlaneDown)
		}
		nodes, _ := set.eligible(svc.TrafficPolicy, eps)
		sets = append(sets, nodes)
	}
	if len(sets) == 1 {
		return sets[0], set.keysFor(sets[0])
	}
	return SharedCandidates(sets...), nil
}

// servingNodes returns, sorted, the nodes not in down that run a serving
// endpoint of addr's Local-policy sharers (nil when none is Local).
func servingNodes(addr netip.Addr, sharers []Service, down map[string]bool) []string {
	var out []string
	for _, svc := range sharers {
		if svc.TrafficPolicy != TrafficPolicyLocal {
			continue
		}
		for _, ep := range svc.endpointsFor(addr) {
			if ep.Serving && ep.NodeName != "" && !down[ep.NodeName] {
				out = append(out, ep.NodeName)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// interfacesFor returns the union of the interfaces each advertisement
// picks for addr.
func interfacesFor(ifaces []NodeInterface, addr netip.Addr, ads []config.L2Advertisement) []string {
	var out []string
	for _, ad := range ads {
		out = append(out, ChooseInterfaces(ifaces, addr, ad.Interfaces)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// matcher memoises, per pool, which nodes an advertisement selects.
type matcher struct {
	model *config.Model
	nodes []Node
	down  map[string]bool
	l2    map[string]nodeSet
	bgp   map[string]nodeSet
}

func newMatcher(m *config.Model, nodes []Node, down map[string]bool) *matcher {
	return &matcher{model: m, nodes: nodes, down: down, l2: map[string]nodeSet{}, bgp: map[string]nodeSet{}}
}

func (m *matcher) l2Nodes(pool string) nodeSet {
	if ns, ok := m.l2[pool]; ok {
		return ns
	}
	var states []NodeState
	for _, n := range m.nodes {
		if len(m.model.L2AdvertisementsFor(pool, n.Labels)) > 0 {
			states = append(states, n.State)
		}
	}
	m.l2[pool] = newNodeSet(states, m.down)
	return m.l2[pool]
}

func (m *matcher) bgpNodes(pool string) nodeSet {
	if ns, ok := m.bgp[pool]; ok {
		return ns
	}
	var states []NodeState
	for _, n := range m.nodes {
		if len(m.model.BGPAdvertisementsFor(pool, n.Labels)) > 0 {
			states = append(states, n.State)
		}
	}
	m.bgp[pool] = newNodeSet(states, m.down)
	return m.bgp[pool]
}
