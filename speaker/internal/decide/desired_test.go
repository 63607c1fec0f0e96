package decide

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

var (
	lbV4    = netip.MustParseAddr("198.51.100.130")
	lbV4b   = netip.MustParseAddr("198.51.100.131")
	lbV6    = netip.MustParseAddr("2001:db8:1::1:5")
	outside = netip.MustParseAddr("203.0.113.250")
)

// testNodeInterfaces is every node's interfaces in these tests: eth0 on the
// LAN, eth1 on another segment, and kube-ipvs0 holding load-balancer
// addresses as host routes.
var testNodeInterfaces = []NodeInterface{
	{Name: "eth0", Flags: net.FlagUp | net.FlagBroadcast, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("198.51.100.11/24"), netip.MustParsePrefix("2001:db8:1::11/64")}},
	{Name: "eth1", Flags: net.FlagUp | net.FlagBroadcast, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/28")}},
	{Name: "kube-ipvs0", Flags: net.FlagUp | net.FlagBroadcast, Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.130/32")}},
}

func testModel(l2 []*v1alpha1.L2Advertisement, bgp []*v1alpha1.BGPAdvertisement) *config.Model {
	return config.Build(config.Snapshot{
		IPPools: []*v1alpha1.IPPool{{
			ObjectMeta: metav1.ObjectMeta{Name: "lan"},
			Spec:       v1alpha1.IPPoolSpec{Addresses: []string{"198.51.100.128/26", "2001:db8:1::1:0/112"}},
		}},
		L2Advertisements:  l2,
		BGPPeers:          []*v1alpha1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPPeerSpec{PeerAddress: "198.51.100.1", PeerASN: 65001, MyASN: 65000}}},
		BGPAdvertisements: bgp,
	})
}

func l2Adv(name string, interfaces []string, nodeLabel map[string]string) *v1alpha1.L2Advertisement {
	a := &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.L2AdvertisementSpec{Interfaces: interfaces}}
	if nodeLabel != nil {
		a.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: nodeLabel}}
	}
	return a
}

func aliveNodes(names ...string) []Node {
	out := make([]Node, 0, len(names))
	for _, n := range names {
		out = append(out, Node{State: NodeState{Name: n, SpeakerAlive: true}, Labels: map[string]string{"kubernetes.io/hostname": n}})
	}
	return out
}

// svc is a Service whose addresses are claimed in the pool "lan" (the
// pool of testModel).
func svc(name string, policy TrafficPolicy, addrs []netip.Addr, v4, v6 []Endpoint) Service {
	return claimedSvc(name, policy, inPool("lan", addrs...), v4, v6)
}

func claimedSvc(name string, policy TrafficPolicy, addrs []config.ClaimedAddress, v4, v6 []Endpoint) Service {
	return Service{Key: ServiceKey{"default", name}, Addresses: addrs, TrafficPolicy: policy, EndpointsV4: v4, EndpointsV6: v6}
}

// inPool returns addrs as claimed in pool, sorted, as Service.Addresses
// holds them.
func inPool(pool string, addrs ...netip.Addr) []config.ClaimedAddress {
	out := make([]config.ClaimedAddress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, config.ClaimedAddress{Addr: a, Pool: pool})
	}
	slices.SortFunc(out, func(a, b config.ClaimedAddress) int { return a.Addr.Compare(b.Addr) })
	return out
}

// clusterOwner is the node the election picks for addr among all of
// candidates: Compute must agree with AnnouncingNode, which election_test
// checks on its own.
func clusterOwner(addr netip.Addr, candidates ...string) string {
	return Ranking(addr, candidates)[0]
}

func TestCompute(t *testing.T) {
	l2All := []*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}
	nodes3 := []string{"n1", "n2", "n3"}
	// rank is the election's order for lbV4: rank[0] outranks rank[1].
	rank := Ranking(lbV4, nodes3)
	type announcement struct {
		Node       string
		Addr       netip.Addr
		Interfaces []string
		Services   []string
	}
	tests := []struct {
		name       string
		model      *config.Model
		services   []Service
		nodes      []Node
		suppressed map[string]map[netip.Addr]bool // per Self
		down       map[string]bool
		withdrawn  map[ServiceKey][]string
		// wantOwners is every address's owner, the same whatever Self.
		wantOwners map[netip.Addr]string
		// want is every node's layer-2 announcements, computed with each
		// node as Self.
		want []announcement
	}{
		{
			name:       "cluster policy with one ready endpoint: one elected node answers, on the subnet's interface",
			model:      testModel(l2All, nil),
			services:   []Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: clusterOwner(lbV4, nodes3...)},
			want:       []announcement{{clusterOwner(lbV4, nodes3...), lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
		{
			name:  "local policy: only the node with the ready endpoint",
			model: testModel(l2All, nil),
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4, lbV6},
				[]Endpoint{ready("n2")}, []Endpoint{ready("n3")})},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: "n2", lbV6: "n3"},
			want: []announcement{
				{"n2", lbV4, []string{"eth0"}, []string{"default/web"}},
				{"n3", lbV6, []string{"eth0"}, []string{"default/web"}},
			},
		},
		{
			name:       "no endpoints: nobody answers",
			model:      testModel(l2All, nil),
			services:   []Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, nil, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: ""},
		},
		{
			name:     "excluded, network-unavailable and dead nodes never announce",
			model:    testModel(l2All, nil),
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1"), ready("n2"), ready("n3"), ready("n4")}, nil)},
			nodes: []Node{
				{State: NodeState{Name: "n1", SpeakerAlive: true, ExcludedFromLoadBalancers: true}},
				{State: NodeState{Name: "n2", SpeakerAlive: true, NetworkUnavailable: true}},
				{State: NodeState{Name: "n3", SpeakerAlive: false}},
				{State: NodeState{Name: "n4", SpeakerAlive: true}},
			},
			wantOwners: map[netip.Addr]string{lbV4: "n4"},
			want:       []announcement{{"n4", lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
		{
			name:       "a suppressed address stays elected but is not announced",
			model:      testModel(l2All, nil),
			services:   []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n2")}, nil)},
			nodes:      aliveNodes(nodes3...),
			suppressed: map[string]map[netip.Addr]bool{"n2": {lbV4: true}},
			wantOwners: map[netip.Addr]string{lbV4: "n2"},
		},
		{
			name:       "an L2Advertisement's node selector limits the candidates",
			model:      testModel([]*v1alpha1.L2Advertisement{l2Adv("n3only", nil, map[string]string{"kubernetes.io/hostname": "n3"})}, nil),
			services:   []Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: "n3"},
			want:       []announcement{{"n3", lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
		{
			name: "advertisement interfaces: union of each advertisement's choice",
			model: testModel([]*v1alpha1.L2Advertisement{
				l2Adv("eth1", []string{"eth1"}, nil), l2Adv("default", nil, nil), l2Adv("missing", []string{"eth9"}, nil),
			}, nil),
			services:   []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: "n1"},
			want:       []announcement{{"n1", lbV4, []string{"eth0", "eth1"}, []string{"default/web"}}},
		},
		{
			name:       "no L2Advertisement: no layer-2 owner",
			model:      testModel(nil, nil),
			services:   []Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{},
		},
		{
			name:       "an address whose claim names no pool is not announced",
			model:      testModel(l2All, nil),
			services:   []Service{claimedSvc("web", TrafficPolicyCluster, inPool("", outside), []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{},
		},
		{
			name:       "an address claimed in no pool is not announced, even in a pool's range now",
			model:      testModel(l2All, nil),
			services:   []Service{claimedSvc("web", TrafficPolicyCluster, inPool("", lbV4), []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{},
		},
		{
			name:       "an address outside every pool's range is announced with its claim's pool",
			model:      testModel(l2All, nil),
			services:   []Service{claimedSvc("web", TrafficPolicyCluster, inPool("lan", outside), []Endpoint{ready("n1")}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{outside: clusterOwner(outside, nodes3...)},
			want:       []announcement{{clusterOwner(outside, nodes3...), outside, []string{"eth0", "eth1"}, []string{"default/web"}}},
		},
		{
			name:  "a shared address goes to a node that serves every sharer",
			model: testModel(l2All, nil),
			services: []Service{
				svc("a", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1"), ready("n3")}, nil),
				svc("b", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n2"), ready("n3")}, nil),
			},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: "n3"},
			want:       []announcement{{"n3", lbV4, []string{"eth0"}, []string{"default/a", "default/b"}}},
		},
		{
			name:  "terminating endpoints are used only when no node has a ready one",
			model: testModel(l2All, nil),
			services: []Service{
				svc("rolling", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{terminating("n1"), starting("n2")}, nil),
				svc("mixed", TrafficPolicyLocal, []netip.Addr{lbV4b}, []Endpoint{terminating("n1"), ready("n2")}, nil),
			},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: "n1", lbV4b: "n2"},
			want: []announcement{
				{"n1", lbV4, []string{"eth0"}, []string{"default/rolling"}},
				{"n2", lbV4b, []string{"eth0"}, []string{"default/mixed"}},
			},
		},
		{
			name:  "a settling node that outranks the announcing one does not take the address while that node forwards",
			model: testModel(l2All, nil),
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4},
				[]Endpoint{ready(rank[1]), settling(rank[0])}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: rank[1]},
			want:       []announcement{{rank[1], lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
		{
			name:  "settling nodes are elected at once when no node can forward yet",
			model: testModel(l2All, nil),
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4},
				[]Endpoint{settling(rank[1]), settling(rank[0]), gone(rank[2])}, nil)},
			nodes:      aliveNodes(nodes3...),
			wantOwners: map[netip.Addr]string{lbV4: rank[0]},
			want:       []announcement{{rank[0], lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
		{
			name:  "settling with a kube-proxy withdrawal: the withdrawn settled node no longer holds the settling one back",
			model: testModel(l2All, nil),
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4},
				[]Endpoint{ready(rank[1]), settling(rank[0])}, nil)},
			nodes:      aliveNodes(nodes3...),
			withdrawn:  map[ServiceKey][]string{{"default", "web"}: {rank[1]}},
			wantOwners: map[netip.Addr]string{lbV4: rank[0]},
			want:       []announcement{{rank[0], lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
		{
			name:       "kube-proxy's verdicts: a node whose data plane is down, or withdrawn for the Service, is skipped",
			model:      testModel(l2All, nil),
			services:   []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1"), ready("n2"), ready("n3")}, nil)},
			nodes:      aliveNodes(nodes3...),
			down:       map[string]bool{"n1": true},
			withdrawn:  map[ServiceKey][]string{{"default", "web"}: {"n2"}},
			wantOwners: map[netip.Addr]string{lbV4: "n3"},
			want:       []announcement{{"n3", lbV4, []string{"eth0"}, []string{"default/web"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []announcement
			for _, self := range []string{"n1", "n2", "n3", "n4"} {
				d := Compute(Inputs{
					Self: self, Model: tt.model, Services: tt.services, Nodes: tt.nodes,
					Interfaces: testNodeInterfaces, Suppressed: tt.suppressed[self],
					DataPlaneDown: tt.down, Withdrawn: tt.withdrawn,
				})
				if diff := cmp.Diff(tt.wantOwners, d.Owners, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("Self %s: Owners (-want +got):\n%s", self, diff)
				}
				for addr, e := range d.Layer2 {
					var keys []string
					for _, k := range e.Services {
						keys = append(keys, k.String())
					}
					got = append(got, announcement{self, addr, e.Interfaces, keys})
				}
			}
			slices.SortFunc(got, func(a, b announcement) int {
				if a.Node != b.Node {
					return strings.Compare(a.Node, b.Node)
				}
				return a.Addr.Compare(b.Addr)
			})
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("layer-2 announcements (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeBGP(t *testing.T) {
	bgpAll := []*v1alpha1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "to-router"}}}
	tests := []struct {
		name     string
		services []Service
		// want maps each node to the addresses it advertises.
		want map[string][]netip.Addr
	}{
		{
			name:     "cluster policy: every live node advertises",
			services: []Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)},
			want:     map[string][]netip.Addr{"n1": {lbV4}, "n2": {lbV4}, "n3": {lbV4}},
		},
		{
			name:     "local policy: only nodes with a ready endpoint",
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4, lbV6}, []Endpoint{ready("n1"), ready("n2")}, []Endpoint{ready("n3")})},
			want:     map[string][]netip.Addr{"n1": {lbV4}, "n2": {lbV4}, "n3": {lbV6}},
		},
		{
			name:     "local policy: a settling node advertises only once it settles while another node forwards",
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1"), settling("n2")}, nil)},
			want:     map[string][]netip.Addr{"n1": {lbV4}},
		},
		{
			name:     "local policy: a draining node advertises while the new node settles",
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{terminating("n1"), settling("n2")}, nil)},
			want:     map[string][]netip.Addr{"n1": {lbV4}},
		},
		{
			name:     "local policy: settling nodes advertise at once when nothing else can",
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{settling("n1"), settling("n2")}, nil)},
			want:     map[string][]netip.Addr{"n1": {lbV4}, "n2": {lbV4}},
		},
		{
			name:     "no endpoints: nobody advertises",
			services: []Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, nil, nil)},
			want:     map[string][]netip.Addr{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := testModel(nil, bgpAll)
			got := map[string][]netip.Addr{}
			for _, self := range []string{"n1", "n2", "n3"} {
				d := Compute(Inputs{Self: self, Model: model, Services: tt.services, Nodes: aliveNodes("n1", "n2", "n3"), Interfaces: testNodeInterfaces})
				if len(d.Layer2) != 0 {
					t.Errorf("Self %s: layer-2 announcements without an L2Advertisement: %v", self, d.Layer2)
				}
				if len(d.BGPPeers) != 1 || d.BGPPeers[0].Name != "router" {
					t.Errorf("Self %s: BGPPeers = %v, want [router]", self, d.BGPPeers)
				}
				for addr, e := range d.BGP {
					got[self] = append(got[self], addr)
					if len(e.Advertisements) != 1 || e.Advertisements[0].Name != "to-router" {
						t.Errorf("Self %s, %s: advertisements %v, want [to-router]", self, addr, e.Advertisements)
					}
				}
				slices.SortFunc(got[self], netip.Addr.Compare)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("BGP advertisements (-want +got):\n%s", diff)
			}
		})
	}
}

// TestComputeBGPAdvertisersAndServing checks what the drain compares between
// passes (BGPWithdrawals): every node's entry lists all the advertisers, and
// the nodes that still serve a Local Service.
func TestComputeBGPAdvertisersAndServing(t *testing.T) {
	bgpAll := []*v1alpha1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "to-router"}}}
	tests := []struct {
		name            string
		service         Service
		down            map[string]bool
		wantAdvertisers []string
		wantServing     []string
	}{
		{
			name:            "local policy: n1's endpoint terminating but serving, n2's ready: n2 advertises, both serve",
			service:         svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{terminating("n1"), ready("n2")}, nil),
			wantAdvertisers: []string{"n2"}, wantServing: []string{"n1", "n2"},
		},
		{
			name:            "local policy: a node whose data plane is down does not serve",
			service:         svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{terminating("n1"), ready("n2")}, nil),
			down:            map[string]bool{"n1": true},
			wantAdvertisers: []string{"n2"}, wantServing: []string{"n2"},
		},
		{
			// Every node advertises, none serves in the drain's sense, and
			// the advertisers are not recorded (they would tie the address
			// to every node's state).
			name:    "cluster policy: advertisers not recorded",
			service: svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			self := "n1"
			if len(tt.wantAdvertisers) > 0 {
				self = tt.wantAdvertisers[0]
			}
			d := Compute(Inputs{Self: self, Model: testModel(nil, bgpAll), Services: []Service{tt.service},
				Nodes: aliveNodes("n1", "n2", "n3"), Interfaces: testNodeInterfaces, DataPlaneDown: tt.down})
			e, ok := d.BGP[lbV4]
			if !ok {
				t.Fatalf("%s does not advertise %s", self, lbV4)
			}
			if diff := cmp.Diff(tt.wantAdvertisers, e.Advertisers); diff != "" {
				t.Errorf("Advertisers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantServing, e.Serving, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Serving (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeWithoutModelAnnouncesNothing(t *testing.T) {
	d := Compute(Inputs{Self: "n1", Services: []Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)}, Nodes: aliveNodes("n1")})
	if len(d.Layer2)+len(d.BGP)+len(d.Owners) != 0 {
		t.Errorf("Compute without a model = %+v, want nothing", d)
	}
}

// TestDataPlaneDownIsLeavingTheNodeOut checks, on random clusters, that
// Compute's node sets, which precompute the usable nodes with the nodes
// whose data plane is down left out, elect as EligibleNodes does over the
// other nodes (both apply the one rule, nodeSet.eligible).
func TestDataPlaneDownIsLeavingTheNodeOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e"}
	for i := range 20000 {
		var states []NodeState
		for _, n := range names {
			if rng.IntN(5) == 0 {
				continue // not selected by the advertisement
			}
			states = append(states, NodeState{
				Name: n, SpeakerAlive: rng.IntN(6) != 0, ExcludedFromLoadBalancers: rng.IntN(8) == 0,
				NetworkUnavailable: rng.IntN(8) == 0, Deleting: rng.IntN(10) == 0, ToBeDeletedByClusterAutoscaler: rng.IntN(10) == 0,
			})
		}
		down := map[string]bool{}
		if rng.IntN(4) == 0 {
			down[names[rng.IntN(len(names))]] = true
		}
		var eps []Endpoint
		for range rng.IntN(6) {
			node := ""
			if rng.IntN(8) != 0 {
				node = names[rng.IntN(len(names))] + []string{"", "", "", "x"}[rng.IntN(4)]
			}
			eps = append(eps, Endpoint{NodeName: node, Ready: rng.IntN(2) == 0, Serving: rng.IntN(2) == 0, Terminating: rng.IntN(2) == 0, Settling: rng.IntN(3) == 0})
		}
		policy := []TrafficPolicy{TrafficPolicyLocal, TrafficPolicyCluster, ""}[rng.IntN(3)]
		var usable []NodeState
		for _, n := range states {
			if !down[n.Name] {
				usable = append(usable, n)
			}
		}
		want := EligibleNodes(ServiceState{TrafficPolicy: policy, Endpoints: eps}, usable).Nodes
		got, _ := newNodeSet(states, down).eligible(policy, eps)
		if !slices.Equal(want, got) {
			t.Fatalf("case %d: policy %q, nodes %+v, down %v, endpoints %+v:\nEligibleNodes %v, nodeSet.eligible %v", i, policy, states, down, eps, want, got)
		}
	}
}

// TestSuccessorTakesOver checks the contract of Desired.Successors: when an
// address's owner goes, its successor is the new owner, for Cluster and
// Local Services, shared or not, on three to ten nodes.
func TestSuccessorTakesOver(t *testing.T) {
	model := testModel([]*v1alpha1.L2Advertisement{l2Adv("all", nil, nil)}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 3; n <= 10; n++ {
		var names []string
		for i := range n {
			names = append(names, "n"+string(rune('a'+i)))
		}
		var services []Service
		for i := range 20 {
			addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(130 + i%10)}) // two Services per address
			policy, eps := TrafficPolicyCluster, []Endpoint(nil)
			if rng.IntN(2) == 0 {
				policy = TrafficPolicyLocal
				for _, name := range names {
					if rng.IntN(2) == 0 {
						eps = append(eps, Endpoint{NodeName: name, Ready: true, Serving: true})
					}
				}
			}
			services = append(services, svc("s"+string(rune('a'+i)), policy, []netip.Addr{addr}, eps, nil))
		}
		before := Compute(Inputs{Self: names[0], Model: model, Services: services, Nodes: aliveNodes(names...), Interfaces: testNodeInterfaces})
		for addr, owner := range before.Owners {
			next := before.Successors[addr]
			if owner == "" {
				if next != "" {
					t.Errorf("%d nodes, %s: no owner but successor %q", n, addr, next)
				}
				continue
			}
			rest := slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == owner })
			after := Compute(Inputs{Self: names[0], Model: model, Services: services, Nodes: aliveNodes(rest...), Interfaces: testNodeInterfaces})
			if got := after.Owners[addr]; got != next {
				t.Errorf("%d nodes, %s: owner %s gone, the new owner is %q; Successors said %q", n, addr, owner, got, next)
			}
		}
	}
}
