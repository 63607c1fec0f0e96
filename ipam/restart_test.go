package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// permutations returns every order of the indexes 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// TestRestartImportsInAnyOrder builds state with sharing, dual stack and an
// external IP, then restores it into new allocators, importing in every
// order: each restart imports everything, and allocating again moves nothing.
func TestRestartImportsInAnyOrder(t *testing.T) {
	pools := []PoolSpec{
		auto("dual", "198.51.100.0/28", "2001:db8:1::/120").prio(1),
		auto("ext", "203.0.113.0/28").external("ns").prio(2),
	}
	requests := []Request{
		lb(s1).share("k", "TCP/80"),
		lb(s2).share("k", "TCP/443"),
		lb(s3).fams(IPv6, IPv4).requireAll(),
		lb(s4).kind(ExternalIP).addrs("203.0.113.7"),
		lb(s5).pool("ext"),
	}
	before := New()
	mustSetPools(t, before, pools...)
	results := make([]Result, len(requests))
	for i, r := range requests {
		var err error
		if results[i], err = before.Allocate(r); err != nil {
			t.Fatalf("Allocate(%s): %v", r.Owner.Name, err)
		}
	}
	if results[0].Addresses[0] != results[1].Addresses[0] {
		t.Fatalf("s1 and s2 should share an address, got %v and %v", results[0].Addresses, results[1].Addresses)
	}
	want := snapshot(before)

	for _, order := range permutations(len(requests)) {
		after := New()
		mustSetPools(t, after, pools...)
		for _, i := range order {
			got, err := after.Import(requests[i], results[i].Addresses)
			if err != nil {
				t.Fatalf("order %v: Import(%s): %v", order, requests[i].Owner.Name, err)
			}
			if len(got.Displaced) != 0 {
				t.Fatalf("order %v: Import(%s) displaced %v", order, requests[i].Owner.Name, got.Displaced)
			}
		}
		if diff := cmp.Diff(want, snapshot(after)); diff != "" {
			t.Fatalf("order %v: state after import (-want +got):\n%s", order, diff)
		}
		for i, r := range requests {
			got, err := after.Allocate(r)
			if err != nil {
				t.Fatalf("order %v: Allocate(%s) after restart: %v", order, r.Owner.Name, err)
			}
			if diff := cmp.Diff(results[i], got, cmpOpts); diff != "" {
				t.Fatalf("order %v: Allocate(%s) after restart moved (-want +got):\n%s", order, r.Owner.Name, diff)
			}
		}
		if diff := cmp.Diff(want, snapshot(after)); diff != "" {
			t.Fatalf("order %v: state after allocating again (-want +got):\n%s", order, diff)
		}
		if diff := cmp.Diff(before.Stats(), after.Stats(), cmpOpts); diff != "" {
			t.Fatalf("order %v: stats (-want +got):\n%s", order, diff)
		}
	}
}

// TestImportConflictsPickTheOldestInAnyOrder imports three owners claiming one
// address without sharing: whatever the order, the oldest ends up with it and
// each younger one is either refused or displaced.
func TestImportConflictsPickTheOldestInAnyOrder(t *testing.T) {
	owners := []Owner{svc("young", 30), svc("old", 10), svc("middle", 20)}
	// Same creation time: the smaller UID wins.
	tie := Owner{Namespace: "ns", Name: "tie", UID: "a-uid", Created: owners[1].Created}
	owners = append(owners, tie)
	addr := netip.MustParseAddr("198.51.100.9")
	for _, order := range permutations(len(owners)) {
		a := New()
		mustSetPools(t, a, auto("a", "198.51.100.0/24"))
		losers := map[string]bool{}
		for _, i := range order {
			res, err := a.Import(lb(owners[i]), []netip.Addr{addr})
			var inUse *InUseError
			switch {
			case err == nil:
			case errors.As(err, &inUse):
				losers[owners[i].Name] = true
			default:
				t.Fatalf("order %v: Import(%s): %v", order, owners[i].Name, err)
			}
			for _, d := range res.Displaced {
				losers[d.Owner.Name] = true
			}
		}
		h, _ := a.Lookup(addr)
		if diff := cmp.Diff([]Holder{{Owner: tie, Kind: LoadBalancer, Pool: "a"}}, h.Holders, cmpOpts); diff != "" {
			t.Fatalf("order %v: holders (-want +got):\n%s", order, diff)
		}
		if diff := cmp.Diff(map[string]bool{"young": true, "old": true, "middle": true}, losers); diff != "" {
			t.Fatalf("order %v: losers (-want +got):\n%s", order, diff)
		}
	}
}
