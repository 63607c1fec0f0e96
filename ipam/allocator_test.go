package ipam

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// step is one operation of a stateful sequence and what it must return.
type step struct {
	name    string
	do      func(*Allocator) (any, error)
	want    any
	wantErr error
	// state, when set, is the whole allocation table after the step (see snapshot).
	state map[string]string
}

func allocate(r Request) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return a.Allocate(r) }
}

func dryRun(r Request) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return a.DryRun(r) }
}

func release(o Owner, k Kind) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return a.Release(o, k), nil }
}

func importAddrs(r Request, addrs ...string) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return a.Import(r, parseAddrs(addrs...)) }
}

func setPools(specs ...PoolSpec) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return nil, a.SetPools(specs) }
}

func lookup(addr string) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) {
		h, _ := a.Lookup(netip.MustParseAddr(addr))
		return h, nil
	}
}

func outside() func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return a.OutsidePool(), nil }
}

func inUse(pool string) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) { return a.InUse(pool), nil }
}

func addresses(o Owner, k Kind) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) {
		r, _ := a.Addresses(o, k)
		return r, nil
	}
}

func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		got, err := s.do(a)
		if diff := cmp.Diff(s.wantErr, err, cmpOpts); diff != "" {
			t.Fatalf("step %d %q: error mismatch (-want +got):\n%s\n(error: %v)", i, s.name, diff, err)
		}
		if err != nil && s.want == nil {
			continue
		}
		if diff := cmp.Diff(s.want, got, cmpOpts); diff != "" {
			t.Fatalf("step %d %q: result mismatch (-want +got):\n%s", i, s.name, diff)
		}
		if s.state != nil {
			if diff := cmp.Diff(s.state, snapshot(a)); diff != "" {
				t.Fatalf("step %d %q: state mismatch (-want +got):\n%s", i, s.name, diff)
			}
		}
	}
}

var (
	s1, s2, s3, s4, s5 = svc("s1", 1), svc("s2", 2), svc("s3", 3), svc("s4", 4), svc("s5", 5)
)

func TestAllocatorSequences(t *testing.T) {
	tests := []struct {
		name  string
		pools []PoolSpec
		steps []step
	}{
		{
			name:  "basics and sharing",
			pools: []PoolSpec{auto("a", "198.51.100.0/24").avoid()},
			steps: []step{
				{name: "s1 gets .1", do: allocate(lb(s1).share("k", "TCP/80")), want: res("a", "198.51.100.1")},
				{name: "s1 again is idempotent", do: allocate(lb(s1).share("k", "TCP/80")), want: res("a", "198.51.100.1"),
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.1"}},
				{name: "s2 cannot take s1's address", do: allocate(lb(s2).addrs("198.51.100.1")), wantErr: ErrInUse},
				{name: "s2 gets .2", do: allocate(lb(s2)), want: res("a", "198.51.100.2")},
				{name: "s3 shares with s1 under the same key and disjoint ports", do: allocate(lb(s3).share("k", "TCP/443")), want: res("a", "198.51.100.1")},
				{name: "overlapping ports refused", do: allocate(lb(s4).share("k", "TCP/443").addrs("198.51.100.1")), wantErr: ErrSharingRefused},
				{name: "overlapping ports take a new address automatically", do: allocate(lb(s4).share("k", "TCP/443")), want: res("a", "198.51.100.3")},
				{name: "a Local service may join Cluster sharers: any node they share is one of its own", do: dryRun(lb(s5).share("k", "UDP/53").backend("b").addrs("198.51.100.1")), want: res("a", "198.51.100.1")},
				{name: "a different key is refused", do: allocate(lb(s5).share("other", "UDP/53").addrs("198.51.100.1")), wantErr: ErrInUse},
				{name: "lookup lists both sharers", do: lookup("198.51.100.1"), want: Holding{Pool: "a", Holders: []Holder{
					{Owner: s1, Kind: LoadBalancer, Pool: "a"}, {Owner: s3, Kind: LoadBalancer, Pool: "a"}}}},
				{name: "s1 releases, s3 keeps the address", do: release(s1, LoadBalancer), want: true},
				{name: "s5 cannot take it while s3 holds it", do: allocate(lb(s5).addrs("198.51.100.1")), wantErr: ErrInUse},
				{name: "s3 changes ports, still compatible with nobody else: stays", do: allocate(lb(s3).share("k", "TCP/80")), want: res("a", "198.51.100.1")},
				{name: "s3 releases", do: release(s3, LoadBalancer), want: true},
				{name: "releasing twice reports nothing", do: release(s3, LoadBalancer), want: false},
				{name: "the address is free again", do: allocate(lb(s5)), want: res("a", "198.51.100.1"),
					state: map[string]string{"ns/s2/LoadBalancer": "a: 198.51.100.2", "ns/s4/LoadBalancer": "a: 198.51.100.3", "ns/s5/LoadBalancer": "a: 198.51.100.1"}},
			},
		},
		{
			name:  "exhausted then capacity added",
			pools: []PoolSpec{auto("a", "198.51.100.0/31")},
			steps: []step{
				{name: "s1", do: allocate(lb(s1)), want: res("a", "198.51.100.0")},
				{name: "s2", do: allocate(lb(s2)), want: res("a", "198.51.100.1")},
				{name: "s3 finds the pool exhausted", do: allocate(lb(s3)), wantErr: ErrPoolExhausted},
				{name: "dry run says the same", do: dryRun(lb(s3)), wantErr: ErrPoolExhausted},
				{name: "capacity added", do: setPools(auto("a", "198.51.100.0/31", "203.0.113.10-203.0.113.11")), want: nil},
				{name: "dry run now succeeds", do: dryRun(lb(s3)), want: res("a", "203.0.113.10"), state: map[string]string{
					"ns/s1/LoadBalancer": "a: 198.51.100.0", "ns/s2/LoadBalancer": "a: 198.51.100.1"}},
				{name: "s3 gets it, nothing else moves", do: allocate(lb(s3)), want: res("a", "203.0.113.10"), state: map[string]string{
					"ns/s1/LoadBalancer": "a: 198.51.100.0", "ns/s2/LoadBalancer": "a: 198.51.100.1", "ns/s3/LoadBalancer": "a: 203.0.113.10"}},
			},
		},
		{
			name:  "pool edit leaves an address outside and it is kept and reported",
			pools: []PoolSpec{auto("a", "198.51.100.0/30")},
			steps: []step{
				{name: "s1", do: allocate(lb(s1)), want: res("a", "198.51.100.0")},
				{name: "s2", do: allocate(lb(s2)), want: res("a", "198.51.100.1")},
				{name: "shrink the pool", do: setPools(auto("a", "198.51.100.1-198.51.100.3"))},
				{name: "s1 is kept and reported", do: outside(), want: []Outside{{Owner: s1, Kind: LoadBalancer, Addr: netip.MustParseAddr("198.51.100.0"), Pool: "a", Reason: OutsideAllPools}}},
				{name: "s1 allocating again does not move", do: allocate(lb(s1)), want: res("a", "198.51.100.0")},
				{name: "the outside address is not handed out", do: allocate(lb(s3)), want: res("a", "198.51.100.2")},
				{name: "remove the pool", do: setPools()},
				{name: "its allocations stay counted", do: inUse("a"), want: 3},
				{name: "and are all reported", do: outside(), want: []Outside{
					{Owner: s1, Kind: LoadBalancer, Addr: netip.MustParseAddr("198.51.100.0"), Pool: "a", Reason: OutsideAllPools},
					{Owner: s2, Kind: LoadBalancer, Addr: netip.MustParseAddr("198.51.100.1"), Pool: "a", Reason: OutsideAllPools},
					{Owner: s3, Kind: LoadBalancer, Addr: netip.MustParseAddr("198.51.100.2"), Pool: "a", Reason: OutsideAllPools},
				}},
				{name: "release s1", do: release(s1, LoadBalancer), want: true},
				{name: "release s2", do: release(s2, LoadBalancer), want: true},
				{name: "release s3", do: release(s3, LoadBalancer), want: true},
				{name: "the pool is free", do: inUse("a"), want: 0},
				{name: "nothing outside", do: outside(), want: []Outside(nil)},
			},
		},
		{
			name:  "a range moved to another pool counts there",
			pools: []PoolSpec{auto("a", "198.51.100.0/30"), auto("b", "203.0.113.0/30")},
			steps: []step{
				{name: "s1 in a", do: allocate(lb(s1)), want: res("a", "198.51.100.0")},
				{name: "move the range to b", do: setPools(auto("a", "203.0.113.0/30"), auto("b", "198.51.100.0/30"))},
				{name: "s1 now counts in b", do: addresses(s1, LoadBalancer), want: res("b", "198.51.100.0")},
				{name: "a is free", do: inUse("a"), want: 0},
				{name: "nothing is outside", do: outside(), want: []Outside(nil)},
			},
		},
		{
			name: "dual stack from one pool",
			pools: []PoolSpec{
				auto("a-v4", "198.51.100.0/30").prio(1),
				auto("b-dual", "203.0.113.0/30", "2001:db8::/126").prio(2),
			},
			steps: []step{
				{name: "RequireDualStack skips the v4-only pool", do: allocate(lb(s1).fams(IPv4, IPv6).requireAll()), want: res("b-dual", "203.0.113.0", "2001:db8::")},
				{name: "PreferDualStack prefers a pool that serves both", do: allocate(lb(s2).fams(IPv6, IPv4)), want: res("b-dual", "2001:db8::1", "203.0.113.1")},
				{name: "single stack IPv4 follows priority", do: allocate(lb(s3)), want: res("a-v4", "198.51.100.0")},
				{name: "single stack IPv6", do: allocate(lb(s4).fams(IPv6)), want: res("b-dual", "2001:db8::2")},
				{name: "requested IPv6 address with an automatic IPv4 from the same pool", do: allocate(lb(s5).fams(IPv4, IPv6).addrs("2001:db8::3")), want: res("b-dual", "203.0.113.2", "2001:db8::3")},
				{name: "dual stack becomes single stack: the IPv4 address stays", do: allocate(lb(s1)), want: res("b-dual", "203.0.113.0")},
				{name: "the released IPv6 address is free", do: lookup("2001:db8::"), want: Holding{}},
				{name: "requested addresses from two pools are refused", do: allocate(lb(s1).fams(IPv4, IPv6).addrs("198.51.100.3", "2001:db8::")), wantErr: ErrInvalidRequest},
				{name: "wrong family is refused", do: allocate(lb(s1).addrs("2001:db8::")), wantErr: ErrInvalidRequest},
				{name: "two addresses of one family are refused", do: allocate(lb(s1).addrs("203.0.113.3", "198.51.100.3")), wantErr: ErrInvalidRequest},
			},
		},
		{
			name:  "RequireDualStack fails when a family is missing, PreferDualStack degrades",
			pools: []PoolSpec{auto("a", "198.51.100.0/30")},
			steps: []step{
				{name: "require fails", do: allocate(lb(s1).fams(IPv4, IPv6).requireAll()), wantErr: ErrFamilyUnavailable},
				{name: "nothing was taken", do: addresses(s1, LoadBalancer), want: Result{}},
				{name: "prefer degrades to IPv4", do: allocate(lb(s1).fams(IPv4, IPv6)), want: Result{Pool: "a", Addresses: parseAddrs("198.51.100.0"), Degraded: ErrFamilyUnavailable}},
				{name: "prefer with IPv6 first fails", do: allocate(lb(s2).fams(IPv6, IPv4)), wantErr: ErrFamilyUnavailable},
				{name: "IPv6 added to the pool", do: setPools(auto("a", "198.51.100.0/30", "2001:db8::/120"))},
				{name: "the IPv4 address stays and IPv6 is added", do: allocate(lb(s1).fams(IPv4, IPv6)), want: res("a", "198.51.100.0", "2001:db8::")},
			},
		},
		{
			name:  "autoAssign=false only explicit",
			pools: []PoolSpec{auto("m", "198.51.100.0/30").manual()},
			steps: []step{
				{name: "automatic is refused", do: allocate(lb(s1)), wantErr: ErrNotAllowed},
				{name: "named pool works", do: allocate(lb(s1).pool("m")), want: res("m", "198.51.100.0")},
				{name: "requested address works", do: allocate(lb(s2).addrs("198.51.100.3")), want: res("m", "198.51.100.3")},
				{name: "unknown pool", do: allocate(lb(s3).pool("nope")), wantErr: ErrNoSuchPool},
				{name: "address in no pool", do: allocate(lb(s3).addrs("203.0.113.1")), wantErr: ErrNotInAnyPool},
				{name: "address in another pool than the named one", do: setPools(auto("m", "198.51.100.0/30").manual(), auto("o", "203.0.113.0/30"))},
				{name: "is refused", do: allocate(lb(s3).pool("m").addrs("203.0.113.1")), wantErr: ErrInvalidRequest},
			},
		},
		{
			name: "priority then name",
			pools: []PoolSpec{
				auto("d-default", "198.51.100.40/32"),
				auto("b", "198.51.100.20/32").prio(10),
				auto("a", "198.51.100.10/32").prio(10),
				auto("c", "198.51.100.30/32").prio(5),
			},
			steps: []step{
				{name: "lowest priority first", do: allocate(lb(s1)), want: res("c", "198.51.100.30")},
				{name: "then by name", do: allocate(lb(s2)), want: res("a", "198.51.100.10")},
				{name: "then the next name", do: allocate(lb(s3)), want: res("b", "198.51.100.20")},
				{name: "default priority last", do: allocate(lb(s4)), want: res("d-default", "198.51.100.40")},
				{name: "all exhausted", do: allocate(lb(s5)), wantErr: ErrPoolExhausted},
			},
		},
		{
			name:  "avoidBuggyIPs",
			pools: []PoolSpec{auto("a", "198.51.100.254-198.51.100.255", "203.0.113.0-203.0.113.1").avoid()},
			steps: []step{
				{name: "skips .255 and .0", do: allocate(lb(s1)), want: res("a", "198.51.100.254")},
				{name: "next usable", do: allocate(lb(s2)), want: res("a", "203.0.113.1")},
				{name: "exhausted", do: allocate(lb(s3)), wantErr: ErrPoolExhausted},
				{name: "requesting .0 is refused", do: allocate(lb(s3).addrs("203.0.113.0")), wantErr: ErrNotAllowed},
			},
		},
		{
			name:  "namespace admission",
			pools: []PoolSpec{auto("team", "198.51.100.0/30").admit("team-a").prio(1), auto("shared", "203.0.113.0/30").prio(100)},
			steps: []step{
				{name: "team-a gets its pool", do: allocate(lb(svc("x", 1)).inNamespace("team-a")), want: res("team", "198.51.100.0")},
				{name: "team-b falls through to the shared pool", do: allocate(lb(svc("y", 1)).inNamespace("team-b")), want: res("shared", "203.0.113.0")},
				{name: "team-b cannot name the pool", do: allocate(lb(svc("z", 1)).inNamespace("team-b").pool("team")), wantErr: ErrNotAllowed},
				{name: "team-b cannot request its address", do: allocate(lb(svc("z", 1)).inNamespace("team-b").addrs("198.51.100.1")), wantErr: ErrNotAllowed},
			},
		},
		{
			name: "external IP allowed/not allowed",
			pools: []PoolSpec{
				auto("lb-only", "198.51.100.0/30"),
				auto("ext", "203.0.113.0/30").external("ok").prio(100),
			},
			steps: []step{
				{name: "claim in a pool without allowExternalIPs", do: allocate(lb(s1).kind(ExternalIP).inNamespace("ok").addrs("198.51.100.2")), wantErr: ErrNotAllowed},
				{name: "claim outside every pool", do: allocate(lb(s1).kind(ExternalIP).inNamespace("ok").addrs("203.0.113.200")), wantErr: ErrNotInAnyPool},
				{name: "claim from a namespace not allowed", do: allocate(lb(s1).kind(ExternalIP).inNamespace("bad").addrs("203.0.113.1")), wantErr: ErrNotAllowed},
				{name: "claim allowed", do: allocate(lb(s1).kind(ExternalIP).inNamespace("ok").addrs("203.0.113.1")), want: res("ext", "203.0.113.1")},
				{name: "a load balancer cannot take the claimed address", do: allocate(lb(s2).addrs("203.0.113.1")), wantErr: ErrInUse},
				{name: "allocated external IP", do: allocate(lb(s3).kind(ExternalIP).inNamespace("ok")), want: res("ext", "203.0.113.0")},
				{name: "allocated external IP refused for another namespace", do: allocate(lb(s4).kind(ExternalIP).inNamespace("bad")), wantErr: ErrNotAllowed},
				{name: "load balancers skip claimed addresses", do: allocate(lb(s2).pool("ext")), want: res("ext", "203.0.113.2")},
				{name: "another claim of the same address is refused", do: allocate(lb(s4).kind(ExternalIP).inNamespace("ok").addrs("203.0.113.1")), wantErr: ErrInUse},
				{name: "the same service may use its claimed address as load balancer IP", do: allocate(lb(s1).inNamespace("ok").pool("ext").addrs("203.0.113.1")), want: res("ext", "203.0.113.1")},
				{name: "permission revoked", do: setPools(auto("lb-only", "198.51.100.0/30"), auto("ext", "203.0.113.0/30").prio(100))},
				{name: "the claim is refused again", do: allocate(lb(s1).kind(ExternalIP).inNamespace("ok").addrs("203.0.113.1")), wantErr: ErrNotAllowed},
				{name: "but not dropped: the caller decides", do: addresses(s1, ExternalIP), want: res("ext", "203.0.113.1")},
			},
		},
		{
			name:  "failed change keeps the old address",
			pools: []PoolSpec{auto("a", "198.51.100.0/29")},
			steps: []step{
				{name: "s1", do: allocate(lb(s1)), want: res("a", "198.51.100.0")},
				{name: "s2", do: allocate(lb(s2)), want: res("a", "198.51.100.1")},
				{name: "s1 asks for s2's address", do: allocate(lb(s1).addrs("198.51.100.1")), wantErr: ErrInUse,
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.0", "ns/s2/LoadBalancer": "a: 198.51.100.1"}},
				{name: "s1 asks for an address in no pool", do: allocate(lb(s1).addrs("203.0.113.9")), wantErr: ErrNotInAnyPool,
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.0", "ns/s2/LoadBalancer": "a: 198.51.100.1"}},
				{name: "s1 asks for a missing pool", do: allocate(lb(s1).pool("missing")), wantErr: ErrNoSuchPool,
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.0", "ns/s2/LoadBalancer": "a: 198.51.100.1"}},
				{name: "s1 moves to a free address", do: allocate(lb(s1).addrs("198.51.100.5")), want: res("a", "198.51.100.5"),
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.5", "ns/s2/LoadBalancer": "a: 198.51.100.1"}},
				{name: "the old address is free", do: allocate(lb(s3)), want: res("a", "198.51.100.0")},
				{name: "s1 without a requested address stays", do: allocate(lb(s1)), want: res("a", "198.51.100.5")},
			},
		},
		{
			name:  "older wins an import conflict: older imported first",
			pools: []PoolSpec{auto("a", "198.51.100.0/29")},
			steps: []step{
				{name: "older", do: importAddrs(lb(s1), "198.51.100.5"), want: ImportResult{Pool: "a", Addresses: parseAddrs("198.51.100.5")}},
				{name: "younger loses", do: importAddrs(lb(s2), "198.51.100.5"), want: ImportResult{}, wantErr: ErrInUse,
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.5"}},
			},
		},
		{
			name:  "older wins an import conflict: younger imported first",
			pools: []PoolSpec{auto("a", "198.51.100.0/29")},
			steps: []step{
				{name: "younger", do: importAddrs(lb(s2).fams(IPv4, IPv6), "198.51.100.5", "2001:db8::5"), want: ImportResult{Pool: "a", Addresses: parseAddrs("198.51.100.5", "2001:db8::5")}},
				{name: "older displaces it", do: importAddrs(lb(s1), "198.51.100.5"), want: ImportResult{Pool: "a", Addresses: parseAddrs("198.51.100.5"),
					Displaced: []Displacement{{Owner: s2, Kind: LoadBalancer, Addr: netip.MustParseAddr("198.51.100.5")}}},
					state: map[string]string{"ns/s1/LoadBalancer": "a: 198.51.100.5", "ns/s2/LoadBalancer": "a: 2001:db8::5"}},
				{name: "the younger one is re-evaluated and gets a new IPv4 address", do: allocate(lb(s2).fams(IPv4)), want: res("a", "198.51.100.0")},
			},
		},
		{
			name:  "imports keep what pool rules would refuse",
			pools: []PoolSpec{auto("a", "198.51.100.0/24").avoid()},
			steps: []step{
				{name: "avoided address", do: importAddrs(lb(s1), "198.51.100.0"), want: ImportResult{Pool: "a", Addresses: parseAddrs("198.51.100.0")}},
				{name: "address in no pool", do: importAddrs(lb(s2).pool("gone"), "203.0.113.7"), want: ImportResult{Pool: "gone", Addresses: parseAddrs("203.0.113.7")}},
				{name: "both reported", do: outside(), want: []Outside{
					{Owner: s1, Kind: LoadBalancer, Addr: netip.MustParseAddr("198.51.100.0"), Pool: "a", Reason: AvoidedAddress},
					{Owner: s2, Kind: LoadBalancer, Addr: netip.MustParseAddr("203.0.113.7"), Pool: "gone", Reason: OutsideAllPools},
				}},
				{name: "the removed pool is held", do: inUse("gone"), want: 1},
				{name: "allocating again moves nothing", do: allocate(lb(s1)), want: res("a", "198.51.100.0")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New()
			mustSetPools(t, a, tt.pools...)
			runSteps(t, a, tt.steps)
		})
	}
}
