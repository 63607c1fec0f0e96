package ipam

import "github.com/google/btree"

// run is a maximal block of consecutive used keys, lo..hi inclusive.
type run struct {
	lo, hi u128
}

// runSet is the set of used keys of one pool range, kept as an ordered tree of
// merged runs: two runs are never adjacent or overlapping. Finding the first
// free key, inserting and removing a key each cost O(log r) for r runs, which
// is at most the number of used keys and often far fewer (consecutive
// allocations collapse into one run), and never depends on the range's size.
type runSet struct {
	tree *btree.BTreeG[run]
	n    u128 // number of used keys
}

// runDegree is the B-tree degree: 32 keeps nodes around 1-2 KiB and the tree shallow.
const runDegree = 32

func runLess(a, b run) bool { return a.lo.less(b.lo) }

func (s *runSet) init() {
	if s.tree == nil {
		s.tree = btree.NewG(runDegree, runLess)
	}
}

// count returns the number of used keys.
func (s *runSet) count() u128 { return s.n }

// runAtOrBefore returns the run with the largest lo <= k.
func (s *runSet) runAtOrBefore(k u128) (run, bool) {
	var out run
	var ok bool
	if s.tree == nil {
		return out, false
	}
	s.tree.DescendLessOrEqual(run{lo: k}, func(r run) bool {
		out, ok = r, true
		return false
	})
	return out, ok
}

// runAfter returns the run with the smallest lo > k.
func (s *runSet) runAfter(k u128) (run, bool) {
	var out run
	var ok bool
	if s.tree == nil || k.isMax() {
		return out, false
	}
	s.tree.AscendGreaterOrEqual(run{lo: k.inc()}, func(r run) bool {
		out, ok = r, true
		return false
	})
	return out, ok
}

// has reports whether k is used. Cost O(log r).
func (s *runSet) has(k u128) bool {
	r, ok := s.runAtOrBefore(k)
	return ok && !r.hi.less(k)
}

// firstFree returns the smallest unused key in 0..last. Cost O(log r): because
// runs are merged, the key after the run that starts at 0 is always free.
func (s *runSet) firstFree(last u128) (u128, bool) {
	if s.tree == nil {
		return u128{}, true
	}
	first, ok := s.tree.Min()
	if !ok || first.lo != (u128{}) {
		return u128{}, true
	}
	if !first.hi.less(last) {
		return u128{}, false
	}
	return first.hi.inc(), true
}

// add marks k used; it reports false when k already was. Cost O(log r).
func (s *runSet) add(k u128) bool {
	s.init()
	prev, hasPrev := s.runAtOrBefore(k)
	if hasPrev && !prev.hi.less(k) {
		return false
	}
	next, hasNext := s.runAfter(k)
	joinPrev := hasPrev && prev.hi.inc() == k
	joinNext := hasNext && !k.isMax() && k.inc() == next.lo
	switch {
	case joinPrev && joinNext:
		s.tree.Delete(next)
		s.tree.ReplaceOrInsert(run{lo: prev.lo, hi: next.hi})
	case joinPrev:
		s.tree.ReplaceOrInsert(run{lo: prev.lo, hi: k})
	case joinNext:
		s.tree.Delete(next)
		s.tree.ReplaceOrInsert(run{lo: k, hi: next.hi})
	default:
		s.tree.ReplaceOrInsert(run{lo: k, hi: k})
	}
	s.n = s.n.inc()
	return true
}

// remove marks k unused; it reports false when k was not used. Cost O(log r).
func (s *runSet) remove(k u128) bool {
	r, ok := s.runAtOrBefore(k)
	if !ok || r.hi.less(k) {
		return false
	}
	switch {
	case r.lo == k && r.hi == k:
		s.tree.Delete(r)
	case r.lo == k:
		s.tree.Delete(r)
		s.tree.ReplaceOrInsert(run{lo: k.inc(), hi: r.hi})
	case r.hi == k:
		s.tree.ReplaceOrInsert(run{lo: r.lo, hi: k.dec()})
	default:
		s.tree.ReplaceOrInsert(run{lo: r.lo, hi: k.dec()})
		s.tree.ReplaceOrInsert(run{lo: k.inc(), hi: r.hi})
	}
	s.n = s.n.dec()
	return true
}

// runs returns the number of runs (for tests and benchmarks).
func (s *runSet) runs() int {
	if s.tree == nil {
		return 0
	}
	return s.tree.Len()
}
