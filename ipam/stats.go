package ipam

import (
	"cmp"
	"net/netip"
	"slices"
)

// FamilyStats counts one family's addresses in a pool. Total excludes the
// addresses AvoidBuggyIPs skips; Used counts held addresses among Total;
// Free is Total minus Used.
type FamilyStats struct {
	Total, Used, Free Count
}

// PoolStats describes one configured pool.
type PoolStats struct {
	Name       string
	IPv4, IPv6 FamilyStats
	// Allocations is the number of allocations (owner and kind) counted in
	// the pool, as InUse reports.
	Allocations int
	// Outside is the number of addresses those allocations hold outside the
	// pool's usable addresses (see OutsidePool).
	Outside int
}

// Stats is a snapshot of the allocator's counters.
type Stats struct {
	// Pools lists the configured pools by name.
	Pools []PoolStats
	// Outside is the number of held addresses that are not usable addresses
	// of their allocation's pool, over all pools, including removed ones.
	Outside int
}

// Stats returns exact per-pool, per-family counts. Cost O(R + P log P + o)
// for o allocations outside their pool.
func (a *Allocator) Stats() Stats {
	a.mu.RLock()
	defer a.mu.RUnlock()
	outside := make(map[string]int)
	var st Stats
	for al := range a.outside {
		for _, id := range al.ids() {
			if a.outsideReason(al, id.addr()) != 0 {
				outside[a.poolName(al)]++
				st.Outside++
			}
		}
	}
	for _, p := range a.pools.ordered {
		ps := PoolStats{Name: p.spec.Name, Allocations: a.inUseOf(p.spec.Name), Outside: outside[p.spec.Name]}
		var used [2]Count
		for _, pr := range p.ranges {
			i := famIndex(pr.fam)
			used[i] = used[i].Add(countFrom128(pr.used.count()))
		}
		ps.IPv4 = FamilyStats{Total: p.total[0], Used: used[0], Free: p.total[0].Sub(used[0])}
		ps.IPv6 = FamilyStats{Total: p.total[1], Used: used[1], Free: p.total[1].Sub(used[1])}
		st.Pools = append(st.Pools, ps)
	}
	slices.SortFunc(st.Pools, func(x, y PoolStats) int { return cmp.Compare(x.Name, y.Name) })
	return st
}

// InUse returns the number of allocations counted in the named pool, whether
// or not the pool is still configured. A controller keeps a deleted pool's
// finalizer until it returns 0. Cost O(1).
func (a *Allocator) InUse(pool string) int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.inUseOf(pool)
}

func (a *Allocator) inUseOf(pool string) int {
	id, ok := a.poolIDs[pool]
	if !ok {
		return 0
	}
	return a.inUse[id]
}

// OutsideReason says why a held address is not a usable address of its
// allocation's pool.
type OutsideReason uint8

const (
	// OutsideAllPools: the address is in no configured pool (its pool was
	// removed or edited, or it was imported from outside every pool).
	OutsideAllPools OutsideReason = iota + 1
	// InAnotherPool: the address is in another pool than the allocation's
	// (a dual-stack allocation split across pools by an edit).
	InAnotherPool
	// AvoidedAddress: the address ends in .0 or .255 and the pool avoids those.
	AvoidedAddress
)

// String describes the reason in words.
func (r OutsideReason) String() string {
	switch r {
	case OutsideAllPools:
		return "not in any pool"
	case InAnotherPool:
		return "in another pool"
	case AvoidedAddress:
		return "ends in .0 or .255, which the pool avoids"
	}
	return "unknown"
}

func (a *Allocator) outsideReason(al *allocation, addr netip.Addr) OutsideReason {
	pr := a.pools.rangeOf(addr)
	switch {
	case pr == nil:
		return OutsideAllPools
	case pr.pool.spec.Name != a.poolName(al):
		return InAnotherPool
	case pr.avoid && avoided(addr):
		return AvoidedAddress
	}
	return 0
}

// Outside is a held address that is not a usable address of its allocation's
// pool. The allocator keeps it; the controller reports it.
type Outside struct {
	Owner  Owner
	Kind   Kind
	Addr   netip.Addr
	Pool   string
	Reason OutsideReason
}

// OutsidePool lists the held addresses outside their pool, ordered by pool,
// then address, then owner. Cost O(o log o) for o such addresses.
func (a *Allocator) OutsidePool() []Outside {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []Outside
	for al := range a.outside {
		for _, addr := range al.list() {
			if r := a.outsideReason(al, addr); r != 0 {
				out = append(out, Outside{Owner: al.owner(), Kind: al.kind, Addr: addr, Pool: a.poolName(al), Reason: r})
			}
		}
	}
	slices.SortFunc(out, func(x, y Outside) int {
		return cmp.Or(cmp.Compare(x.Pool, y.Pool), x.Addr.Compare(y.Addr),
			cmp.Compare(x.Owner.Namespace, y.Owner.Namespace), cmp.Compare(x.Owner.Name, y.Owner.Name),
			cmp.Compare(x.Kind, y.Kind))
	})
	return out
}

// Holder is one owner of an address.
type Holder struct {
	Owner Owner
	Kind  Kind
	// Pool is the pool the holder's allocation is counted in.
	Pool string
}

// Holding describes a held address.
type Holding struct {
	// Pool is the configured pool containing the address, or "".
	Pool string
	// Holders lists the owners holding the address, in the order they got it.
	Holders []Holder
}

// Lookup returns who holds addr, and false when nobody does. Cost O(log R + h).
func (a *Allocator) Lookup(addr netip.Addr) (Holding, bool) {
	addr = addr.Unmap()
	a.mu.RLock()
	defer a.mu.RUnlock()
	var h Holding
	a.forHolders(idOf(addr), func(al *allocation) bool {
		h.Holders = append(h.Holders, Holder{Owner: al.owner(), Kind: al.kind, Pool: a.poolName(al)})
		return true
	})
	if len(h.Holders) == 0 {
		return Holding{}, false
	}
	if p := a.pools.poolOf(addr); p != nil {
		h.Pool = p.spec.Name
	}
	return h, true
}

// Addresses returns what owner (by Namespace and Name) holds for kind, and
// false when it holds nothing. Cost O(1).
func (a *Allocator) Addresses(owner Owner, kind Kind) (Result, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	al := a.find(keyOf(owner, kind))
	if al == nil {
		return Result{}, false
	}
	res := Result{Pool: a.poolName(al), Addresses: al.list()}
	if s := a.shareOf(al); s != nil {
		res.Sharing = &Sharing{Key: s.key, BackendKey: s.backend, Ports: slices.Clone(s.ports), Namespaces: slices.Clone(s.namespaces)}
	}
	return res, true
}
