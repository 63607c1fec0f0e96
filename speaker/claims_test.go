package speaker

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// claimFor is the AddressClaim of addr in pool, held by holders, as an
// allocator writes it.
func claimFor(addr netip.Addr, pool string, holders ...v1alpha1.AddressHolder) *v1alpha1.AddressClaim {
	family := "IPv4"
	if addr.Is6() {
		family = "IPv6"
	}
	return &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: config.ClaimName(addr)},
		Spec: v1alpha1.AddressClaimSpec{Address: addr.String(), Family: family, Pool: pool,
			Holders: holders, HolderCount: int32(len(holders))},
	}
}

// holder lists svc as a holder: as v1alpha1.HolderLoadBalancer or HolderExternalIP.
func holder(svc *corev1.Service, as string) v1alpha1.AddressHolder {
	return v1alpha1.AddressHolder{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: as}
}

// claimLister is a claims cache holding claims, trimmed as the informer
// trims them.
func claimLister(tb testing.TB, claims ...*v1alpha1.AddressClaim) (heraldlisters.AddressClaimLister, cache.Indexer) {
	tb.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, c := range claims {
		if err := idx.Add(trimAddressClaim(c)); err != nil {
			tb.Fatal(err)
		}
	}
	return heraldlisters.NewAddressClaimLister(idx), idx
}

// TestSummariesAnnounceOnlyClaimedAddresses reads Services and their
// claims from caches, as the loop does, and checks which addresses each
// summary keeps and with which pool.
func TestSummariesAnnounceOnlyClaimedAddresses(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.51.100.140"), netip.MustParseAddr("198.51.100.141")
	ext := netip.MustParseAddr("203.0.113.5")
	v6 := netip.MustParseAddr("2001:db8:1::1:9")
	service := func(name, uid string, ingress []netip.Addr, externalIPs ...string) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalIPs: externalIPs},
		}
		for _, a := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: a.String()})
		}
		return s
	}
	web := service("web", "u-web", []netip.Addr{a1, v6})
	tests := []struct {
		name   string
		svc    *corev1.Service
		claims []*v1alpha1.AddressClaim
		want   []config.ClaimedAddress // nil: no summary
	}{
		{
			name:   "ingress addresses claimed for the Service, each with its claim's pool",
			svc:    web,
			claims: []*v1alpha1.AddressClaim{claimFor(a1, "lan", holder(web, v1alpha1.HolderLoadBalancer)), claimFor(v6, "lan-v6", holder(web, v1alpha1.HolderLoadBalancer))},
			want:   []config.ClaimedAddress{{Addr: a1, Pool: "lan"}, {Addr: v6, Pool: "lan-v6"}},
		},
		{
			name:   "an ingress address without a claim is not announced",
			svc:    web,
			claims: []*v1alpha1.AddressClaim{claimFor(v6, "lan", holder(web, v1alpha1.HolderLoadBalancer))},
			want:   []config.ClaimedAddress{{Addr: v6, Pool: "lan"}},
		},
		{
			name: "a claim that lists another UID under the same name (the Service was deleted and created again) is not the Service's",
			svc:  service("web", "u-web-2", []netip.Addr{a1}),
			claims: []*v1alpha1.AddressClaim{claimFor(a1, "lan",
				v1alpha1.AddressHolder{Namespace: "shop", Name: "web", UID: "u-web", As: v1alpha1.HolderLoadBalancer})},
		},
		{
			name:   "an external IP in spec without a claim is not announced (CVE-2020-8554)",
			svc:    service("ext", "u-ext", nil, ext.String()),
			claims: []*v1alpha1.AddressClaim{claimFor(a2, "external", v1alpha1.AddressHolder{Namespace: "shop", Name: "ext", UID: "u-ext", As: v1alpha1.HolderExternalIP})},
		},
		{
			name: "an external IP claimed for the Service as an external IP is announced",
			svc:  service("ext", "u-ext", nil, ext.String()),
			claims: []*v1alpha1.AddressClaim{claimFor(ext, "external",
				v1alpha1.AddressHolder{Namespace: "shop", Name: "ext", UID: "u-ext", As: v1alpha1.HolderExternalIP})},
			want: []config.ClaimedAddress{{Addr: ext, Pool: "external"}},
		},
		{
			name: "an external IP claimed for the Service as a load-balancer address is not",
			svc:  service("ext", "u-ext", nil, ext.String()),
			claims: []*v1alpha1.AddressClaim{claimFor(ext, "external",
				v1alpha1.AddressHolder{Namespace: "shop", Name: "ext", UID: "u-ext", As: v1alpha1.HolderLoadBalancer})},
		},
		{
			name: "a claim that fails validation is ignored",
			svc:  web,
			claims: []*v1alpha1.AddressClaim{
				func() *v1alpha1.AddressClaim {
					c := claimFor(a1, "lan", holder(web, v1alpha1.HolderLoadBalancer))
					c.Spec.Address = a2.String() // named for a1, claims a2
					return c
				}(),
				claimFor(v6, "lan", v1alpha1.AddressHolder{Namespace: "shop", Name: "web", As: v1alpha1.HolderLoadBalancer}), // no UID
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			services := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
			if err := services.Add(trimService(tt.svc)); err != nil {
				t.Fatal(err)
			}
			claims, _ := claimLister(t, tt.claims...)
			c := caches{services: corelisters.NewServiceLister(services), slices: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{serviceIndex: sliceServiceKey}), claims: claims}
			got, _ := newSummaries().update(c, "", time.Now())
			var addrs []config.ClaimedAddress
			if len(got) > 0 {
				addrs = got[0].Addresses
			}
			if diff := cmp.Diff(tt.want, addrs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("summary addresses (-want +got):\n%s", diff)
			}
		})
	}
}

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

// TestClaimEventsMarkHolders drives the speaker's informers with fake
// clientsets: a claim's creation, its holders' change and its deletion
// each mark dirty exactly the Services it listed before and after, and the
// next gatherServices reads the new claim.
func TestClaimEventsMarkHolders(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := netip.MustParseAddr("198.51.100.140")
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u-web"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: addr.String()}}}},
	}
	api := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", UID: "u-api"}}
	kube := kubefake.NewClientset(web.DeepCopy(), api.DeepCopy())
	herald := heraldfake.NewSimpleClientset()
	var logs bytes.Buffer
	s := &speaker{
		cfg: Config{NodeName: "n1"}, log: slog.New(slog.NewTextHandler(&logs, nil)), kube: kube, herald: herald,
		trigger: make(chan struct{}, 1), interner: newInterner(), sums: newSummaries(), badClaims: newBadClaims(slog.New(slog.NewTextHandler(&logs, nil))),
	}
	if err := s.startInformers(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.gatherServices(time.Now()); len(got) != 0 {
		t.Fatalf("before any claim, summaries %+v, want none", got)
	}

	// waitDirty waits until the dirty set holds want (and only want); it
	// leaves it for the next gatherServices.
	waitDirty := func(step string, want ...ServiceKey) {
		t.Helper()
		var keys []string
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			s.sums.mu.Lock()
			all := s.sums.all
			keys = keys[:0]
			for k := range s.sums.dirty {
				keys = append(keys, k.String())
			}
			s.sums.mu.Unlock()
			if all {
				t.Fatalf("%s: every summary marked for a rebuild, want only %v", step, want)
			}
			if len(keys) >= len(want) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		slices.Sort(keys)
		var wantKeys []string
		for _, k := range want {
			wantKeys = append(wantKeys, k.String())
		}
		slices.Sort(wantKeys)
		if diff := cmp.Diff(wantKeys, keys); diff != "" {
			t.Fatalf("%s: dirty Services (-want +got):\n%s", step, diff)
		}
	}
	claims := herald.HeraldV1alpha1().AddressClaims()

	created, err := claims.Create(ctx, claimFor(addr, "lan", holder(web, v1alpha1.HolderLoadBalancer)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitDirty("claim created", ServiceKey{"shop", "web"})
	if got := s.gatherServices(time.Now()); len(got) != 1 || !slices.Equal(got[0].Addresses, []config.ClaimedAddress{{Addr: addr, Pool: "lan"}}) {
		t.Fatalf("after the claim, summaries %+v, want shop/web with %s in lan", got, addr)
	}

	// The address moves to api: web loses it, api gains it.
	moved := created.DeepCopy()
	moved.Spec.Holders = []v1alpha1.AddressHolder{holder(api, v1alpha1.HolderLoadBalancer)}
	if _, err := claims.Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("holder replaced", ServiceKey{"shop", "web"}, ServiceKey{"shop", "api"})
	if got := s.gatherServices(time.Now()); len(got) != 0 {
		t.Fatalf("once the claim lists api only, summaries %+v, want none (web no longer holds it, api does not ask for it)", got)
	}

	if err := claims.Delete(ctx, moved.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("claim deleted", ServiceKey{"shop", "api"})
	s.gatherServices(time.Now())

	// An invalid claim is logged once and counted, and its holders marked.
	bad := claimFor(addr, "lan", holder(web, v1alpha1.HolderLoadBalancer))
	bad.Spec.Address = "198.51.100.141"
	if _, err := claims.Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("invalid claim created", ServiceKey{"shop", "web"})
	if got := s.gatherServices(time.Now()); len(got) != 0 {
		t.Fatalf("with an invalid claim, summaries %+v, want none", got)
	}
	if n := s.badClaims.count(); n != 1 {
		t.Errorf("invalid claims counted: %d, want 1", n)
	}
	if n := strings.Count(logs.String(), "ignoring an invalid AddressClaim"); n != 1 {
		t.Errorf("invalid claim logged %d times, want once:\n%s", n, logs.String())
	}
	if err := claims.Delete(ctx, bad.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("invalid claim deleted", ServiceKey{"shop", "web"})
	if n := s.badClaims.count(); n != 0 {
		t.Errorf("invalid claims counted after its deletion: %d, want 0", n)
	}
}

// TestBadClaimsLogOncePerVersion checks that a relist (the same version
// again) does not log an invalid claim again, and a new version does.
func TestBadClaimsLogOncePerVersion(t *testing.T) {
	var logs bytes.Buffer
	b := newBadClaims(slog.New(slog.NewTextHandler(&logs, nil)))
	bad := claimFor(netip.MustParseAddr("198.51.100.140"), "lan")
	bad.ResourceVersion = "1"
	good := claimFor(netip.MustParseAddr("198.51.100.140"), "lan", v1alpha1.AddressHolder{Namespace: "a", Name: "b", UID: "u", As: v1alpha1.HolderLoadBalancer})
	good.ResourceVersion = "3"
	b.observe(bad)
	b.observe(bad)
	if n := strings.Count(logs.String(), "ignoring"); n != 1 || b.count() != 1 {
		t.Fatalf("the same version twice: logged %d times, counted %d; want 1, 1", n, b.count())
	}
	bad2 := bad.DeepCopy()
	bad2.ResourceVersion = "2"
	b.observe(bad2)
	if n := strings.Count(logs.String(), "ignoring"); n != 2 || b.count() != 1 {
		t.Fatalf("a new invalid version: logged %d times, counted %d; want 2, 1", n, b.count())
	}
	b.observe(good)
	if b.count() != 0 {
		t.Fatalf("once valid, counted %d, want 0", b.count())
	}
	b.observe(bad)
	b.forget(cache.DeletedFinalStateUnknown{Key: bad.Name, Obj: bad})
	if b.count() != 0 {
		t.Fatalf("after deletion, counted %d, want 0", b.count())
	}
}
