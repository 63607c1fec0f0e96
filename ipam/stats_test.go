package ipam

import (
	"math"
	"math/big"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pow2(n uint) Count {
	b := new(big.Int).Lsh(big.NewInt(1), n)
	c, ok := countFromBig(b)
	if !ok {
		panic("pow2 out of range")
	}
	return c
}

// countFromBig converts b for tests (0 <= b < 2^192).
func countFromBig(b *big.Int) (Count, bool) {
	if b.Sign() < 0 || b.BitLen() > 192 {
		return Count{}, false
	}
	mask := new(big.Int).SetUint64(math.MaxUint64)
	lo := new(big.Int).And(b, mask).Uint64()
	hi := new(big.Int).And(new(big.Int).Rsh(b, 64), mask).Uint64()
	top := new(big.Int).Rsh(b, 128).Uint64()
	return Count{top: top, hi: hi, lo: lo}, true
}

func TestCount(t *testing.T) {
	max128 := countFrom128(u128{hi: math.MaxUint64, lo: math.MaxUint64})
	tests := []struct {
		name string
		got  Count
		want string
	}{
		{"zero", Count{}, "0"},
		{"uint64", CountOf(math.MaxUint64), "18446744073709551615"},
		{"carry into the high word", CountOf(math.MaxUint64).Add(CountOf(1)), "18446744073709551616"},
		{"2^128 (the size of ::/0) does not overflow", max128.Add(CountOf(1)), "340282366920938463463374607431768211456"},
		{"2^128 minus a few", max128.Add(CountOf(1)).Sub(CountOf(3)), "340282366920938463463374607431768211453"},
		{"borrow across words", pow2(128).Sub(pow2(64)), "340282366920938463444927863358058659840"},
		{"never negative", CountOf(3).Sub(CountOf(5)), "0"},
		{"sum of two /1 halves", pow2(127).Add(pow2(127)), "340282366920938463463374607431768211456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got.String()); diff != "" {
				t.Errorf("String (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, tt.got.Big().String()); diff != "" {
				t.Errorf("Big (-want +got):\n%s", diff)
			}
		})
	}
	if n, ok := pow2(64).Uint64(); ok || n != math.MaxUint64 {
		t.Errorf("pow2(64).Uint64() = %d, %v; want saturation and false", n, ok)
	}
	if n, ok := CountOf(7).Uint64(); !ok || n != 7 {
		t.Errorf("CountOf(7).Uint64() = %d, %v", n, ok)
	}
	if f := pow2(128).Float64(); f != math.Ldexp(1, 128) {
		t.Errorf("pow2(128).Float64() = %g", f)
	}
	if pow2(128).Cmp(pow2(127)) != 1 || pow2(3).Cmp(CountOf(8)) != 0 || CountOf(1).Cmp(CountOf(2)) != -1 {
		t.Error("Cmp is wrong")
	}
}

// TestFullWidthRangeSize covers the arithmetic a ::/0 pool relies on, without
// configuring one (tests only use documentation prefixes): a range's size is
// its largest key plus one, computed as a Count, so 2^128 is exact.
func TestFullWidthRangeSize(t *testing.T) {
	pr := &poolRange{last: u128{hi: math.MaxUint64, lo: math.MaxUint64}, fam: IPv6}
	if got := pr.size().String(); got != "340282366920938463463374607431768211456" {
		t.Errorf("size of a full-width range = %s", got)
	}
	// The key after the largest one does not exist: firstFree must say the
	// range is full rather than wrap around to key 0.
	var s runSet
	s.add(u128{})
	s.add(u128{hi: math.MaxUint64, lo: math.MaxUint64})
	if k, ok := s.firstFree(pr.last); !ok || k != (u128{lo: 1}) {
		t.Errorf("firstFree = %v, %v; want 1", k, ok)
	}
}

func TestStats(t *testing.T) {
	a := New()
	mustSetPools(t, a,
		auto("v6-33", "2001:db8::/33"),
		auto("v6-64", "2001:db8:8000:2::/64"),
		auto("halves", "2001:db8:c000::/34", "2001:db8:a000::/35", "2001:db8:9000::-2001:db8:9000::ffff"),
		auto("avoid", "198.51.100.0/24", "203.0.113.250-203.0.113.255").avoid(),
		auto("plain", "203.0.113.0/28"),
	)
	for _, r := range []Request{
		lb(svc("x", 1)).fams(IPv6).pool("v6-64"),
		lb(svc("y", 1)).fams(IPv6).pool("v6-64"),
		lb(svc("z", 1)).fams(IPv6).pool("v6-64").addrs("2001:db8:8000:2:ffff:ffff:ffff:ffff"),
		lb(svc("p", 1)).pool("avoid"),
		lb(svc("q", 1)).pool("avoid").addrs("203.0.113.254"),
	} {
		if _, err := a.Allocate(r); err != nil {
			t.Fatalf("Allocate(%s): %v", r.Owner.Name, err)
		}
	}
	// An imported avoided address is reported, not counted as used.
	if _, err := a.Import(lb(svc("imported", 1)), parseAddrs("198.51.100.255")); err != nil {
		t.Fatal(err)
	}
	fs := func(total, used Count) FamilyStats {
		return FamilyStats{Total: total, Used: used, Free: total.Sub(used)}
	}
	want := Stats{
		Outside: 1,
		Pools: []PoolStats{
			{Name: "avoid", IPv4: fs(CountOf(254+5), CountOf(2)), Allocations: 3, Outside: 1},
			{Name: "halves", IPv6: fs(pow2(94).Add(pow2(93)).Add(CountOf(65536)), Count{})},
			{Name: "plain", IPv4: fs(CountOf(16), Count{})},
			{Name: "v6-33", IPv6: fs(pow2(95), Count{})},
			{Name: "v6-64", IPv6: fs(pow2(64), CountOf(3)), Allocations: 3},
		},
	}
	if diff := cmp.Diff(want, a.Stats(), cmpOpts); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	got := a.Stats().Pools[4].IPv6
	if got.Total.String() != "18446744073709551616" || got.Free.String() != "18446744073709551613" {
		t.Errorf("v6-64 total %s free %s", got.Total, got.Free)
	}
}

// TestAvoidBuggyIPsCounts checks Total against a count by enumeration for
// ranges that start and end on, next to and between avoided addresses.
func TestAvoidBuggyIPsCounts(t *testing.T) {
	for _, r := range []string{
		"198.51.100.0/24", "198.51.100.0/32", "198.51.100.255/32", "198.51.100.254/31",
		"198.51.100.1-198.51.100.254", "198.51.100.0-198.51.100.1", "198.51.100.7-198.51.100.7",
		"203.0.113.128/25", "203.0.113.0/25",
	} {
		t.Run(r, func(t *testing.T) {
			spec := auto("a", r).avoid()
			ps, err := buildPoolSet([]PoolSpec{spec})
			if err != nil {
				t.Fatal(err)
			}
			pr := ps.ranges[0]
			var want uint64
			var keys []u128
			for addr := pr.r.From(); pr.r.Contains(addr); addr = addr.Next() {
				if !avoided(addr) {
					want++
				}
				if k, ok := pr.key(addr); ok {
					keys = append(keys, k)
					if back := pr.addr(k); back != addr {
						t.Errorf("addr(key(%s)) = %s", addr, back)
					}
				} else if !avoided(addr) {
					t.Errorf("usable %s has no key", addr)
				}
				if !addr.Next().IsValid() {
					break
				}
			}
			if got := pr.size(); got != CountOf(want) {
				t.Errorf("size = %s, want %d", got, want)
			}
			for i, k := range keys {
				if k != (u128{lo: uint64(i)}) {
					t.Fatalf("keys are not consecutive from 0: key %d is %v", i, k)
				}
			}
		})
	}
}

func TestOrdinal4RoundTrip(t *testing.T) {
	prev := uint64(0)
	for a := uint64(0); a < 1<<20; a++ {
		if b := a & 0xff; b == 0 || b == 255 {
			continue
		}
		o := ordinal4(a)
		if fromOrdinal4(o) != a {
			t.Fatalf("fromOrdinal4(ordinal4(%d)) = %d", a, fromOrdinal4(o))
		}
		if a > 1 && o != prev+1 {
			t.Fatalf("ordinal of %d is %d, want %d", a, o, prev+1)
		}
		prev = o
	}
}

func TestLookupUnmapsAddresses(t *testing.T) {
	a := New()
	mustSetPools(t, a, auto("a", "198.51.100.0/24"))
	if _, err := a.Allocate(lb(s1).addrs("::ffff:198.51.100.4")); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup(netip.MustParseAddr("::ffff:198.51.100.4")); !ok {
		t.Error("Lookup of the mapped form found nothing")
	}
}
