package ipam

import (
	"math"
	"slices"

	"github.com/google/btree"
)

// run64 is a maximal block of consecutive used keys, lo..hi inclusive, within
// one group of 2^64 keys.
type run64 struct {
	lo, hi uint64
}

// group is the set of used keys sharing one high 64-bit word, kept as an
// ordered tree of merged runs: two runs are never adjacent or overlapping.
type group struct {
	tree *btree.BTreeG[run64]
}

// runDegree is the B-tree degree: nodes of up to 63 runs (about 1 KiB) keep
// the tree shallow.
const runDegree = 32

func run64Less(a, b run64) bool { return a.lo < b.lo }

func newGroup() *group { return &group{tree: btree.NewG(runDegree, run64Less)} }

// atOrBefore returns the run with the largest lo <= k.
func (g *group) atOrBefore(k uint64) (out run64, ok bool) {
	g.tree.DescendLessOrEqual(run64{lo: k}, func(r run64) bool {
		out, ok = r, true
		return false
	})
	return out, ok
}

// after returns the run with the smallest lo > k.
func (g *group) after(k uint64) (out run64, ok bool) {
	if k == math.MaxUint64 {
		return out, false
	}
	g.tree.AscendGreaterOrEqual(run64{lo: k + 1}, func(r run64) bool {
		out, ok = r, true
		return false
	})
	return out, ok
}

func (g *group) has(k uint64) bool {
	r, ok := g.atOrBefore(k)
	return ok && r.hi >= k
}

// firstFree returns the smallest unused key in 0..last: because runs are
// merged, it is 0 or the key right after the run starting at 0.
func (g *group) firstFree(last uint64) (uint64, bool) {
	first, ok := g.tree.Min()
	if !ok || first.lo != 0 {
		return 0, true
	}
	if first.hi >= last {
		return 0, false
	}
	return first.hi + 1, true
}

func (g *group) add(k uint64) bool {
	prev, hasPrev := g.atOrBefore(k)
	if hasPrev && prev.hi >= k {
		return false
	}
	next, hasNext := g.after(k)
	joinPrev := hasPrev && prev.hi+1 == k
	joinNext := hasNext && k+1 == next.lo
	switch {
	case joinPrev && joinNext:
		g.tree.Delete(next)
		g.tree.ReplaceOrInsert(run64{lo: prev.lo, hi: next.hi})
	case joinPrev:
		g.tree.ReplaceOrInsert(run64{lo: prev.lo, hi: k})
	case joinNext:
		g.tree.Delete(next)
		g.tree.ReplaceOrInsert(run64{lo: k, hi: next.hi})
	default:
		g.tree.ReplaceOrInsert(run64{lo: k, hi: k})
	}
	return true
}

func (g *group) remove(k uint64) bool {
	r, ok := g.atOrBefore(k)
	if !ok || r.hi < k {
		return false
	}
	switch {
	case r.lo == k && r.hi == k:
		g.tree.Delete(r)
	case r.lo == k:
		g.tree.Delete(r)
		g.tree.ReplaceOrInsert(run64{lo: k + 1, hi: r.hi})
	case r.hi == k:
		g.tree.ReplaceOrInsert(run64{lo: r.lo, hi: k - 1})
	default:
		g.tree.ReplaceOrInsert(run64{lo: r.lo, hi: k - 1})
		g.tree.ReplaceOrInsert(run64{lo: k + 1, hi: r.hi})
	}
	return true
}

// runSet is the set of used keys of one pool range. Keys are split by their
// high word into groups of 2^64 keys; every IPv4 range and every IPv6 range of
// a /64 or smaller has only group 0. A run costs 16 bytes. Finding the first
// free key, adding and removing one each cost O(log r) for r runs, which is at
// most the number of used keys and usually far fewer (consecutive allocations
// collapse into one run), and never depends on the range's size.
type runSet struct {
	low  *group            // keys with high word 0
	high map[uint64]*group // other high words, for ranges larger than 2^64
	n    u128              // number of used keys
}

func (s *runSet) groupOf(hi uint64, create bool) *group {
	if hi == 0 {
		if s.low == nil && create {
			s.low = newGroup()
		}
		return s.low
	}
	g := s.high[hi]
	if g == nil && create {
		if s.high == nil {
			s.high = make(map[uint64]*group)
		}
		g = newGroup()
		s.high[hi] = g
	}
	return g
}

// count returns the number of used keys.
func (s *runSet) count() u128 { return s.n }

// has reports whether k is used. Cost O(log r).
func (s *runSet) has(k u128) bool {
	g := s.groupOf(k.hi, false)
	return g != nil && g.has(k.lo)
}

// firstFree returns the smallest unused key in 0..last. Cost O(log r): a group
// is only passed over when all its 2^64 keys are used, which cannot happen in
// memory.
func (s *runSet) firstFree(last u128) (u128, bool) {
	for hi := uint64(0); ; hi++ {
		max := uint64(math.MaxUint64)
		if hi == last.hi {
			max = last.lo
		}
		g := s.groupOf(hi, false)
		if g == nil {
			return u128{hi: hi}, true
		}
		if lo, ok := g.firstFree(max); ok {
			return u128{hi: hi, lo: lo}, true
		}
		if hi == last.hi {
			return u128{}, false
		}
	}
}

// add marks k used; it reports false when k already was. Cost O(log r).
func (s *runSet) add(k u128) bool {
	if !s.groupOf(k.hi, true).add(k.lo) {
		return false
	}
	s.n = s.n.inc()
	return true
}

// remove marks k unused; it reports false when k was not used. Cost O(log r).
func (s *runSet) remove(k u128) bool {
	g := s.groupOf(k.hi, false)
	if g == nil || !g.remove(k.lo) {
		return false
	}
	if g.tree.Len() == 0 && k.hi != 0 {
		delete(s.high, k.hi)
	}
	s.n = s.n.dec()
	return true
}

// ascend calls fn for each run in key order, until fn returns false.
func (s *runSet) ascend(fn func(lo, hi u128) bool) {
	his := []uint64{}
	if s.low != nil {
		his = append(his, 0)
	}
	for hi := range s.high {
		his = append(his, hi)
	}
	slices.Sort(his)
	for _, hi := range his {
		cont := true
		s.groupOf(hi, false).tree.Ascend(func(r run64) bool {
			cont = fn(u128{hi: hi, lo: r.lo}, u128{hi: hi, lo: r.hi})
			return cont
		})
		if !cont {
			return
		}
	}
}
