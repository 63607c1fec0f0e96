package decide

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// twoPoolModel is a configuration after pool edits: "lan" now covers
// lanRange, "other" covers otherRange; lan is announced at layer 2 from
// lanNode only, other from otherNode only and over BGP.
func twoPoolModel(lanRange, otherRange string) *config.Model {
	return config.Build(config.Snapshot{
		IPPools: []*v1alpha1.IPPool{
			{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{lanRange}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{otherRange}}},
		},
		L2Advertisements: []*v1alpha1.L2Advertisement{
			{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"lan"},
				NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"kubernetes.io/hostname": "lan-node"}}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"other"},
				NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"kubernetes.io/hostname": "other-node"}}}}},
		},
		BGPPeers:          []*v1alpha1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPPeerSpec{PeerAddress: "198.51.100.1", PeerASN: 65001, MyASN: 65000}}},
		BGPAdvertisements: []*v1alpha1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"other"}}}},
	})
}

// TestComputeUsesTheClaimsPool checks that an address is announced with the
// advertisements of its claim's pool, whatever the pools' ranges say after
// an edit, in Compute and in Incremental.
func TestComputeUsesTheClaimsPool(t *testing.T) {
	nodes := []string{"lan-node", "other-node"}
	type result struct {
		Owner string
		BGP   []string // nodes that advertise over BGP
	}
	tests := []struct {
		name     string
		model    *config.Model
		services []Service
		want     map[netip.Addr]result
	}{
		{
			name:     "before any edit: lan's address with lan's advertisements",
			model:    twoPoolModel("198.51.100.128/26", "203.0.113.0/28"),
			services: []Service{claimedSvc("web", TrafficPolicyCluster, inPool("lan", lbV4), []Endpoint{ready("lan-node")}, nil)},
			want:     map[netip.Addr]result{lbV4: {Owner: "lan-node"}},
		},
		{
			name:     "a pool edit leaves the address outside its pool: still announced, with its claim's pool's advertisements",
			model:    twoPoolModel("198.51.100.192/26", "203.0.113.0/28"),
			services: []Service{claimedSvc("web", TrafficPolicyCluster, inPool("lan", lbV4), []Endpoint{ready("lan-node")}, nil)},
			want:     map[netip.Addr]result{lbV4: {Owner: "lan-node"}},
		},
		{
			name:     "the address's range moved to another pool: still announced with its claim's pool, not the other's",
			model:    twoPoolModel("198.51.100.192/26", "198.51.100.128/26"),
			services: []Service{claimedSvc("web", TrafficPolicyCluster, inPool("lan", lbV4), []Endpoint{ready("lan-node")}, nil)},
			want:     map[netip.Addr]result{lbV4: {Owner: "lan-node"}},
		},
		{
			name:     "an address claimed in other, inside lan's range: other's layer-2 and BGP advertisements",
			model:    twoPoolModel("198.51.100.128/26", "203.0.113.0/28"),
			services: []Service{claimedSvc("web", TrafficPolicyCluster, inPool("other", lbV4), []Endpoint{ready("lan-node")}, nil)},
			want:     map[netip.Addr]result{lbV4: {Owner: "other-node", BGP: nodes}},
		},
		{
			name:     "an address claimed in a pool the configuration lacks is not announced",
			model:    twoPoolModel("198.51.100.128/26", "203.0.113.0/28"),
			services: []Service{claimedSvc("web", TrafficPolicyCluster, inPool("gone", lbV4), []Endpoint{ready("lan-node")}, nil)},
			want:     map[netip.Addr]result{},
		},
		{
			name:  "sharers whose summaries disagree on the pool for a moment: the first by key decides",
			model: twoPoolModel("198.51.100.128/26", "203.0.113.0/28"),
			services: []Service{
				claimedSvc("b", TrafficPolicyCluster, inPool("lan", lbV4), []Endpoint{ready("lan-node")}, nil),
				claimedSvc("a", TrafficPolicyCluster, inPool("other", lbV4), []Endpoint{ready("lan-node")}, nil),
			},
			want: map[netip.Addr]result{lbV4: {Owner: "other-node", BGP: nodes}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, incremental := range []bool{false, true} {
				got := map[netip.Addr]result{}
				for _, self := range nodes {
					in := Inputs{Self: self, Model: tt.model, Services: tt.services, Nodes: aliveNodes(nodes...), Interfaces: testNodeInterfaces}
					var d Desired
					if incremental {
						// Start from the Services without the address's
						// claims, then add them: the incremental path.
						inc := NewIncremental()
						inc.Compute(Inputs{Self: self, Model: tt.model, Nodes: in.Nodes, Interfaces: in.Interfaces})
						d = inc.Compute(in)
					} else {
						d = Compute(in)
					}
					for a, owner := range d.Owners {
						r := got[a]
						r.Owner = owner
						got[a] = r
					}
					for a := range d.BGP {
						r := got[a]
						r.BGP = append(r.BGP, self)
						got[a] = r
					}
					for a := range d.Layer2 {
						if d.Owners[a] != self {
							t.Errorf("%s announces %s at layer 2, whose owner is %s", self, a, d.Owners[a])
						}
					}
				}
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("incremental %v: owners and BGP advertisers (-want +got):\n%s", incremental, diff)
				}
			}
		})
	}
}
