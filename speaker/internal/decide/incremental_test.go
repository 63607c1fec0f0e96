package decide

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// desiredDiff compares two desired states, nil and empty alike.
func desiredDiff(want, got Desired) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty(), cmp.Exporter(func(reflect.Type) bool { return true }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }))
}

// randomWorld is a small random cluster that changes one thing at a time,
// with few addresses and Services so that sharing, moves between pools and
// families happen often.
type randomWorld struct {
	rng       *rand.Rand
	nodes     []string
	models    []*config.Model
	addrs     []netip.Addr
	in        Inputs
	ifaceSets [][]NodeInterface
}

func newRandomWorld(seed uint64) *randomWorld {
	w := &randomWorld{rng: rand.New(rand.NewPCG(seed, 7)), nodes: []string{"a", "b", "c", "d"}}
	zoneAd := l2Adv("zone-x", nil, map[string]string{"zone": "x"})
	ifaceAd := l2Adv("eth1-only", []string{"eth1"}, nil)
	bgpAd := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "to-router"}}
	w.models = []*config.Model{
		testModel([]*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}, nil),
		testModel([]*v1alpha1.L2Advertisement{zoneAd}, []*v1alpha1.BGPAdvertisement{bgpAd}),
		testModel([]*v1alpha1.L2Advertisement{zoneAd, ifaceAd}, []*v1alpha1.BGPAdvertisement{bgpAd}),
		testModel(nil, []*v1alpha1.BGPAdvertisement{bgpAd}),
		// lan's range edited, the edited part moved to "other".
		twoPoolModel("198.51.100.192/26", "198.51.100.128/26"),
	}
	// Addresses in lan's first range (both families) and one outside
	// every pool's range.
	w.addrs = []netip.Addr{lbV4, lbV4b, netip.MustParseAddr("198.51.100.140"), lbV6, netip.MustParseAddr("2001:db8:1::1:6"), outside}
	w.ifaceSets = [][]NodeInterface{
		testNodeInterfaces,
		testNodeInterfaces[:2],
		{{Name: "eth1", Flags: net.FlagUp | net.FlagBroadcast, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/28")}}},
	}
	w.in = Inputs{Self: "a", Model: w.models[0], Interfaces: w.ifaceSets[0]}
	for _, n := range w.nodes {
		w.in.Nodes = append(w.in.Nodes, w.node(n))
	}
	for i := range 8 {
		w.in.Services = append(w.in.Services, w.service(fmt.Sprintf("s%d", i)))
	}
	return w
}

func (w *randomWorld) node(name string) Node {
	r := w.rng
	return Node{
		State: NodeState{Name: name, SpeakerAlive: r.IntN(6) != 0, ExcludedFromLoadBalancers: r.IntN(10) == 0,
			NetworkUnavailable: r.IntN(12) == 0, Deleting: r.IntN(15) == 0},
		Labels: map[string]string{"zone": []string{"x", "y"}[r.IntN(2)]},
	}
}

func (w *randomWorld) endpoints() []Endpoint {
	var eps []Endpoint
	for range w.rng.IntN(4) {
		eps = append(eps, Endpoint{NodeName: w.nodes[w.rng.IntN(len(w.nodes))], Ready: w.rng.IntN(3) != 0,
			Serving: w.rng.IntN(2) == 0, Terminating: w.rng.IntN(3) == 0})
	}
	return eps
}

func (w *randomWorld) service(name string) Service {
	var addrs []config.ClaimedAddress
	for range 1 + w.rng.IntN(2) {
		a := w.addrs[w.rng.IntN(len(w.addrs))]
		if slices.ContainsFunc(addrs, func(c config.ClaimedAddress) bool { return c.Addr == a }) {
			continue
		}
		// Mostly the claim's pool is lan; sometimes another, or none, so
		// that sharers' summaries disagree at times (a claim replaced).
		pool := []string{"lan", "lan", "lan", "other", ""}[w.rng.IntN(5)]
		addrs = append(addrs, config.ClaimedAddress{Addr: a, Pool: pool})
	}
	slices.SortFunc(addrs, func(a, b config.ClaimedAddress) int { return a.Addr.Compare(b.Addr) })
	policy := []TrafficPolicy{TrafficPolicyLocal, TrafficPolicyCluster}[w.rng.IntN(2)]
	return claimedSvc(name, policy, addrs, w.endpoints(), w.endpoints())
}

// step changes one random thing, mostly a Service, as informer events do.
func (w *randomWorld) step() string {
	r, in := w.rng, &w.in
	// The loop builds new slices and maps each time; so does the world,
	// so that a test never passes through aliasing.
	in.Services = slices.Clone(in.Services)
	switch k := r.IntN(100); {
	case k < 35 && len(in.Services) > 0:
		i := r.IntN(len(in.Services))
		in.Services[i].EndpointsV4, in.Services[i].EndpointsV6 = w.endpoints(), w.endpoints()
		return "endpoints of " + in.Services[i].Key.Name
	case k < 45 && len(in.Services) > 0:
		i := r.IntN(len(in.Services))
		s := w.service(in.Services[i].Key.Name)
		in.Services[i].Addresses, in.Services[i].TrafficPolicy = s.Addresses, s.TrafficPolicy
		return "addresses or policy of " + s.Key.Name
	case k < 55:
		in.Services = append(in.Services, w.service(fmt.Sprintf("s%d", 8+r.IntN(20))))
		if slices.ContainsFunc(in.Services[:len(in.Services)-1], func(s Service) bool { return s.Key == in.Services[len(in.Services)-1].Key }) {
			in.Services = in.Services[:len(in.Services)-1]
			return "nothing"
		}
		return "a new Service"
	case k < 65 && len(in.Services) > 0:
		i := r.IntN(len(in.Services))
		in.Services = slices.Delete(in.Services, i, i+1)
		return "a Service deleted"
	case k < 72 && len(in.Services) > 0:
		in.Withdrawn = map[ServiceKey][]string{}
		for range r.IntN(3) {
			k := in.Services[r.IntN(len(in.Services))].Key
			in.Withdrawn[k] = []string{w.nodes[r.IntN(len(w.nodes))]}
		}
		return "withdrawals"
	case k < 77:
		in.Nodes = slices.Clone(in.Nodes)
		i := r.IntN(len(in.Nodes))
		in.Nodes[i] = w.node(in.Nodes[i].State.Name)
		return "a Node"
	case k < 78:
		in.Nodes = slices.Clone(in.Nodes)
		i := r.IntN(len(in.Nodes))
		in.Nodes[i].State.SpeakerAlive = !in.Nodes[i].State.SpeakerAlive
		return "a speaker joins or leaves"
	case k < 80:
		r.Shuffle(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
		in.Nodes = slices.Clone(in.Nodes)
		r.Shuffle(len(in.Nodes), func(i, j int) { in.Nodes[i], in.Nodes[j] = in.Nodes[j], in.Nodes[i] })
		return "order only"
	case k < 84:
		in.Suppressed = map[netip.Addr]bool{}
		if r.IntN(2) == 0 {
			in.Suppressed[w.addrs[r.IntN(len(w.addrs))]] = true
		}
		return "held-back addresses"
	case k < 87:
		in.DataPlaneDown = map[string]bool{}
		if r.IntN(2) == 0 {
			in.DataPlaneDown[w.nodes[r.IntN(len(w.nodes))]] = true
		}
		return "data plane down"
	case k < 90:
		in.Interfaces = w.ifaceSets[r.IntN(len(w.ifaceSets))]
		return "interfaces"
	case k < 93:
		in.Model = w.models[r.IntN(len(w.models))]
		return "configuration"
	case k < 95:
		in.Self = w.nodes[r.IntN(len(w.nodes))]
		return "self"
	case k < 96:
		in.Model = nil
		return "no configuration"
	}
	return "nothing"
}

// TestIncrementalMatchesCompute drives Incremental through random
// sequences of changes and checks that after each one it returns exactly
// what Compute returns from scratch, and that a Desired it returned earlier
// is never modified afterwards.
func TestIncrementalMatchesCompute(t *testing.T) {
	partial := 0
	for seed := range uint64(200) {
		w := newRandomWorld(seed)
		inc := NewIncremental()
		var prev, prevCopy Desired
		var history []string
		for i := range 150 {
			history = append(history, w.step())
			if len(history) > 5 {
				history = history[1:]
			}
			if seed%10 == 0 && i%40 == 39 {
				inc.Reset()
			}
			want := Compute(w.in)
			got := inc.Compute(w.in)
			if !inc.RecomputedAll() {
				partial++
			}
			if diff := desiredDiff(want, got); diff != "" {
				t.Fatalf("seed %d, step %d (last changes %q): Incremental differs from Compute (-want +got):\n%s", seed, i, history, diff)
			}
			if diff := desiredDiff(prevCopy, prev); diff != "" {
				t.Fatalf("seed %d, step %d: a Desired returned earlier changed (-before +after):\n%s", seed, i, diff)
			}
			prev, prevCopy = got, Compute(w.in)
		}
	}
	// The test is only worth something if most steps took the incremental
	// path.
	if partial < 200*150/2 {
		t.Errorf("only %d of %d steps were incremental", partial, 200*150)
	}
}

// TestIncrementalRecomputesOnlyChangedServices checks that a change to one
// Service's endpoints, a held-back address or another node's speaker
// joining or leaving does not recompute everything, and that a change of
// the Nodes' set or labels, of self, or of the interfaces does.
func TestIncrementalRecomputesOnlyChangedServices(t *testing.T) {
	in := Inputs{Self: "n1", Model: testModel([]*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}, nil), Nodes: aliveNodes("n1", "n2"), Interfaces: testNodeInterfaces,
		Services: []Service{
			svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n2")}, nil),
			svc("db", TrafficPolicyLocal, []netip.Addr{lbV4b}, []Endpoint{ready("n2")}, nil),
		}}
	inc := NewIncremental()
	steps := []struct {
		name    string
		change  func()
		wantAll bool
	}{
		{"first", func() {}, true},
		{"nothing changed", func() {}, false},
		{"web's endpoint moves to n1", func() {
			in.Services = slices.Clone(in.Services)
			in.Services[0].EndpointsV4 = []Endpoint{ready("n1")}
		}, false},
		{"db deleted", func() { in.Services = in.Services[:1] }, false},
		{"web's address held back after a lost conflict", func() { in.Suppressed = map[netip.Addr]bool{lbV4: true} }, false},
		{"and released", func() { in.Suppressed = nil }, false},
		{"n2's speaker dies", func() { in.Nodes = []Node{in.Nodes[0], {State: NodeState{Name: "n2"}, Labels: in.Nodes[1].Labels}} }, false},
		{"n2's speaker comes back", func() { in.Nodes = aliveNodes("n1", "n2") }, false},
		{"n2 relabelled", func() {
			in.Nodes = []Node{in.Nodes[0], {State: in.Nodes[1].State, Labels: map[string]string{"zone": "y"}}}
		}, true},
		{"a Node added", func() { in.Nodes = aliveNodes("n1", "n2", "n3") }, true},
		{"self's network unavailable", func() {
			in.Nodes = slices.Clone(in.Nodes)
			in.Nodes[0].State.NetworkUnavailable = true
		}, true},
		{"interfaces change", func() { in.Interfaces = testNodeInterfaces[:1] }, true},
	}
	for _, st := range steps {
		st.change()
		got := inc.Compute(in)
		if diff := desiredDiff(Compute(in), got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", st.name, diff)
		}
		if inc.RecomputedAll() != st.wantAll {
			t.Errorf("%s: RecomputedAll() = %v, want %v", st.name, inc.RecomputedAll(), st.wantAll)
		}
	}
}

// TestIncrementalMembershipMatchesCompute is TestIncrementalMatchesCompute
// for membership churn on a larger cluster: twelve nodes, forty Services of
// both policies, some sharing addresses, some with withdrawals, and
// speakers joining and leaving (one or several at a time) between
// endpoint changes. After each step Incremental must return what Compute
// does, and nearly every step must take the incremental path.
func TestIncrementalMembershipMatchesCompute(t *testing.T) {
	const seeds, steps = 50, 100
	partial := 0
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 18))
		var names []string
		for i := range 12 {
			names = append(names, fmt.Sprintf("node-%02d", i))
		}
		endpoints := func() []Endpoint {
			var eps []Endpoint
			for range rng.IntN(4) {
				eps = append(eps, Endpoint{NodeName: names[rng.IntN(len(names))], Ready: rng.IntN(4) != 0,
					Serving: rng.IntN(2) == 0, Terminating: rng.IntN(4) == 0, Settling: rng.IntN(8) == 0})
			}
			return eps
		}
		bgpAd := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "to-router"}}
		in := Inputs{Self: names[0], Model: testModel([]*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}, []*v1alpha1.BGPAdvertisement{bgpAd}),
			Interfaces: testNodeInterfaces, Withdrawn: map[ServiceKey][]string{}}
		for _, n := range names {
			in.Nodes = append(in.Nodes, Node{State: NodeState{Name: n, SpeakerAlive: rng.IntN(5) != 0}, Labels: map[string]string{"kubernetes.io/hostname": n}})
		}
		for i := range 40 {
			// 24 addresses for 40 Services: about a third share one.
			addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(200 + rng.IntN(24))})
			policy := []TrafficPolicy{TrafficPolicyLocal, TrafficPolicyCluster}[rng.IntN(2)]
			s := svc(fmt.Sprintf("s%02d", i), policy, []netip.Addr{addr}, endpoints(), nil)
			in.Services = append(in.Services, s)
			if rng.IntN(8) == 0 {
				in.Withdrawn[s.Key] = []string{names[rng.IntN(len(names))]}
			}
		}
		inc := NewIncremental()
		for i := range steps {
			change := "nothing"
			switch k := rng.IntN(10); {
			case k < 6:
				in.Nodes = slices.Clone(in.Nodes)
				for range 1 + rng.IntN(3) {
					j := 1 + rng.IntN(len(names)-1) // not self
					in.Nodes[j].State.SpeakerAlive = !in.Nodes[j].State.SpeakerAlive
				}
				change = "speakers join or leave"
			case k < 8:
				in.Nodes = slices.Clone(in.Nodes)
				j := 1 + rng.IntN(len(names)-1)
				in.Nodes[j].State.NetworkUnavailable = !in.Nodes[j].State.NetworkUnavailable
				change = "a node's network"
			default:
				in.Services = slices.Clone(in.Services)
				j := rng.IntN(len(in.Services))
				in.Services[j].EndpointsV4 = endpoints()
				change = "endpoints of " + in.Services[j].Key.Name
			}
			want := Compute(in)
			got := inc.Compute(in)
			if !inc.RecomputedAll() {
				partial++
			}
			if diff := desiredDiff(want, got); diff != "" {
				t.Fatalf("seed %d, step %d (%s): Incremental differs from Compute (-want +got):\n%s", seed, i, change, diff)
			}
		}
	}
	// Only each seed's first step recomputes everything.
	if want := seeds * (steps - 1); partial != want {
		t.Errorf("%d of %d steps were incremental, want %d", partial, seeds*steps, want)
	}
}

// TestIncrementalSharesUnchangedMaps checks that Incremental keeps one copy
// of the desired state: a call returns the maps of the last Desired that
// it does not change (a change copies only the maps it touches, and the
// Desired returned earlier stays as it was), and that it leaves the
// caller's Services as they were, in their order.
func TestIncrementalSharesUnchangedMaps(t *testing.T) {
	in := Inputs{Self: "n1", Model: testModel([]*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}, nil), Nodes: aliveNodes("n1", "n2", "n3"), Interfaces: testNodeInterfaces,
		Services: []Service{
			svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n2")}, nil),
			svc("db", TrafficPolicyLocal, []netip.Addr{lbV4b}, []Endpoint{ready("n1")}, nil),
		}}
	inc := NewIncremental()
	last := inc.Compute(in)
	lastWant := Compute(in)
	if _, ok := last.Layer2[lbV4b]; !ok {
		t.Fatalf("n1 does not announce db's address, which the test needs: %v", last.Layer2)
	}
	steps := []struct {
		name                            string
		change                          func()
		owners, successors, layer2, bgp bool // the map is the last Desired's
	}{
		{"nothing changed", func() {}, true, true, true, true},
		{"web's endpoints grow (Cluster: no owner changes)", func() {
			in.Services = slices.Clone(in.Services)
			in.Services[0].EndpointsV4 = []Endpoint{ready("n2"), ready("n3")}
		}, true, true, true, true},
		{"db's endpoint moves to n2 (Local: n1 hands it over)", func() {
			in.Services = slices.Clone(in.Services)
			in.Services[1].EndpointsV4 = []Endpoint{ready("n2")}
		}, false, true, false, true},
	}
	for _, st := range steps {
		st.change()
		services := slices.Clone(in.Services)
		got := inc.Compute(in)
		if diff := desiredDiff(Compute(in), got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", st.name, diff)
		}
		if diff := desiredDiff(lastWant, last); diff != "" {
			t.Errorf("%s: the Desired returned last time changed (-before +after):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(services, in.Services, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("%s: the caller's Services changed (-before +after):\n%s", st.name, diff)
		}
		for _, m := range []struct {
			name           string
			same, wantSame bool
		}{
			{"Owners", sameMap(got.Owners, last.Owners), st.owners},
			{"Successors", sameMap(got.Successors, last.Successors), st.successors},
			{"Layer2", sameMap(got.Layer2, last.Layer2), st.layer2},
			{"BGP", sameMap(got.BGP, last.BGP), st.bgp},
		} {
			if m.same != m.wantSame {
				t.Errorf("%s: %s is the last Desired's map: %v, want %v", st.name, m.name, m.same, m.wantSame)
			}
		}
		last, lastWant = got, Compute(in)
	}
}

// TestIncrementalTakesAnyOrderAndDuplicates checks that Services in any
// order take the incremental path, that the same Service twice is left to
// Compute, and that Incremental agrees with Compute throughout.
func TestIncrementalTakesAnyOrderAndDuplicates(t *testing.T) {
	web := svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n2")}, nil)
	db := svc("db", TrafficPolicyLocal, []netip.Addr{lbV4b}, []Endpoint{ready("n1")}, nil)
	webMoved := web
	webMoved.EndpointsV4 = []Endpoint{ready("n1")}
	in := Inputs{Self: "n1", Model: testModel([]*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}, nil), Nodes: aliveNodes("n1", "n2"), Interfaces: testNodeInterfaces}
	inc := NewIncremental()
	for _, st := range []struct {
		name     string
		services []Service
		wantAll  bool
	}{
		{"first, sorted", []Service{db, web}, true},
		{"unsorted", []Service{web, db}, false},
		{"web twice", []Service{web, db, web}, true},
		{"web twice, sorted", []Service{db, web, web}, true},
		{"each once again", []Service{web, db}, true},
		{"web's endpoint moves, unsorted", []Service{webMoved, db}, false},
	} {
		in.Services = st.services
		got := inc.Compute(in)
		if diff := desiredDiff(Compute(in), got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", st.name, diff)
		}
		if inc.RecomputedAll() != st.wantAll {
			t.Errorf("%s: RecomputedAll() = %v, want %v", st.name, inc.RecomputedAll(), st.wantAll)
		}
	}
}
