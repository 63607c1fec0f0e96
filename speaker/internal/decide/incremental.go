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
	if !c.valid || !c.sameGlobals(in, nodes) {
		return c.full(in, nodes)
	}
	c.lastWasAll = false
	c.gen++
	dirty := map[netip.Addr]bool{}
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

// sameGlobals reports whether the inputs every address depends on are as
// the last full computation saw them.
func (c *Incremental) sameGlobals(in Inputs, nodes []Node) bool {
	return in.Self == c.self &&
		in.Model == c.in.Model &&
		maps.Equal(in.DataPlaneDown, c.in.DataPlaneDown) &&
		reflect.DeepEqual(in.Interfaces, c.in.Interfaces) &&
		slices.EqualFunc(nodes, c.nodes, func(a, b Node) bool { return a.State == b.State && maps.Equal(a.Labels, b.Labels) })
}

// sameService reports whether a and b are the same as far as the desired
// state goes.
func sameService(a, b Service) bool {
	return a.Key == b.Key && a.TrafficPolicy == b.TrafficPolicy && a.HealthCheckNodePort == b.HealthCheckNodePort &&
		slices.Equal(a.Addresses, b.Addresses) &&
		slices.Equal(a.EndpointsV4, b.EndpointsV4) && slices.Equal(a.EndpointsV6, b.EndpointsV6)
}
