package ipam

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRunSetAgainstMap adds and removes random keys near the edges of the key
// space and compares the runSet with a plain map after every operation.
func TestRunSetAgainstMap(t *testing.T) {
	for _, base := range []u128{{}, {hi: 1, lo: math.MaxUint64 - 20}, {hi: math.MaxUint64, lo: math.MaxUint64 - 40}} {
		rng := rand.New(rand.NewPCG(base.hi, base.lo))
		var s runSet
		ref := map[u128]bool{}
		last := base.add(u128{lo: 40})
		if base.hi == math.MaxUint64 {
			last = u128{hi: math.MaxUint64, lo: math.MaxUint64}
		}
		for i := 0; i < 5000; i++ {
			k := base.add(u128{lo: rng.Uint64N(41)})
			if rng.IntN(2) == 0 {
				if got := s.add(k); got == ref[k] {
					t.Fatalf("add(%v) = %v with the key present = %v", k, got, ref[k])
				}
				ref[k] = true
			} else {
				if got := s.remove(k); got != ref[k] {
					t.Fatalf("remove(%v) = %v with the key present = %v", k, got, ref[k])
				}
				delete(ref, k)
			}
			if s.count() != (u128{lo: uint64(len(ref))}) {
				t.Fatalf("count %v, want %d", s.count(), len(ref))
			}
			for j := uint64(0); j <= 40; j++ {
				k := base.add(u128{lo: j})
				if s.has(k) != ref[k] {
					t.Fatalf("has(%v) = %v, want %v", k, s.has(k), ref[k])
				}
			}
			if base == (u128{}) {
				want, wantOK := u128{}, false
				for j := uint64(0); j <= 40; j++ {
					if !ref[u128{lo: j}] {
						want, wantOK = u128{lo: j}, true
						break
					}
				}
				got, ok := s.firstFree(last)
				if ok != wantOK || (ok && got != want) {
					t.Fatalf("firstFree = %v, %v; want %v, %v", got, ok, want, wantOK)
				}
			}
			first := true
			var prevHi u128
			s.ascend(func(lo, hi u128) bool {
				// Runs are merged within a group of 2^64 keys, not across groups.
				crossesGroup := prevHi.lo == math.MaxUint64 && lo.lo == 0 && lo.hi == prevHi.hi+1
				if !first && !prevHi.inc().less(lo) && !crossesGroup {
					t.Fatalf("runs ending %v and starting %v touch", prevHi, lo)
				}
				prevHi, first = hi, false
				return true
			})
		}
	}
}
