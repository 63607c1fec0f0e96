package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"
)

// TestErrorMessages pins the messages users see in events, and the sentinel
// each one wraps.
func TestErrorMessages(t *testing.T) {
	a := New()
	mustSetPools(t, a,
		auto("a", "198.51.100.0/31").prio(1),
		auto("b", "198.51.100.2/31").prio(2),
		auto("ext", "203.0.113.0/30").manual().external("allowed"),
	)
	for _, r := range []Request{lb(s1).share("k", "TCP/80").backend("node-set-1"), lb(s2), lb(s3), lb(s4)} {
		if _, err := a.Allocate(r); err != nil {
			t.Fatalf("setup Allocate(%s): %v", r.Owner.Name, err)
		}
	}
	if _, err := a.Allocate(lb(svc("claim", 9)).kind(ExternalIP).inNamespace("allowed").addrs("203.0.113.1")); err != nil {
		t.Fatalf("setup claim: %v", err)
	}
	tenant := Owner{Namespace: "other", Name: "t", UID: "uid-t", Created: epoch}
	tests := []struct {
		name    string
		req     Request
		wantMsg string
		wantErr error
	}{
		{"in use", lb(s5).addrs("198.51.100.1"), "ipam: allocate ns/s5: address 198.51.100.1 is in use by ns/s2", ErrInUse},
		{"in use, holder does not share", lb(s5).share("k").addrs("198.51.100.1"), "ipam: allocate ns/s5: address 198.51.100.1 is in use by ns/s2: the holder sets no sharing key", ErrInUse},
		{"in use as an external IP", lb(s5).pool("ext").addrs("203.0.113.1"), "ipam: allocate ns/s5: address 203.0.113.1 is in use by ns/claim (as an external IP)", ErrInUse},
		{"ports overlap", lb(s5).share("k", "TCP/80").addrs("198.51.100.0"), "ipam: allocate ns/s5: address 198.51.100.0 cannot be shared with ns/s1: both use port TCP/80", ErrSharingRefused},
		{"backends differ", lb(s5).share("k", "UDP/53").backend("node-set-2").addrs("198.51.100.0"), "ipam: allocate ns/s5: address 198.51.100.0 cannot be shared with ns/s1: they do not select the same backends, which externalTrafficPolicy Local requires", ErrSharingRefused},
		{"every pool exhausted", lb(s5), `ipam: allocate ns/s5: no pool can serve the request: pool "a" has no free IPv4 address; pool "b" has no free IPv4 address`, ErrPoolExhausted},
		{"named pool exhausted", lb(s5).pool("a"), `ipam: allocate ns/s5: pool "a" has no free IPv4 address`, ErrPoolExhausted},
		{"named pool exhausted, sharing refused", lb(s5).pool("a").share("k", "TCP/80"), `ipam: allocate ns/s5: pool "a" has no free IPv4 address, and the address shared under key "k" in its namespace cannot be shared with this service: both use port TCP/80`, ErrPoolExhausted},
		// Across namespaces every refusal reads the same, whatever the key:
		// it names nobody and does not tell whether the key matched.
		{"another namespace, same key", lb(tenant).share("k", "UDP/53").addrs("198.51.100.0"), "ipam: allocate other/t: address 198.51.100.0 is in use by a service of another namespace", ErrInUse},
		{"another namespace, same key and opt-in", lb(tenant).share("k", "UDP/53").allow("ns").addrs("198.51.100.0"), "ipam: allocate other/t: address 198.51.100.0 is in use by a service of another namespace", ErrInUse},
		{"another namespace, other key", lb(tenant).share("x", "UDP/53").addrs("198.51.100.0"), "ipam: allocate other/t: address 198.51.100.0 is in use by a service of another namespace", ErrInUse},
		{"another namespace, no key", lb(tenant).addrs("198.51.100.0"), "ipam: allocate other/t: address 198.51.100.0 is in use by a service of another namespace", ErrInUse},
		{"another namespace, port used", lb(tenant).share("k", "TCP/80").allow("*").addrs("198.51.100.0"), "ipam: allocate other/t: address 198.51.100.0 is in use by a service of another namespace", ErrInUse},
		{"another namespace, external IP", lb(tenant).pool("ext").addrs("203.0.113.1"), "ipam: allocate other/t: address 203.0.113.1 is in use by a service of another namespace", ErrInUse},
		{"another namespace, pool exhausted with the key", lb(tenant).pool("a").share("k", "TCP/80"), `ipam: allocate other/t: pool "a" has no free IPv4 address`, ErrPoolExhausted},
		{"family missing", lb(s5).fams(IPv6).pool("a"), `ipam: allocate ns/s5: pool "a" has no IPv6 addresses`, ErrFamilyUnavailable},
		{"no such pool", lb(s5).pool("c"), `ipam: allocate ns/s5: pool "c" does not exist`, ErrNoSuchPool},
		{"not in any pool", lb(s5).addrs("203.0.113.200"), "ipam: allocate ns/s5: address 203.0.113.200 is not in any pool", ErrNotInAnyPool},
		{"external IP not in any pool", lb(s5).kind(ExternalIP).addrs("203.0.113.200"), "ipam: allocate ns/s5: external IP 203.0.113.200 is not in any pool, so it cannot be claimed", ErrNotInAnyPool},
		{"external IPs not allowed", lb(s5).kind(ExternalIP).addrs("198.51.100.0"), `ipam: allocate ns/s5: pool "a" does not allow external IPs`, ErrNotAllowed},
		{"external IPs not allowed for the namespace", lb(s5).kind(ExternalIP).addrs("203.0.113.2"), `ipam: allocate ns/s5: pool "ext" does not allow external IPs for namespace "ns"`, ErrNotAllowed},
		{"wrong family", lb(s5).addrs("2001:db8::1"), "ipam: allocate ns/s5: address 2001:db8::1 is IPv6, but the service asks for IPv4 only", ErrInvalidRequest},
		{"no name", lb(Owner{Namespace: "ns"}), "ipam: allocate ns/: the owner has no name", ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Allocate(tt.req)
			if err == nil {
				t.Fatal("Allocate succeeded, want an error")
			}
			if diff := cmp.Diff(tt.wantMsg, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantErr)
			}
		})
	}
}

func TestInUseErrorNamesTheHolder(t *testing.T) {
	a := New()
	mustSetPools(t, a, auto("a", "198.51.100.0/24"))
	if _, err := a.Allocate(lb(s1)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Allocate(lb(s2).addrs("198.51.100.0"))
	var inUse *InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("got %v, want an *InUseError", err)
	}
	want := &InUseError{Op: "allocate", For: s2, Addr: netip.MustParseAddr("198.51.100.0"), Holder: s1, HolderKind: LoadBalancer}
	if diff := cmp.Diff(*want, *inUse, cmpOpts); diff != "" {
		t.Errorf("InUseError (-want +got):\n%s", diff)
	}
}

// TestSetPoolsLeavesOutInvalidParts checks that SetPools applies what is valid
// and reports the rest, deterministically by priority and name.
func TestSetPoolsLeavesOutInvalidParts(t *testing.T) {
	a := New()
	err := a.SetPools([]PoolSpec{
		auto("late", "198.51.100.128/25", "203.0.113.0/30").prio(5),
		auto("early", "198.51.100.0/24").prio(1),
		auto("early", "203.0.113.100/30"),
		{Name: "bad", Ranges: []netipx.IPRange{netipx.IPRangeFrom(netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.8"))}},
		{Ranges: ranges("203.0.113.64/30")},
	})
	if !errors.Is(err, ErrInvalidPool) {
		t.Fatalf("SetPools error %v, want ErrInvalidPool", err)
	}
	wantMsg := `ipam: set pools: a pool has no name; it is ignored
ipam: set pools: pool "bad": range 203.0.113.9-203.0.113.8 is not valid (families mixed, reversed or empty); it is ignored
ipam: set pools: pool "late": range 198.51.100.128-198.51.100.255 overlaps 198.51.100.0-198.51.100.255 of pool "early"; it is ignored
ipam: set pools: pool "early" is defined twice; the second definition is ignored`
	if diff := cmp.Diff(wantMsg, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	st := a.Stats()
	var names []string
	for _, p := range st.Pools {
		names = append(names, p.Name+"="+p.IPv4.Total.String())
	}
	if diff := cmp.Diff([]string{"bad=0", "early=256", "late=4"}, names); diff != "" {
		t.Errorf("pools applied (-want +got):\n%s", diff)
	}
}
