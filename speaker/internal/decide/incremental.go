package decide

import (
	"cmp"
	"maps"
	"net/netip"
	"reflect"
	"slices"
)

// Incremental computes the same desired state as Compute, but recomputes
// only the addresses of the Services that changed since its last call.
//
// It keeps the Services it last saw, per address the Services sharing it,
// and the desired state it last returned. Each call compares the Services
// it is given with the ones it kept (a change of addresses or their
// claims' pools, traffic policy, endpoints or kube-proxy withdrawals
// counts) and recomputes the addresses such a Service had or has, and the
// addresses held back or released since the last call. When anything that
// concerns every address changed (the node, the configuration model, the
// Nodes and their speakers, the interfaces, the data-plane verdicts), it
// recomputes everything.
// So it needs no hint from its caller: Compute(in) and Incremental.Compute(in)
// always agree (TestIncrementalMatchesCompute checks it on random
// sequences of changes).
//
// It keeps one copy of each: the Services are the caller's slice of the
// last call (a sorted clone when it came unsorted), and the desired state
// is the Desired it last returned, whose maps a later call copies before
// it changes them (only the maps it changes). So the caller must modify
// neither, and a caller that hands over the same sorted slice of
// unchanged Services, and keeps the last Desired, holds no second copy
// (kubeinput.Summaries and the reconcile loop do).
//
// Incremental is pure (no I/O, no clock); it is not safe for concurrent
// use.
type Incremental struct {
	valid bool
	// The inputs every address depends on, as last seen.
	self  string
	in    Inputs // Model, Interfaces, DataPlaneDown as last seen
	nodes []Node // sorted by name
	c     *addressComputer
	// services are the last call's Services, sorted by key (see
	// sortedServices); withdrawn their withdrawals, non-empty ones only.
	services  []Service
	withdrawn map[ServiceKey][]string
	sharers   map[netip.Addr][]ServiceKey // sorted
	// d is the desired state last returned; owned marks its maps this call
	// has copied already (see own).
	d          Desired
	owned      ownedMaps
	lastWasAll bool
}

// ownedMaps are bits, one per map of a Desired: the maps that Incremental
// made in the current call, so that it may write to them.
type ownedMaps uint8

const (
	ownedOwners ownedMaps = 1 << iota
	ownedSuccessors
	ownedLayer2
	ownedBGP
	ownedAll = ownedOwners | ownedSuccessors | ownedLayer2 | ownedBGP
)

// NewIncremental returns an Incremental whose first Compute computes everything.
func NewIncremental() *Incremental { return &Incremental{} }

// Reset makes the next Compute recompute everything (a periodic safety net).
func (c *Incremental) Reset() { c.valid = false }

// RecomputedAll reports whether the last Compute recomputed every address.
func (c *Incremental) RecomputedAll() bool { return c.lastWasAll }

// Compute returns in's desired state, equal to Compute(in). It keeps
// in.Services and the Desired it returns until the next call: the caller
// must not modify them (see Incremental).
func (c *Incremental) Compute(in Inputs) Desired {
	if in.Model == nil {
		c.valid = false
		c.lastWasAll = true
		return Compute(in)
	}
	nodes := slices.Clone(in.Nodes)
	slices.SortStableFunc(nodes, func(a, b Node) int { return cmp.Compare(a.State.Name, b.State.Name) })
	services, ok := sortedServices(in.Services)
	if !ok || !c.valid || !c.sameGlobals(in) {
		return c.full(in, nodes, services, ok)
	}
	changed, ok := changedNodes(c.nodes, nodes, in.Self)
	if !ok {
		return c.full(in, nodes, services, true)
	}
	c.lastWasAll = false
	c.owned = 0
	dirty := map[netip.Addr]bool{}
	if len(changed) > 0 {
		c.nodesChanged(in, nodes, changed, dirty)
	}
	c.servicesChanged(services, in.Withdrawn, dirty)
	c.c.in.Withdrawn = in.Withdrawn
	// Holding an address back changes only that address.
	for a, held := range in.Suppressed {
		if held != c.c.in.Suppressed[a] {
			dirty[a] = true
		}
	}
	for a, held := range c.c.in.Suppressed {
		if held != in.Suppressed[a] {
			dirty[a] = true
		}
	}
	c.c.in.Suppressed = maps.Clone(in.Suppressed)
	for addr := range dirty {
		c.apply(c.address(addr), addr)
	}
	c.owned = 0
	return c.d
}

// sortedServices returns services sorted by key: services itself when it
// is (the loop's summaries are), a sorted clone otherwise. It reports
// false when a key appears twice (Compute takes both; Incremental leaves
// that to it). Cost: O(S) when sorted, O(S log S) otherwise.
func sortedServices(services []Service) ([]Service, bool) {
	if !slices.IsSortedFunc(services, compareServices) {
		services = slices.Clone(services)
		slices.SortFunc(services, compareServices)
	}
	for i := 1; i < len(services); i++ {
		if services[i].Key == services[i-1].Key {
			return services, false
		}
	}
	return services, true
}

// servicesChanged compares services (sorted, unique) with the Services of
// the last call, keeps them, and marks dirty the addresses of those added,
// removed or changed (see sameService), and of those whose withdrawals
// changed. Cost: O(S) key comparisons, both lists being sorted.
func (c *Incremental) servicesChanged(services []Service, withdrawn map[ServiceKey][]string, dirty map[netip.Addr]bool) {
	old := c.services
	i, j := 0, 0
	for i < len(old) || j < len(services) {
		order := 0
		switch {
		case j == len(services):
			order = -1
		case i == len(old):
			order = 1
		default:
			order = CompareServiceKeys(old[i].Key, services[j].Key)
		}
		switch {
		case order < 0: // gone
			c.unshare(old[i], dirty)
			i++
		case order > 0: // new
			c.share(services[j], dirty)
			j++
		default:
			k := old[i].Key
			if !sameService(old[i], services[j]) || !slices.Equal(c.withdrawn[k], withdrawn[k]) {
				c.unshare(old[i], dirty)
				c.share(services[j], dirty)
			}
			i++
			j++
		}
	}
	c.services = services
	c.withdrawn = withdrawalsOf(services, withdrawn)
}

// withdrawalsOf returns a copy of the non-empty withdrawals of services.
func withdrawalsOf(services []Service, withdrawn map[ServiceKey][]string) map[ServiceKey][]string {
	out := map[ServiceKey][]string{}
	for k, w := range withdrawn {
		if len(w) == 0 {
			continue
		}
		if _, ok := SearchServices(services, k); ok {
			out[k] = slices.Clone(w)
		}
	}
	return out
}

// full recomputes everything and keeps what it needs for the next calls.
// services are in.Services sorted; unique reports that no key appears
// twice.
func (c *Incremental) full(in Inputs, nodes []Node, services []Service, unique bool) Desired {
	c.lastWasAll = true
	if !unique {
		// The same Service twice: not kept; Compute decides.
		c.valid = false
		return Compute(in)
	}
	c.valid = true
	c.self = in.Self
	c.in = in
	c.in.Services = nil
	c.in.Suppressed = maps.Clone(in.Suppressed)
	c.in.DataPlaneDown = maps.Clone(in.DataPlaneDown)
	c.in.Interfaces = slices.Clone(in.Interfaces)
	c.nodes = nodes
	c.c = newAddressComputer(c.in)
	c.services = services
	c.withdrawn = withdrawalsOf(services, in.Withdrawn)
	c.sharers = map[netip.Addr][]ServiceKey{}
	c.d = newDesired()
	c.owned = ownedAll
	c.d.BGPPeers, c.d.BGPPeersWithoutSource = peersForNode(in.Model, c.c.selfLabels, in.Interfaces)
	for _, s := range services {
		c.share(s, nil)
	}
	for addr := range c.sharers {
		c.apply(c.address(addr), addr)
	}
	c.owned = 0
	return c.d
}

// apply sets addr's entries in the desired state to r, as
// addressResult.apply does, copying each map before its first change in
// this call: the caller holds the Desired last returned (see Incremental).
// An entry that stays the same changes no map. Cost: O(A) for each map
// copied, A addresses; O(1) otherwise.
func (c *Incremental) apply(r addressResult, addr netip.Addr) {
	var l2 Layer2Entry
	if r.layer2 != nil {
		l2 = *r.layer2
	}
	var bgp BGPEntry
	if r.bgp != nil {
		bgp = *r.bgp
	}
	equal := func(a, b string) bool { return a == b }
	setEntry(c, ownedOwners, &c.d.Owners, addr, r.owner, r.hasOwner, equal)
	setEntry(c, ownedSuccessors, &c.d.Successors, addr, r.next, r.hasOwner, equal)
	setEntry(c, ownedLayer2, &c.d.Layer2, addr, l2, r.layer2 != nil, sameLayer2Entry)
	// A BGP entry is rewritten whenever there is one: comparing its
	// advertisements would cost about what copying the map does.
	setEntry(c, ownedBGP, &c.d.BGP, addr, bgp, r.bgp != nil, func(BGPEntry, BGPEntry) bool { return false })
}

// setEntry sets addr's entry of the map *m to v (has) or removes it (not
// has), unless it is so already (same). Before its first change in a
// call, it copies the map, which bit of c.owned names.
func setEntry[V any](c *Incremental, bit ownedMaps, m *map[netip.Addr]V, addr netip.Addr, v V, has bool, same func(a, b V) bool) {
	if old, had := (*m)[addr]; had == has && (!has || same(old, v)) {
		return
	}
	if c.owned&bit == 0 {
		c.owned |= bit
		*m = maps.Clone(*m)
	}
	if has {
		(*m)[addr] = v
	} else {
		delete(*m, addr)
	}
}

// sameLayer2Entry reports whether a and b are equal.
func sameLayer2Entry(a, b Layer2Entry) bool {
	return slices.Equal(a.Interfaces, b.Interfaces) && slices.Equal(a.Services, b.Services)
}

// service returns the Service k of the last call. Cost: O(log S).
func (c *Incremental) service(k ServiceKey) Service {
	i, _ := SearchServices(c.services, k)
	return c.services[i]
}

// address computes addr from the Services sharing it.
func (c *Incremental) address(addr netip.Addr) addressResult {
	keys := c.sharers[addr]
	group := make([]Service, 0, len(keys))
	for _, k := range keys {
		group = append(group, c.service(k))
	}
	return c.c.address(addr, addressPool(addr, group), group)
}

// share adds s to the sharers of its addresses and marks them dirty.
func (c *Incremental) share(s Service, dirty map[netip.Addr]bool) {
	for _, a := range s.Addresses {
		keys := c.sharers[a.Addr]
		i, found := slices.BinarySearchFunc(keys, s.Key, CompareServiceKeys)
		if !found {
			c.sharers[a.Addr] = slices.Insert(keys, i, s.Key)
		}
		if dirty != nil {
			dirty[a.Addr] = true
		}
	}
}

// unshare removes s from the sharers of its addresses and marks them dirty.
func (c *Incremental) unshare(s Service, dirty map[netip.Addr]bool) {
	for _, a := range s.Addresses {
		keys := c.sharers[a.Addr]
		if i, found := slices.BinarySearchFunc(keys, s.Key, CompareServiceKeys); found {
			keys = slices.Delete(slices.Clone(keys), i, i+1)
		}
		if len(keys) == 0 {
			delete(c.sharers, a.Addr)
		} else {
			c.sharers[a.Addr] = keys
		}
		dirty[a.Addr] = true
	}
}

// sameGlobals reports whether the inputs every address depends on, the
// Nodes aside (see changedNodes), are as the last full computation saw
// them.
func (c *Incremental) sameGlobals(in Inputs) bool {
	return in.Self == c.self &&
		in.Model == c.in.Model &&
		maps.Equal(in.DataPlaneDown, c.in.DataPlaneDown) &&
		reflect.DeepEqual(in.Interfaces, c.in.Interfaces)
}

// changedNodes returns the names of the nodes whose state differs between
// before and after (both sorted by name). It reports false when more than
// that changed: a Node added or removed, a Node's labels (which
// advertisements select it), or self's state; those recompute everything.
// A state change of another node (its speaker joining or leaving, a
// condition, a taint) only makes it usable or not, which nodesChanged
// knows how to narrow down. Cost: O(N) for N nodes.
func changedNodes(before, after []Node, self string) ([]string, bool) {
	if len(before) != len(after) {
		return nil, false
	}
	var changed []string
	for i, b := range before {
		a := after[i]
		if a.State.Name != b.State.Name || !maps.Equal(a.Labels, b.Labels) {
			return nil, false
		}
		if a.State != b.State {
			if a.State.Name == self {
				return nil, false
			}
			changed = append(changed, a.State.Name)
		}
	}
	return changed, true
}

// nodesChanged takes in the new Nodes, whose states differ from the last
// call's for the nodes changed only, and marks dirty the addresses whose
// part of the desired state those changes may affect (see affectedBy). It
// runs before the Services are compared, on the Services last seen: an
// address whose Services changed too is marked by them. Cost: O(N) to
// rebuild the node sets, plus O(A x C x (G + E)) for A addresses, C
// changed nodes, G sharers and E endpoints per sharer: no election over
// every node, unlike a full recompute's O(A x N).
func (c *Incremental) nodesChanged(in Inputs, nodes []Node, changed []string, dirty map[netip.Addr]bool) {
	var group []Service
	// By Service rather than by address: an address of one Service (the
	// common case) needs no look-up of its Service. A shared address is
	// taken once, with its first sharer.
	for _, s := range c.services {
		for _, a := range s.Addresses {
			addr := a.Addr
			keys := c.sharers[addr]
			if dirty[addr] || len(keys) == 0 || keys[0] != s.Key {
				continue
			}
			group = append(group[:0], s)
			for _, k := range keys[1:] {
				group = append(group, c.service(k))
			}
			for _, node := range changed {
				if c.affectedBy(addr, group, node) {
					dirty[addr] = true
					break
				}
			}
		}
	}
	c.nodes = nodes
	c.in.Nodes = in.Nodes
	prev := c.c.in
	prev.Nodes = in.Nodes
	c.c = newAddressComputer(prev)
}

// affectedBy reports whether addr's part of the desired state, as last
// computed for the Services of group (its sharers), may change when
// node becomes usable or stops being usable (self's own state never
// changes here: see changedNodes). It errs on the side of true.
//
//   - When no sharer is Local and, for several sharers, none has a
//     kube-proxy withdrawal, the candidates are the usable nodes (an
//     advertisement selects) whenever a sharer has an endpoint anywhere,
//     and the election ranks them by Score alone. So node matters when it
//     is the owner or the successor (it may be leaving), or when it would
//     come before the successor (it may be joining), or when there are
//     fewer than two candidates. Self's BGP entry depends only on self's
//     own usability and the endpoints. An address without a layer-2 owner
//     entry has no layer-2 advertisement whatever the nodes' states.
//   - Otherwise (a Local sharer, or sharers whose candidate sets differ by
//     their withdrawals, where SharedCandidates counts), a Local sharer's
//     eligible nodes are among the nodes of its endpoints: node matters
//     when it runs an endpoint of a sharer, or when a sharer is Cluster.
func (c *Incremental) affectedBy(addr netip.Addr, group []Service, node string) bool {
	local := false
	withdrawn := false
	for _, s := range group {
		local = local || s.TrafficPolicy == TrafficPolicyLocal
		withdrawn = withdrawn || len(c.withdrawn[s.Key]) > 0
	}
	if !local && (len(group) == 1 || !withdrawn) {
		owner, hasOwner := c.d.Owners[addr]
		if !hasOwner {
			return false
		}
		next := c.d.Successors[addr]
		return owner == "" || next == "" || node == owner || node == next || Outranks(addr, node, next)
	}
	for _, s := range group {
		if s.TrafficPolicy != TrafficPolicyLocal {
			return true
		}
		if slices.ContainsFunc(s.endpointsFor(addr), func(ep Endpoint) bool { return ep.NodeName == node }) {
			return true
		}
	}
	return false
}

// sameService reports whether a and b are the same as far as the desired
// state goes.
func sameService(a, b Service) bool {
	return a.Key == b.Key && a.TrafficPolicy == b.TrafficPolicy && a.HealthCheckNodePort == b.HealthCheckNodePort &&
		sameSlice(a.Addresses, b.Addresses) &&
		sameSlice(a.EndpointsV4, b.EndpointsV4) && sameSlice(a.EndpointsV6, b.EndpointsV6)
}

// sameSlice is slices.Equal, in O(1) when a and b are the same slice: an
// unchanged summary is handed over again with the same slices (see
// Incremental), which nobody modifies.
func sameSlice[E comparable](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}
