package ipam

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

// Benchmarks behind the figures in doc.go and docs/ipam.md. Run them with
//
//	go test -run '^$' -bench . -benchmem ./ipam/
//
// Tests may only use documentation prefixes (198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32), so the large pools are IPv6: a 2001:db8::/112 has exactly
// the 65,536 addresses of an IPv4 /16. IPv4 pools, with and without
// avoidBuggyIPs, are measured on the two IPv4 documentation /24s, and a whole
// IPv4 /16 is filled in 198.18.0.0/16 (RFC 2544's benchmarking range): the
// allocator is pure and sends no packet, so no route on the machine matters.

// benchOwners returns n owners with distinct names, made before measuring so
// their strings (which in the controller belong to the Service objects) are
// not counted.
func benchOwners(n int) []Owner {
	out := make([]Owner, n)
	for i := range out {
		out[i] = Owner{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), UID: fmt.Sprintf("uid-%d", i), Created: epoch}
	}
	return out
}

func benchRequest(o Owner, f Family) Request {
	return Request{Owner: o, Subject: Subject{Namespace: o.Namespace}, Kind: LoadBalancer, Families: []Family{f}}
}

func benchAllocator(b *testing.B, specs ...PoolSpec) *Allocator {
	a := New()
	if err := a.SetPools(specs); err != nil {
		b.Fatal(err)
	}
	return a
}

// fill allocates one address for each owner.
func fill(b *testing.B, a *Allocator, owners []Owner, f Family) {
	for _, o := range owners {
		if _, err := a.Allocate(benchRequest(o, f)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSuccessiveAllocations times filling a fresh pool: one op is all of
// the allocations; ns/alloc is the cost of each.
func BenchmarkSuccessiveAllocations(b *testing.B) {
	cases := []struct {
		name string
		pool PoolSpec
		n    int
		fam  Family
	}{
		{"ipv6-prefix111-100000", auto("p", "2001:db8::/111"), 100000, IPv6},
		{"ipv6-prefix112-65536-full", auto("p", "2001:db8::/112"), 65536, IPv6},
		{"ipv4-avoidBuggyIPs=off-512-full", auto("p", "198.51.100.0/24", "203.0.113.0/24"), 512, IPv4},
		{"ipv4-avoidBuggyIPs=on-508-full", auto("p", "198.51.100.0/24", "203.0.113.0/24").avoid(), 508, IPv4},
		{"ipv4-prefix16-avoidBuggyIPs=off-65536-full", auto("p", "198.18.0.0/16"), 65536, IPv4},
		{"ipv4-prefix16-avoidBuggyIPs=on-65024-full", auto("p", "198.18.0.0/16").avoid(), 65024, IPv4},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			owners := benchOwners(c.n)
			b.ReportAllocs()
			for b.Loop() {
				a := benchAllocator(b, c.pool)
				fill(b, a, owners, c.fam)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.n), "ns/alloc")
		})
	}
}

// BenchmarkAllocateInFullPool measures one allocation (and its release, so
// the state stays the same) in pools of growing size already holding up to
// 100,000 addresses, held in one run ("packed") or every other address
// ("holes": 100,000 runs).
func BenchmarkAllocateInFullPool(b *testing.B) {
	cases := []struct {
		name   string
		prefix string
		held   int
		holes  bool
	}{
		{"prefix120-packed-255", "2001:db8::/120", 255, false},
		{"prefix120-holes-128", "2001:db8::/120", 128, true},
		{"prefix96-packed-100000", "2001:db8::/96", 100000, false},
		{"prefix96-holes-100000", "2001:db8::/96", 100000, true},
		{"prefix64-packed-100000", "2001:db8::/64", 100000, false},
		{"prefix64-holes-100000", "2001:db8::/64", 100000, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			a := benchAllocator(b, auto("p", c.prefix))
			prefill(b, a, c.held, c.holes)
			probe := benchOwners(1)[0]
			probe.Name = "probe"
			req := benchRequest(probe, IPv6)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Allocate(req); err != nil {
					b.Fatal(err)
				}
				a.Release(probe, LoadBalancer)
			}
		})
	}
}

// BenchmarkAllocateOnly measures allocations that stay (no release) on top of
// 100,000 held addresses, so each op grows the pool's usage by one.
func BenchmarkAllocateOnly(b *testing.B) {
	for _, bits := range []int{96, 64} {
		b.Run(fmt.Sprintf("prefix%d-holding-100000", bits), func(b *testing.B) {
			a := benchAllocator(b, auto("p", fmt.Sprintf("2001:db8::/%d", bits)))
			prefill(b, a, 100000, false)
			owners := benchOwners(b.N + 100000)[100000:]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Allocate(benchRequest(owners[i], IPv6)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// prefill makes the pool hold n addresses: the first n ("packed"), or every
// other one of the first 2n (holes), so that it holds n runs.
func prefill(b *testing.B, a *Allocator, n int, holes bool) []Owner {
	if !holes {
		owners := benchOwners(n)
		fill(b, a, owners, IPv6)
		return owners
	}
	owners := benchOwners(2 * n)
	fill(b, a, owners, IPv6)
	var kept []Owner
	for i, o := range owners {
		if i%2 == 0 {
			a.Release(o, LoadBalancer)
		} else {
			kept = append(kept, o)
		}
	}
	return kept
}

// BenchmarkReleaseAndReallocate releases a pseudo-randomly chosen holder and
// allocates a new owner (which takes the lowest hole), with n addresses held
// in about n/2 runs: the cost grows with log n.
func BenchmarkReleaseAndReallocate(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("held-%d", n), func(b *testing.B) {
			a := benchAllocator(b, auto("p", "2001:db8::/64"))
			held := prefill(b, a, n, true)
			spare := benchOwners(n + len(held))[n:]
			b.ReportAllocs()
			x := uint64(88172645463325252)
			for i := 0; b.Loop(); i++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				j := int(x % uint64(len(held)))
				a.Release(held[j], LoadBalancer)
				next := spare[i%len(spare)]
				if _, err := a.Allocate(benchRequest(next, IPv6)); err != nil {
					b.Fatal(err)
				}
				held[j], spare[i%len(spare)] = next, held[j]
			}
		})
	}
}

// BenchmarkMemoryPerAddress reports the heap the allocator keeps per held
// address (bytes/addr), measured with runtime.MemStats around filling it:
// 100,000 addresses held in one run ("packed"), held every other address
// (100,000 runs, "fragmented"), the same reached by releasing every other one
// of 200,000 (Go maps keep their peak size: "after-churn"), and shared by two
// owners each under 100,000 different sharing keys ("shared-pairs").
func BenchmarkMemoryPerAddress(b *testing.B) {
	const n = 100000
	cases := []struct {
		name  string
		build func(b *testing.B, a *Allocator, owners []Owner)
	}{
		{"packed-100000", func(b *testing.B, a *Allocator, owners []Owner) {
			fill(b, a, owners[:n], IPv6)
		}},
		{"fragmented-100000", func(b *testing.B, a *Allocator, owners []Owner) {
			base := netip.MustParseAddr("2001:db8::")
			for i, o := range owners[:n] {
				r := benchRequest(o, IPv6)
				r.Addresses = []netip.Addr{nthAddr(base, 2*i+1)}
				if _, err := a.Allocate(r); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"after-churn-100000", func(b *testing.B, a *Allocator, owners []Owner) {
			fill(b, a, owners, IPv6)
			for i := 0; i < len(owners); i += 2 {
				a.Release(owners[i], LoadBalancer)
			}
		}},
		{"shared-pairs-100000", func(b *testing.B, a *Allocator, owners []Owner) {
			for i, o := range owners {
				r := benchRequest(o, IPv6)
				r.Sharing = &Sharing{Key: sharingKeys[i/2], Ports: []PortProto{{Protocol: "TCP", Port: int32(80 + i%2)}}}
				if _, err := a.Allocate(r); err != nil {
					b.Fatal(err)
				}
			}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var perAddr float64
			owners := benchOwners(2 * n)
			if sharingKeys == nil {
				for i := range n {
					sharingKeys = append(sharingKeys, fmt.Sprint("key-", i))
				}
			}
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				a := benchAllocator(b, auto("p", "2001:db8::/64"))
				c.build(b, a, owners)
				runtime.GC()
				runtime.ReadMemStats(&after)
				if got := a.Stats().Pools[0].IPv6.Used; got != CountOf(n) {
					b.Fatalf("%s addresses held, want %d", got, n)
				}
				perAddr = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(a)
			}
			b.ReportMetric(perAddr, "bytes/addr")
		})
	}
}

// sharingKeys are made once, outside the measurement, like owner names.
var sharingKeys []string

// nthAddr returns base plus i.
func nthAddr(base netip.Addr, i int) netip.Addr {
	return u128From(base).add(u128{lo: uint64(i)}).addr(IPv6)
}
