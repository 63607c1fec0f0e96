package ipam

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentUse runs every kind of call from several goroutines; run it
// with -race. Afterwards the holders and counters must still agree.
func TestConcurrentUse(t *testing.T) {
	a := New()
	mustSetPools(t, a, auto("a", "198.51.100.0/24").avoid(), auto("b", "2001:db8::/120"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				o := svc(fmt.Sprintf("g%d-%d", g, i%20), i)
				r := lb(o).fams(IPv4, IPv6)
				if i%3 == 0 {
					r = r.share("k", fmt.Sprintf("TCP/%d", 1000*g+i))
				}
				switch i % 7 {
				case 0:
					a.Release(o, LoadBalancer)
				case 1:
					_, _ = a.DryRun(r)
					_ = a.Stats()
					_ = a.OutsidePool()
				case 2:
					if g == 0 && i%70 == 2 {
						_ = a.SetPools([]PoolSpec{auto("a", "198.51.100.0/24").avoid(), auto("b", "2001:db8::/120")})
					}
				default:
					if res, err := a.Allocate(r); err == nil {
						_, _ = a.Lookup(res.Addresses[0])
					}
				}
				_ = a.InUse("a")
			}
		}()
	}
	wg.Wait()
	checkRunSets(t, "after concurrent use", a)
}
