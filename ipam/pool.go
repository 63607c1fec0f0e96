package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"go4.org/netipx"
)

// pool is one configured pool with its ranges.
type pool struct {
	spec PoolSpec
	// ranges are the pool's ranges, IPv4 first, each family in address order.
	ranges []*poolRange
	// total is the number of usable addresses per family (index famIndex).
	total [2]Count
}

// poolRange is one range of a pool. Its used addresses are kept as keys in a
// runSet. A key is the address's position among the range's usable addresses:
// with AvoidBuggyIPs the .0 and .255 addresses have no key, so consecutive
// usable addresses have consecutive keys and runs stay merged across /24
// boundaries (finding a free address never walks over avoided ones).
type poolRange struct {
	pool  *pool
	r     netipx.IPRange
	fam   Family
	avoid bool // IPv4 with AvoidBuggyIPs
	// base is the number of the first usable address: u128From(From) without
	// avoidance, its ordinal (see ordinal4) with it.
	base u128
	// empty is set when the range has no usable address at all.
	empty bool
	// last is the largest key (size-1) when the range is not empty.
	last u128
	used runSet
}

// ordinal4 numbers usable IPv4 addresses (last byte 1..254) consecutively.
func ordinal4(a uint64) uint64 { return (a>>8)*254 + (a & 0xff) - 1 }

// fromOrdinal4 is the inverse of ordinal4.
func fromOrdinal4(o uint64) uint64 { return (o/254)<<8 | (o%254 + 1) }

// avoided reports whether addr ends in .0 or .255.
func avoided(addr netip.Addr) bool {
	if !addr.Is4() {
		return false
	}
	last := addr.As4()[3]
	return last == 0 || last == 255
}

func newPoolRange(p *pool, r netipx.IPRange) *poolRange {
	pr := &poolRange{pool: p, r: r, fam: FamilyOf(r.From())}
	pr.avoid = pr.fam == IPv4 && p.spec.AvoidBuggyIPs
	from, to := u128From(r.From()), u128From(r.To())
	if !pr.avoid {
		pr.base = from
		pr.last = to.sub(from)
		return pr
	}
	lo, hi := from.lo, to.lo
	if b := lo & 0xff; b == 0 {
		lo++
	} else if b == 255 {
		lo += 2
	}
	if b := hi & 0xff; b == 255 {
		hi--
	} else if b == 0 {
		if hi < 2 {
			pr.empty = true
			return pr
		}
		hi -= 2
	}
	if lo > hi {
		pr.empty = true
		return pr
	}
	pr.base = u128{lo: ordinal4(lo)}
	pr.last = u128{lo: ordinal4(hi) - ordinal4(lo)}
	return pr
}

// size returns the number of usable addresses in the range.
func (pr *poolRange) size() Count {
	if pr.empty {
		return Count{}
	}
	return countFrom128(pr.last).Add(CountOf(1))
}

// key returns addr's key, or false when addr is not a usable address of the
// range (outside it, or avoided).
func (pr *poolRange) key(addr netip.Addr) (u128, bool) {
	if pr.empty || !pr.r.Contains(addr) {
		return u128{}, false
	}
	if !pr.avoid {
		return u128From(addr).sub(pr.base), true
	}
	if avoided(addr) {
		return u128{}, false
	}
	return u128{lo: ordinal4(u128From(addr).lo)}.sub(pr.base), true
}

// addr returns the address of key k.
func (pr *poolRange) addr(k u128) netip.Addr {
	if !pr.avoid {
		return pr.base.add(k).addr(pr.fam)
	}
	return u128{lo: fromOrdinal4(pr.base.add(k).lo)}.addr(IPv4)
}

// firstFree returns the lowest free usable address. Cost O(log r).
func (pr *poolRange) firstFree() (netip.Addr, bool) {
	if pr.empty {
		return netip.Addr{}, false
	}
	k, ok := pr.used.firstFree(pr.last)
	if !ok {
		return netip.Addr{}, false
	}
	return pr.addr(k), true
}

// markUsed and markFree keep the range's runSet in step with the holders map;
// avoided addresses have no key and are not counted.
func (pr *poolRange) markUsed(addr netip.Addr) {
	if k, ok := pr.key(addr); ok {
		pr.used.add(k)
	}
}

func (pr *poolRange) markFree(addr netip.Addr) {
	if k, ok := pr.key(addr); ok {
		pr.used.remove(k)
	}
}

func famIndex(f Family) int {
	if f == IPv6 {
		return 1
	}
	return 0
}

// hasFamily reports whether the pool has any address of family f.
func (p *pool) hasFamily(f Family) bool {
	for _, pr := range p.ranges {
		if pr.fam == f {
			return true
		}
	}
	return false
}

// poolLess orders pools for automatic choice: by Priority, then Name.
func poolLess(a, b *pool) int {
	if c := cmp.Compare(a.spec.Priority, b.spec.Priority); c != 0 {
		return c
	}
	return cmp.Compare(a.spec.Name, b.spec.Name)
}

// poolSet is a validated set of pools with an index from address to range.
type poolSet struct {
	byName map[string]*pool
	// ordered lists the pools by priority, then name.
	ordered []*pool
	// ranges lists every range of every pool by start address; ranges never overlap.
	ranges []*poolRange
}

// rangeOf returns the range containing addr, or nil. Cost O(log R) for R ranges.
func (ps *poolSet) rangeOf(addr netip.Addr) *poolRange {
	i, found := slices.BinarySearchFunc(ps.ranges, addr, func(pr *poolRange, a netip.Addr) int {
		return pr.r.From().Compare(a)
	})
	if !found {
		i--
	}
	if i < 0 {
		return nil
	}
	if pr := ps.ranges[i]; pr.r.Contains(addr) {
		return pr
	}
	return nil
}

// poolOf returns the pool containing addr (usable or not), or nil.
func (ps *poolSet) poolOf(addr netip.Addr) *pool {
	if pr := ps.rangeOf(addr); pr != nil {
		return pr.pool
	}
	return nil
}

// buildPoolSet validates specs and builds a poolSet from what is valid. Pools
// are considered by priority then name; a pool without a name, a second pool
// with the same name, an invalid range and a range overlapping one already
// accepted are left out, and each problem comes back in the error (wrapping
// ErrInvalidPool). Cost O(R log R).
func buildPoolSet(specs []PoolSpec) (*poolSet, error) {
	ps := &poolSet{byName: make(map[string]*pool, len(specs))}
	var errs []error
	candidates := make([]*pool, 0, len(specs))
	for _, spec := range specs {
		candidates = append(candidates, &pool{spec: spec})
	}
	slices.SortStableFunc(candidates, poolLess)
	for _, p := range candidates {
		name := p.spec.Name
		if name == "" {
			errs = append(errs, poolError("a pool has no name; it is ignored"))
			continue
		}
		if _, dup := ps.byName[name]; dup {
			errs = append(errs, poolError(fmt.Sprintf("pool %q is defined twice; the second definition is ignored", name)))
			continue
		}
		ps.byName[name] = p
		ps.ordered = append(ps.ordered, p)
		for _, r := range p.spec.Ranges {
			r = unmapRange(r)
			if !r.IsValid() {
				errs = append(errs, poolError(fmt.Sprintf("pool %q: range %s-%s is not valid (families mixed, reversed or empty); it is ignored", name, r.From(), r.To())))
				continue
			}
			if other := ps.overlap(r); other != nil {
				errs = append(errs, poolError(fmt.Sprintf("pool %q: range %s overlaps %s of pool %q; it is ignored", name, r, other.r, other.pool.spec.Name)))
				continue
			}
			pr := newPoolRange(p, r)
			i, _ := slices.BinarySearchFunc(ps.ranges, r.From(), func(x *poolRange, a netip.Addr) int { return x.r.From().Compare(a) })
			ps.ranges = slices.Insert(ps.ranges, i, pr)
			p.ranges = append(p.ranges, pr)
		}
		slices.SortFunc(p.ranges, func(a, b *poolRange) int { return a.r.From().Compare(b.r.From()) })
		for _, pr := range p.ranges {
			i := famIndex(pr.fam)
			p.total[i] = p.total[i].Add(pr.size())
		}
	}
	return ps, errors.Join(errs...)
}

// overlap returns an accepted range overlapping r, or nil.
func (ps *poolSet) overlap(r netipx.IPRange) *poolRange {
	i, _ := slices.BinarySearchFunc(ps.ranges, r.From(), func(x *poolRange, a netip.Addr) int { return x.r.From().Compare(a) })
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(ps.ranges) && ps.ranges[j].r.Overlaps(r) {
			return ps.ranges[j]
		}
	}
	return nil
}

func unmapRange(r netipx.IPRange) netipx.IPRange {
	from, to := r.From(), r.To()
	if from.Is4In6() && to.Is4In6() {
		return netipx.IPRangeFrom(from.Unmap(), to.Unmap())
	}
	return r
}

func poolError(msg string) error {
	return &detailError{msg: "ipam: set pools: " + msg, kind: ErrInvalidPool}
}
