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
// It keeps, per Service, the summary it last saw, and per address the
// Services sharing it and the address's part of the desired state. Each
// call compares the Services it is given with the ones it kept (a change
// of addresses or their claims' pools, traffic policy, endpoints or
// kube-proxy withdrawals counts) and recomputes the addresses such a Service had or has, and the
// addresses held back or released since the last call. When anything that
// concerns every address changed (the node, the configuration model, the
// Nodes and their speakers, the interfaces, the data-plane verdicts), it
// recomputes everything.
// So it needs no hint from its caller: Compute(in) and Incremental.Compute(in)
// always agree (TestIncrementalMatchesCompute checks it on random
// sequences of changes).
//
// Incremental is pure (no I/O, no clock); it is not safe for concurrent
// use. The Desired it returns is the caller's: later calls do not modify
// it.
type Incremental struct {
	valid bool
	// The inputs every address depends on, as last seen.
	self       string
	in         Inputs // Model, Interfaces, DataPlaneDown as last seen
	nodes      []Node // sorted by name
	c          *addressComputer
	gen        uint64
	services   map[ServiceKey]*incService
	sharers    map[netip.Addr][]ServiceKey // sorted
	d          Desired
	lastWasAll bool
}

type incService struct {
	svc       Service
	withdrawn []string
	gen       uint64
}

// NewIncremental returns an Incremental whose first Compute computes everything.
func NewIncremental() *Incremental { return &Incremental{} }

// Reset makes the next Compute recompute everything (a periodic safety net).
func (c *Incremental) Reset() { c.valid = false }

// RecomputedAll reports whether the last Compute recomputed every address.
func (c *Incremental) RecomputedAll() bool { return c.lastWasAll }

// Compute returns in's desired state, equal to Compute(in).
func (c *Incremental) Compute(in Inputs) Desired {
	if in.Model == nil {
		c.valid = false
		c.lastWasAll = true
		return Compute(in)
	}
	nodes := slices.Clone(in.Nodes)
	slices.SortStableFunc(nodes, func(a, b Node) int { return cmp.Compare(a.State.Name, b.State.Name) })
	if !c.valid || !c.sameGlobals(in) {
		return c.full(in, nodes)
	}
	changed, ok := changedNodes(c.nodes, nodes, in.Self)
	if !ok {
		return c.full(in, nodes)
	}
	c.lastWasAll = false
	c.gen++
	dirty := map[netip.Addr]bool{}
	if len(changed) > 0 {
		c.nodesChanged(in, nodes, changed, dirty)
	}
	seen := 0
	for _, s := range in.Services {
		w := in.Withdrawn[s.Key]
		old, ok := c.services[s.Key]
		if ok && old.gen == c.gen {
			// The same Service twice: Compute takes both; keep it simple.
			return c.full(in, nodes)
		}
		seen++
		if ok && sameService(old.svc, s) && slices.Equal(old.withdrawn, w) {
			old.gen = c.gen
			continue
		}
		if ok {
			c.unshare(old.svc, dirty)
		}
		c.services[s.Key] = &incService{svc: s, withdrawn: slices.Clone(w), gen: c.gen}
		c.share(s, dirty)
	}
	if seen != len(c.services) {
		for k, old := range c.services {
			if old.gen != c.gen {
				c.unshare(old.svc, dirty)
				delete(c.services, k)
			}
		}
	}
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
		c.address(addr).apply(c.d, addr)
	}
	return c.result()
}

// full recomputes everything and keeps what it needs for the next calls.
func (c *Incremental) full(in Inputs, nodes []Node) Desired {
	c.valid = true
	c.lastWasAll = true
	c.self = in.Self
	c.in = in
	c.in.Services = nil
	c.in.Suppressed = maps.Clone(in.Suppressed)
	c.in.DataPlaneDown = maps.Clone(in.DataPlaneDown)
	c.in.Interfaces = slices.Clone(in.Interfaces)
	c.nodes = nodes
	c.c = newAddressComputer(c.in)
	c.gen++
	c.services = make(map[ServiceKey]*incService, len(in.Services))
	c.sharers = map[netip.Addr][]ServiceKey{}
	c.d = newDesired()
	c.d.BGPPeers, c.d.BGPPeersWithoutSource = peersForNode(in.Model, c.c.selfLabels, in.Interfaces)
	for _, s := range in.Services {
		if _, dup := c.services[s.Key]; dup {
			// The same Service twice: not kept; Compute decides.
			c.valid = false
			return Compute(in)
		}
		c.services[s.Key] = &incService{svc: s, withdrawn: slices.Clone(in.Withdrawn[s.Key]), gen: c.gen}
		c.share(s, nil)
	}
	for addr := range c.sharers {
		c.address(addr).apply(c.d, addr)
	}
	return c.result()
}

// result returns a copy of the current desired state that later calls
// leave alone (entries are replaced, never modified, so a shallow copy
// does).
func (c *Incremental) result() Desired {
	d := Desired{
		Layer2:     maps.Clone(c.d.Layer2),
		Owners:     maps.Clone(c.d.Owners),
		Successors: maps.Clone(c.d.Successors),
		BGP:        maps.Clone(c.d.BGP),
		BGPPeers:   slices.Clone(c.d.BGPPeers),
	}
	d.BGPPeersWithoutSource = slices.Clone(c.d.BGPPeersWithoutSource)
	return d
}

// address computes addr from the Services sharing it.
func (c *Incremental) address(addr netip.Addr) addressResult {
	keys := c.sharers[addr]
	group := make([]Service, 0, len(keys))
	for _, k := range keys {
		group = append(group, c.services[k].svc)
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
	var group []*incService
	for addr, keys := range c.sharers {
		if dirty[addr] {
			continue
		}
		group = group[:0]
		for _, k := range keys {
			group = append(group, c.services[k])
		}
		for _, node := range changed {
			if c.affectedBy(addr, group, node) {
				dirty[addr] = true
				break
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
func (c *Incremental) affectedBy(addr netip.Addr, group []*incService, node string) bool {
	local := false
	withdrawn := false
	for _, s := range group {
		local = local || s.svc.TrafficPolicy == TrafficPolicyLocal
		withdrawn = withdrawn || len(s.withdrawn) > 0
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
		if s.svc.TrafficPolicy != TrafficPolicyLocal {
			return true
		}
		if slices.ContainsFunc(s.svc.endpointsFor(addr), func(ep Endpoint) bool { return ep.NodeName == node }) {
			return true
		}
	}
	return false
}

// sameService reports whether a and b are the same as far as the desired
// state goes.
func sameService(a, b Service) bool {
	return a.Key == b.Key && a.TrafficPolicy == b.TrafficPolicy && a.HealthCheckNodePort == b.HealthCheckNodePort &&
		slices.Equal(a.Addresses, b.Addresses) &&
		slices.Equal(a.EndpointsV4, b.EndpointsV4) && slices.Equal(a.EndpointsV6, b.EndpointsV6)
}
