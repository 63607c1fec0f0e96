package soak

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l2   = netip.MustParsePrefix("198.51.100.128/26")
	bgp  = netip.MustParsePrefix("203.0.113.128/25")
	a1   = netip.MustParseAddr("198.51.100.130")
	a2   = netip.MustParseAddr("198.51.100.131")
	r1   = netip.MustParseAddr("203.0.113.193")
	cfg  = Config{Settle: 5 * time.Second, L2: []netip.Prefix{l2}, BGP: []netip.Prefix{bgp}}
	pool = Pool{Name: "p", Ranges: []Range{{netip.MustParseAddr("198.51.100.128"), netip.MustParseAddr("198.51.100.143")}},
		AdmitsLB: map[string]bool{"a": true}, Current: true}
	bgpPool = Pool{Name: "r", Ranges: []Range{{netip.MustParseAddr("203.0.113.192"), netip.MustParseAddr("203.0.113.207")}},
		AdmitsLB: map[string]bool{"a": true}, Current: true}
	allUp = []Node{{Name: "node1", Usable: true, BGPUp: t0.Add(-time.Hour)}, {Name: "node2", Usable: true, BGPUp: t0.Add(-time.Hour)},
		{Name: "node3", Usable: true, BGPUp: t0.Add(-time.Hour)}}
)

// svc returns a Service in namespace a holding addrs, Cluster policy, port
// 80, with a ready endpoint on node1.
func svc(name string, addrs ...netip.Addr) Service {
	s := Service{Namespace: "a", Name: name, UID: "uid-" + name, Ports: []Port{{"TCP", 80}}, Asks: "0",
		Endpoints: []Endpoint{{Node: "node1", Ready: true, Serving: true}}}
	for _, a := range addrs {
		pl := "p"
		if bgp.Contains(a) {
			pl = "r"
		}
		s.Held = append(s.Held, Holding{Addr: a, Pool: pl})
	}
	return s
}

func with(s Service, f func(*Service)) Service { f(&s); return s }

// kinds summarises violations as "invariant/kind/subject".
func kinds(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%d/%s/%s", v.Invariant, v.Kind, v.Subject))
	}
	return out
}

// step is one snapshot fed to a Checker, at t0 plus At seconds.
type step struct {
	name    string
	at      float64
	changes []Change
	svcs    []Service
	pools   []Pool
	nodes   []Node
	l2      map[netip.Addr][]string
	bgp     map[netip.Addr][]string
	l2Nodes []string // Snapshot.L2Nodes
	want    []string
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	c := NewChecker(cfg)
	for _, st := range steps {
		at := t0.Add(time.Duration(st.at * float64(time.Second)))
		c.Record(st.changes...)
		pools := st.pools
		if pools == nil {
			pools = []Pool{with2(pool, 0, 0), bgpPool}
		}
		nodes := st.nodes
		if nodes == nil {
			nodes = allUp
		}
		s := Snapshot{Time: at, Services: st.svcs, Pools: pools, Nodes: nodes, L2Nodes: st.l2Nodes}
		if st.l2 != nil || st.bgp != nil {
			w := &Wire{Start: at, End: at.Add(time.Second), L2: map[netip.Addr]L2Answer{}, BGP: st.bgp}
			for a, ns := range st.l2 {
				w.L2[a] = L2Answer{Nodes: ns}
			}
			s.Wire = w
		}
		got := kinds(c.Observe(s))
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Fatalf("step %q: violations (-want +got):\n%s", st.name, diff)
		}
	}
}

// with2 returns p with usage counts set.
func with2(p Pool, u4, u6 int) Pool { p.Used4, p.Used6 = u4, u6; return p }

func TestSharing(t *testing.T) {
	shared := func(name, key string, port int32) Service {
		return with(svc(name, a1), func(s *Service) { s.SharingKey = key; s.Ports = []Port{{"TCP", port}} })
	}
	pools := []Pool{with2(pool, 1, 0), bgpPool}
	for _, tc := range []struct {
		name string
		x, y Service
		want []string
	}{
		{"same key, disjoint ports", shared("x", "k", 80), shared("y", "k", 81), nil},
		{"same key, same port", shared("x", "k", 80), shared("y", "k", 80), []string{"1/shared/198.51.100.130"}},
		{"different keys", shared("x", "k", 80), shared("y", "j", 81), []string{"1/shared/198.51.100.130"}},
		{"one without key", shared("x", "k", 80), svc("y", a1), []string{"1/shared/198.51.100.130"}},
		{"other namespace", shared("x", "k", 80), with(shared("y", "k", 81), func(s *Service) { s.Namespace = "b" }),
			[]string{"1/shared/198.51.100.130"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pools := pools
			if tc.y.Namespace == "b" {
				p := pool
				p.AdmitsLB = map[string]bool{"a": true, "b": true}
				pools = []Pool{with2(p, 1, 0), bgpPool}
			}
			runSteps(t, []step{{name: "both hold", at: 10, svcs: []Service{tc.x, tc.y}, pools: pools, want: tc.want}})
		})
	}
	t.Run("an endpoint change does not hold the judgement back", func(t *testing.T) {
		runSteps(t, []step{
			{name: "endpoints moved", at: 10, changes: []Change{{Time: t0.Add(8 * time.Second), Service: "a/y", Endpoints: true}},
				svcs: []Service{shared("x", "k", 80), shared("y", "k", 80)}, pools: pools, want: []string{"1/shared/198.51.100.130"}},
		})
	})
	t.Run("a Service just edited is not judged yet", func(t *testing.T) {
		runSteps(t, []step{
			{name: "edited", at: 10, changes: []Change{{Time: t0.Add(8 * time.Second), Service: "a/y"}},
				svcs: []Service{shared("x", "k", 80), shared("y", "k", 80)}, pools: pools},
			{name: "settled", at: 14, svcs: []Service{shared("x", "k", 80), shared("y", "k", 80)}, pools: pools,
				want: []string{"1/shared/198.51.100.130"}},
		})
	})
}

// TestSharingFrozen: a frozen Service keeps the sharers it had when it froze
// whatever its key says since, but one that joins it later is judged by its
// current key.
func TestSharingFrozen(t *testing.T) {
	shared := func(name, key string, port int32) Service {
		return with(svc(name, a1), func(s *Service) { s.SharingKey = key; s.Ports = []Port{{"TCP", port}} })
	}
	frozen := func(s Service) Service { s.Frozen = true; return s }
	pools := []Pool{with2(pool, 1, 0), bgpPool}
	runSteps(t, []step{
		{name: "x and y share", at: 10, svcs: []Service{shared("x", "k", 80), shared("y", "k", 81)}, pools: pools},
		{name: "x freezes", at: 11, svcs: []Service{frozen(shared("x", "k", 80)), shared("y", "k", 81)}, pools: pools},
		{name: "x drops its key, frozen: kept with y", at: 12, svcs: []Service{frozen(shared("x", "", 80)), shared("y", "k", 81)}, pools: pools},
		{name: "z joins x without a key", at: 13, svcs: []Service{frozen(shared("x", "", 80)), shared("y", "k", 81), shared("z", "k", 82)}, pools: pools,
			want: []string{"1/shared/198.51.100.130"}},
		{name: "x thaws without a key: y is judged again", at: 14, svcs: []Service{shared("x", "", 80), shared("y", "k", 81)}, pools: pools,
			want: []string{"1/shared/198.51.100.130"}},
	})
}

func TestPoolAdmits(t *testing.T) {
	outside := netip.MustParseAddr("198.51.100.150")
	p := with2(pool, 1, 0)
	listed := p
	listed.Outside = []netip.Addr{outside}
	other := p
	other.AdmitsLB = map[string]bool{"b": true}
	ext := svc("x")
	ext.Held = []Holding{{Addr: a1, External: true, Pool: "p"}}
	for _, tc := range []struct {
		name string
		s    Service
		pool Pool
		want []string
	}{
		{"in an admitting pool", svc("x", a1), p, nil},
		{"in no pool", svc("x", outside), with2(pool, 0, 0), []string{"2/not admitted/198.51.100.150"}},
		{"outside, listed", svc("x", outside), with2(listed, 0, 0), nil},
		{"pool admits another namespace", svc("x", a1), other, []string{"2/not admitted/198.51.100.130"}},
		{"external IP from a pool without allowExternalIPs", ext, p, []string{"2/not admitted/198.51.100.130"}},
		{"another class", with(svc("x", a1), func(s *Service) { s.Class = "example.com/x" }), p,
			[]string{"2/other class/198.51.100.130"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, []step{{name: "held", at: 10, svcs: []Service{tc.s}, pools: []Pool{tc.pool, bgpPool}, want: tc.want}})
		})
	}
}

func TestStable(t *testing.T) {
	p1 := []Pool{with2(pool, 1, 0), bgpPool}
	asks1 := func(s Service) Service { s.Asks = "1"; return s }
	t.Run("asked", func(t *testing.T) {
		runSteps(t, []step{
			{name: "pending", at: 1, svcs: []Service{svc("x")}, pools: []Pool{pool, bgpPool}},
			{name: "allocated", at: 2, svcs: []Service{svc("x", a1)}, pools: p1},
			{name: "asks for another", at: 3, svcs: []Service{asks1(svc("x", a1))}, pools: p1},
			{name: "released for the ask", at: 4, svcs: []Service{asks1(svc("x"))}, pools: []Pool{pool, bgpPool}},
			{name: "given another", at: 5, svcs: []Service{asks1(svc("x", a2))}, pools: p1},
			{name: "lost with no new ask", at: 6, svcs: []Service{asks1(svc("x"))}, pools: []Pool{pool, bgpPool},
				want: []string{"5/address lost/a/x"}},
			{name: "deleted: no violation", at: 7, pools: []Pool{pool, bgpPool}},
		})
	})
	t.Run("an edit that asks nothing (a bad annotation)", func(t *testing.T) {
		runSteps(t, []step{
			{name: "allocated", at: 2, svcs: []Service{svc("x", a1)}, pools: p1},
			{name: "moved", at: 3, changes: []Change{{Time: t0.Add(2500 * time.Millisecond), Service: "a/x", What: "bad annotation"}},
				svcs: []Service{svc("x", a2)}, pools: p1, want: []string{"5/address lost/a/x"}},
		})
	})
	t.Run("recreated under the same name", func(t *testing.T) {
		runSteps(t, []step{
			{name: "allocated", at: 2, svcs: []Service{svc("x", a1)}, pools: p1},
			{name: "another UID", at: 3, svcs: []Service{with(svc("x", a2), func(s *Service) { s.UID = "other" })}, pools: p1},
		})
	})
}

func TestCounts(t *testing.T) {
	runSteps(t, []step{
		{name: "first seen", at: 1, svcs: []Service{svc("x", a1)}, pools: []Pool{with2(pool, 0, 0), bgpPool}},
		{name: "not settled", at: 4, svcs: []Service{svc("x", a1)}, pools: []Pool{with2(pool, 0, 0), bgpPool}},
		{name: "settled, wrong", at: 7, svcs: []Service{svc("x", a1)}, pools: []Pool{with2(pool, 0, 0), bgpPool},
			want: []string{"6/counts/IPPool p"}},
		{name: "settled, right", at: 8, svcs: []Service{svc("x", a1)}, pools: []Pool{with2(pool, 1, 0), bgpPool}},
		{name: "status behind the spec", at: 20, svcs: []Service{svc("x", a1)},
			pools: []Pool{staleStatus(), bgpPool}},
	})
}

// staleStatus returns the test pool with a status of an older generation and
// wrong counts.
func staleStatus() Pool { p := with2(pool, 5, 5); p.Current = false; return p }

func TestWireLayer2(t *testing.T) {
	local := func(eps ...Endpoint) Service {
		return with(svc("x", a1), func(s *Service) { s.Local = true; s.Endpoints = eps })
	}
	ready := func(n string) Endpoint { return Endpoint{Node: n, Ready: true, Serving: true} }
	draining := func(n string) Endpoint { return Endpoint{Node: n, Serving: true, Terminating: true} }
	p1 := []Pool{with2(pool, 1, 0), bgpPool}
	cut := []Node{{Name: "node1", Usable: false}, {Name: "node2", Usable: true}, {Name: "node3", Usable: true}}
	starved := []Node{{Name: "node1", Usable: true, Degraded: true}, {Name: "node2", Usable: true}, {Name: "node3", Usable: true}}
	for _, tc := range []struct {
		name   string
		s      Service
		nodes  []Node
		answer []string
		want   []string
	}{
		{"cluster, one answers", svc("x", a1), nil, []string{"node3"}, nil},
		{"cluster, nobody answers", svc("x", a1), nil, nil, []string{"3/unanswered/198.51.100.130"}},
		{"cluster, two answer", svc("x", a1), nil, []string{"node1", "node2"}, []string{"3/several answer/198.51.100.130"}},
		{"cluster, no endpoint, answered", with(svc("x", a1), func(s *Service) { s.Endpoints = nil }), nil, []string{"node2"},
			[]string{"3/answered, no node may/198.51.100.130"}},
		{"cluster, unusable node answers", svc("x", a1), cut, []string{"node1"}, []string{"3/wrong node/198.51.100.130"}},
		{"local, the node with the pod", local(ready("node2")), nil, []string{"node2"}, nil},
		{"local, a node without a pod", local(ready("node2")), nil, []string{"node1"}, []string{"4/wrong node/198.51.100.130"}},
		{"local, ready wins over draining", local(ready("node2"), draining("node3")), nil, []string{"node3"},
			[]string{"4/wrong node/198.51.100.130"}},
		{"local, draining fallback", local(draining("node3")), nil, []string{"node3"}, nil},
		{"local, ready pod on an unusable node only", local(ready("node1")), cut, []string{"node1"},
			[]string{"3/answered, no node may/198.51.100.130"}},
		{"cluster, a degraded node keeps it", svc("x", a1), starved, []string{"node1"}, nil},
		{"cluster, a degraded node and a successor answer", svc("x", a1), starved, []string{"node1", "node2"}, nil},
		{"cluster, a degraded node lost it", svc("x", a1), starved, []string{"node3"}, nil},
		{"cluster, degraded: two others answer", svc("x", a1), starved, []string{"node2", "node3"}, []string{"3/wrong node/198.51.100.130"}},
		{"local, degraded node without a pod answers", local(ready("node1")), starved, []string{"node1", "node2"},
			[]string{"4/wrong node/198.51.100.130"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, []step{
				{name: "seen", at: 1, svcs: []Service{tc.s}, pools: p1, nodes: tc.nodes},
				{name: "wire, not settled", at: 5, svcs: []Service{tc.s}, pools: p1, nodes: tc.nodes,
					l2: map[netip.Addr][]string{a1: {"node1", "node2", "node3"}}},
				{name: "wire", at: 7, svcs: []Service{tc.s}, pools: p1, nodes: tc.nodes, l2: map[netip.Addr][]string{a1: tc.answer}, want: tc.want},
			})
		})
	}
	t.Run("released address answered", func(t *testing.T) {
		runSteps(t, []step{
			{name: "held", at: 1, svcs: []Service{svc("x", a1)}, pools: p1},
			{name: "deleted", at: 2, changes: []Change{{Time: t0.Add(1500 * time.Millisecond), Service: "a/x"}}},
			{name: "still answered, too early", at: 4, l2: map[netip.Addr][]string{a1: {"node1"}}},
			{name: "still answered", at: 8, l2: map[netip.Addr][]string{a1: {"node1"}}, want: []string{"3/answered, no node may/198.51.100.130"}},
			{name: "silent", at: 9, l2: map[netip.Addr][]string{a1: nil}},
		})
	})
	t.Run("released, then given to a Service while the wire was read", func(t *testing.T) {
		c := NewChecker(cfg)
		c.Observe(Snapshot{Time: t0.Add(time.Second), Services: []Service{svc("x", a1)}, Pools: p1, Nodes: allUp})
		c.Observe(Snapshot{Time: t0.Add(2 * time.Second), Nodes: allUp})
		w := &Wire{Start: t0.Add(9 * time.Second), End: t0.Add(10 * time.Second),
			L2: map[netip.Addr]L2Answer{a1: {Nodes: []string{"node2"}}}, HeldAfter: map[netip.Addr]bool{a1: true}}
		if vs := c.Observe(Snapshot{Time: t0.Add(9 * time.Second), Nodes: allUp, Wire: w}); len(vs) > 0 {
			t.Errorf("violations %v, want none: the address was held again after the wire", vs)
		}
	})
	t.Run("a fault keeps everything unsettled", func(t *testing.T) {
		runSteps(t, []step{
			{name: "held", at: 1, svcs: []Service{svc("x", a1)}, pools: p1},
			{name: "fault", at: 10, changes: []Change{{Time: t0.Add(9 * time.Second), What: "speaker killed", Settle: 10 * time.Second}},
				svcs: []Service{svc("x", a1)}, pools: p1, l2: map[netip.Addr][]string{a1: nil}},
			{name: "settled", at: 20, svcs: []Service{svc("x", a1)}, pools: p1, l2: map[netip.Addr][]string{a1: nil},
				want: []string{"3/unanswered/198.51.100.130"}},
		})
	})
	t.Run("a leader fault holds back pool counts, not the wire", func(t *testing.T) {
		leader := []Change{{Time: t0.Add(9 * time.Second), What: "leader killed", Settle: 20 * time.Second, Controller: true}}
		runSteps(t, []step{
			{name: "held", at: 1, svcs: []Service{svc("x", a1)}, pools: []Pool{with2(pool, 0, 0), bgpPool}},
			{name: "leader killed", at: 10, changes: leader, svcs: []Service{svc("x", a1)}, pools: []Pool{with2(pool, 0, 0), bgpPool},
				l2: map[netip.Addr][]string{a1: nil}, want: []string{"3/unanswered/198.51.100.130"}},
		})
	})
	t.Run("external IP not accepted is answered", func(t *testing.T) {
		x := svc("x")
		x.UnacceptedExternalIPs = []netip.Addr{a2}
		runSteps(t, []step{
			{name: "answered", at: 10, svcs: []Service{x}, pools: []Pool{pool, bgpPool}, l2: map[netip.Addr][]string{a2: {"node1"}},
				want: []string{"3/answered, no node may/198.51.100.131"}},
		})
	})
	t.Run("shared address: the nodes eligible for most sharers", func(t *testing.T) {
		x := with(local(ready("node2")), func(s *Service) { s.SharingKey = "k" })
		y := with(svc("y", a1), func(s *Service) { s.SharingKey = "k"; s.Ports = []Port{{"TCP", 81}} })
		runSteps(t, []step{
			{name: "seen", at: 1, svcs: []Service{x, y}, pools: p1},
			{name: "node2 is eligible for both", at: 7, svcs: []Service{x, y}, pools: p1, l2: map[netip.Addr][]string{a1: {"node1"}},
				want: []string{"4/wrong node/198.51.100.130"}},
		})
	})
}

func TestWireBGP(t *testing.T) {
	p1 := []Pool{pool, with2(bgpPool, 1, 0)}
	local := with(svc("x", r1), func(s *Service) { s.Local = true })
	recent := slices.Clone(allUp)
	recent[2].BGPUp = t0.Add(6 * time.Second)
	down := slices.Clone(allUp)
	down[2].BGPUp = time.Time{}
	for _, tc := range []struct {
		name  string
		s     Service
		nodes []Node
		hops  []string
		want  []string
	}{
		{"cluster: every node", svc("x", r1), nil, []string{"node1", "node2", "node3"}, nil},
		{"cluster: one missing", svc("x", r1), nil, []string{"node1", "node2"}, []string{"3/eligible node missing/203.0.113.193"}},
		{"cluster: a session just up need not carry it yet", svc("x", r1), recent, []string{"node1", "node2"}, nil},
		{"local: only the node with the pod", local, nil, []string{"node1"}, nil},
		{"local: a node without a pod", local, nil, []string{"node1", "node3"}, []string{"4/next hop not eligible/203.0.113.193"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, []step{
				{name: "seen", at: 1, svcs: []Service{tc.s}, pools: p1, nodes: tc.nodes},
				{name: "wire", at: 7, svcs: []Service{tc.s}, pools: p1, nodes: tc.nodes, bgp: map[netip.Addr][]string{r1: tc.hops}, want: tc.want},
			})
		})
	}
	t.Run("a session down for long", func(t *testing.T) {
		runSteps(t, []step{
			{name: "seen", at: 1, nodes: down, bgp: map[netip.Addr][]string{}},
			{name: "within the bound", at: 60, nodes: down, bgp: map[netip.Addr][]string{}},
			{name: "past it", at: 100, nodes: down, bgp: map[netip.Addr][]string{}, want: []string{"3/BGP session down/node node3"}},
		})
	})
	t.Run("a session that resets now and then", func(t *testing.T) {
		runSteps(t, []step{
			{name: "down", at: 1, nodes: down, bgp: map[netip.Addr][]string{}},
			{name: "up", at: 50, bgp: map[netip.Addr][]string{}},
			{name: "down again", at: 100, nodes: down, bgp: map[netip.Addr][]string{}},
			{name: "still", at: 150, nodes: down, bgp: map[netip.Addr][]string{}},
		})
	})
	t.Run("route nobody holds", func(t *testing.T) {
		runSteps(t, []step{
			{name: "routed", at: 10, pools: []Pool{pool, bgpPool}, bgp: map[netip.Addr][]string{r1: {"node1"}},
				want: []string{"3/next hop not eligible/203.0.113.193"}},
		})
	})
	t.Run("route of a Service created after the API was read", func(t *testing.T) {
		runSteps(t, []step{
			{name: "routed", at: 10, changes: []Change{{Time: t0.Add(10500 * time.Millisecond), Service: "a/new"}},
				pools: []Pool{pool, bgpPool}, bgp: map[netip.Addr][]string{r1: {"node1"}}},
		})
	})
}

func TestL2Targets(t *testing.T) {
	c := NewChecker(cfg)
	x := svc("x", a1, r1)
	x.UnacceptedExternalIPs = []netip.Addr{netip.MustParseAddr("198.51.100.177")}
	c.Observe(Snapshot{Time: t0, Services: []Service{x, svc("y", a2)}})
	c.Observe(Snapshot{Time: t0.Add(time.Second), Services: []Service{x}})
	got := c.L2Targets(Snapshot{Time: t0.Add(2 * time.Second), Services: []Service{x}})
	want := []netip.Addr{a1, a2, netip.MustParseAddr("198.51.100.177")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("L2Targets (-want +got):\n%s", diff)
	}
	if got := c.L2Targets(Snapshot{Time: t0.Add(2 * time.Minute)}); len(got) != 0 {
		t.Errorf("L2Targets two minutes later = %v, want none (released addresses are forgotten)", got)
	}
}

func TestClaims(t *testing.T) {
	p1 := []Pool{with2(pool, 1, 0), bgpPool}
	c := NewChecker(cfg)
	x := svc("x", a1)
	claimed := map[netip.Addr]ClaimHolders{a1: {"uid-x": false}}
	check := func(at float64, claims map[netip.Addr]ClaimHolders, want []string) {
		t.Helper()
		s := Snapshot{Time: t0.Add(time.Duration(at * float64(time.Second))), Services: []Service{x}, Pools: p1, Nodes: allUp, Claims: claims}
		if diff := cmp.Diff(want, kinds(c.Observe(s))); diff != "" {
			t.Errorf("at %vs (-want +got):\n%s", at, diff)
		}
	}
	check(1, nil, nil)                                           // claims not in use
	check(2, map[netip.Addr]ClaimHolders{r1: {"o": false}}, nil) // just held: not judged yet
	check(7, claimed, nil)
	check(8, map[netip.Addr]ClaimHolders{r1: {"o": false}}, []string{"8/no claim/198.51.100.130"})
	check(9, map[netip.Addr]ClaimHolders{a1: {"other": false}}, []string{"8/holder missing/198.51.100.130"})
	check(10, map[netip.Addr]ClaimHolders{a1: {"uid-x": true}}, []string{"8/holder missing/198.51.100.130"})
}

// TestCountsOverlap: of two overlapping pools the older counts the shared
// addresses, as Herald resolves overlaps.
func TestCountsOverlap(t *testing.T) {
	overlapping := func(pUsed, qUsed int) []Pool {
		p := with2(pool, pUsed, 0)
		p.Created = t0.Add(-2 * time.Hour)
		q := Pool{Name: "q", Ranges: []Range{{netip.MustParseAddr("198.51.100.130"), netip.MustParseAddr("198.51.100.150")}},
			AdmitsLB: map[string]bool{"a": true}, Current: true, Created: t0.Add(-time.Hour), Used4: qUsed}
		ps := []Pool{q, p, bgpPool}
		ResolveOverlaps(ps)
		return ps
	}
	runSteps(t, []step{
		{name: "first seen", at: 1, svcs: []Service{svc("x", a1)}, pools: overlapping(1, 0)},
		{name: "the older pool counts it", at: 8, svcs: []Service{svc("x", a1)}, pools: overlapping(1, 0)},
		{name: "the newer one too: wrong", at: 9, svcs: []Service{svc("x", a1)}, pools: overlapping(1, 1),
			want: []string{"6/counts/IPPool q"}},
	})
	if ps := overlapping(0, 0); !ps[0].Contains(netip.MustParseAddr("198.51.100.150")) || ps[0].Contains(a1) {
		t.Errorf("the newer pool q: Contains(.150) %v, Contains(.130) %v; want true, false",
			ps[0].Contains(netip.MustParseAddr("198.51.100.150")), ps[0].Contains(a1))
	}
}

// TestWireLayer2Advertised: a node the L2Advertisement leaves out may not
// answer, and the address must be answered by another.
func TestWireLayer2Advertised(t *testing.T) {
	p1 := []Pool{with2(pool, 1, 0), bgpPool}
	for _, tc := range []struct {
		name   string
		answer []string
		want   []string
	}{
		{"an advertised node answers", []string{"node2"}, nil},
		{"the left-out node answers", []string{"node1"}, []string{"3/wrong node/198.51.100.130"}},
		{"nobody answers", nil, []string{"3/unanswered/198.51.100.130"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			two := []string{"node2", "node3"}
			runSteps(t, []step{
				{name: "seen", at: 1, svcs: []Service{svc("x", a1)}, pools: p1, l2Nodes: two},
				{name: "wire", at: 7, svcs: []Service{svc("x", a1)}, pools: p1, l2Nodes: two,
					l2: map[netip.Addr][]string{a1: tc.answer}, want: tc.want},
			})
		})
	}
}
