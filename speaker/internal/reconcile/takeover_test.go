package reconcile

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// TestTakeoverDelayInTheLoop drives the loop's path from the informer caches
// to the desired state (gatherServices, then Incremental) through a pod
// becoming ready on a node that outranks the announcing one: the summaries
// mark the new node settling, the address stays, the tracker names the time
// it settles, and at that time (with no informer event) the Service is
// rebuilt and the address moves.
func TestTakeoverDelayInTheLoop(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	rank := decide.Ranking(lbV4, nodes)
	model := testModel([]*v1alpha1.L2Advertisement{l2Adv("all")})
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

	for _, tt := range []struct {
		name  string
		delay time.Duration
		// wantAfterNewPod is the owner once the pod on rank[0] is ready,
		// before the delay ends.
		wantAfterNewPod string
		wantNext        time.Time
	}{
		{name: "takeover delay 2s", delay: 2 * time.Second, wantAfterNewPod: rank[1], wantNext: t0.Add(5 * time.Second)},
		{name: "takeover delay disabled", delay: -1, wantAfterNewPod: rank[0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			services := cache.NewStore(cache.MetaNamespaceKeyFunc)
			slices := cache.NewStore(cache.MetaNamespaceKeyFunc)
			in := kubeinput.NewInterner()
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
				Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbV4.String()}}}},
			}
			if err := services.Add(cached(t, nil, svc)); err != nil {
				t.Fatal(err)
			}
			slice := func(onNodes ...string) any {
				es := &discoveryv1.EndpointSlice{
					ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
					AddressType: discoveryv1.AddressTypeIPv4,
				}
				for _, n := range onNodes {
					es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"203.0.113.9"}, NodeName: &n})
				}
				return cached(t, in, es)
			}
			if err := slices.Add(slice(rank[1])); err != nil {
				t.Fatal(err)
			}

			claims := claimCache(t, claimFor(lbV4, "lan", holder(svc, v1alpha1.HolderLoadBalancer)))
			s := newCacheLoop("n1", kubeinput.Caches{Services: services, Slices: slices, Claims: claims}, decide.NewSettleTracker(tt.delay))
			owner := func(now time.Time) string {
				t.Helper()
				d := s.inc.Compute(decide.Inputs{Self: "n1", Model: model, Services: s.gatherServices(now), Nodes: aliveNodes(nodes...), Interfaces: testNodeInterfaces})
				return d.Owners[lbV4]
			}

			if got := owner(t0); got != rank[1] {
				t.Fatalf("at start-up the owner is %s, want %s, the only node with a pod", got, rank[1])
			}
			// A pod becomes ready on rank[0], 3 s after start-up.
			old := slice(rank[1])
			es := slice(rank[1], rank[0])
			if err := slices.Update(es); err != nil {
				t.Fatal(err)
			}
			s.changes.sums.SliceChanged(old, es)
			if got := owner(t0.Add(3 * time.Second)); got != tt.wantAfterNewPod {
				t.Errorf("once the pod on %s is ready, the owner is %s, want %s", rank[0], got, tt.wantAfterNewPod)
			}
			if next := s.changes.sums.Takeover().Next(); !next.Equal(tt.wantNext) {
				t.Errorf("the next settle time is %v, want %v", next, tt.wantNext)
			}
			if got := owner(t0.Add(4 * time.Second)); got != tt.wantAfterNewPod {
				t.Errorf("1 s later, with no change, the owner is %s, want %s", got, tt.wantAfterNewPod)
			}
			// No informer event: the settle time alone makes the loop rebuild
			// the Service.
			if got := owner(t0.Add(5 * time.Second)); got != rank[0] {
				t.Errorf("once %s has settled, the owner is %s, want %s", rank[0], got, rank[0])
			}
			if next := s.changes.sums.Takeover().Next(); !next.IsZero() {
				t.Errorf("after settling, the next settle time is %v, want none", next)
			}
		})
	}
}

// TestFirstPodsMomentsApart follows, from the announcing node's side, a
// Local Service's first pods becoming ready 150 ms apart (the rollout e2e's
// start): the pod on the lower-ranked node first, which then announces,
// then the one on the node that outranks it. The first pods settle at once
// (no node could forward for the delay before them), so with or without a
// takeover delay the address moves to the better node, and the node that
// announced it first stops: the summaries rebuild the Service on the
// EndpointSlice update and Incremental recomputes its address.
func TestFirstPodsMomentsApart(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	rank := decide.Ranking(lbV4, nodes)
	model := testModel([]*v1alpha1.L2Advertisement{l2Adv("all")})
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, delay := range []time.Duration{decide.DefaultTakeoverDelay, -1} {
		t.Run(fmt.Sprintf("takeover delay %v", delay), func(t *testing.T) {
			services := cache.NewStore(cache.MetaNamespaceKeyFunc)
			slices := cache.NewStore(cache.MetaNamespaceKeyFunc)
			in := kubeinput.NewInterner()
			slice := func(onNodes ...string) any {
				es := &discoveryv1.EndpointSlice{
					ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
					AddressType: discoveryv1.AddressTypeIPv4,
				}
				for _, n := range onNodes {
					es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"203.0.113.9"}, NodeName: &n})
				}
				return cached(t, in, es)
			}
			self := rank[1] // the node that announces first, then must stop
			claims := claimCache(t, claimFor(lbV4, "lan", v1alpha1.AddressHolder{Namespace: "default", Name: "web", UID: "u", As: v1alpha1.HolderLoadBalancer}))
			s := newCacheLoop(self, kubeinput.Caches{Services: services, Slices: slices, Claims: claims}, decide.NewSettleTracker(delay))
			reconcile := func(now time.Time) decide.Desired {
				t.Helper()
				return s.inc.Compute(decide.Inputs{Self: self, Model: model, Services: s.gatherServices(now), Nodes: aliveNodes(nodes...), Interfaces: testNodeInterfaces})
			}
			// The speaker starts with no Service (the start-up list).
			if d := reconcile(t0); len(d.Owners) != 0 {
				t.Fatalf("with no Service, owners %v, want none", d.Owners)
			}
			// The Service gets its address, with no endpoint yet.
			svc := cached(t, in, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
				Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbV4.String()}}}},
			})
			if err := services.Add(svc); err != nil {
				t.Fatal(err)
			}
			s.changes.sums.MarkService(svc)
			if d := reconcile(t0.Add(time.Second)); d.Owners[lbV4] != "" {
				t.Fatalf("with no endpoint, the owner is %q, want none", d.Owners[lbV4])
			}
			// The first pod, on self.
			es := slice(self)
			if err := slices.Add(es); err != nil {
				t.Fatal(err)
			}
			s.changes.sums.SliceChanged(nil, es)
			d := reconcile(t0.Add(2 * time.Second))
			if _, ok := d.Layer2[lbV4]; !ok || d.Owners[lbV4] != self {
				t.Fatalf("with the pod on %s only, the owner is %q (announced here: %v), want %s", self, d.Owners[lbV4], ok, self)
			}
			// 150 ms later, the pod on rank[0].
			old := es
			es = slice(self, rank[0])
			if err := slices.Update(es); err != nil {
				t.Fatal(err)
			}
			s.changes.sums.SliceChanged(old, es)
			d = reconcile(t0.Add(2*time.Second + 150*time.Millisecond))
			if _, ok := d.Layer2[lbV4]; ok || d.Owners[lbV4] != rank[0] {
				t.Errorf("with pods on %s and %s, the owner is %q (still announced here: %v), want %s", self, rank[0], d.Owners[lbV4], ok, rank[0])
			}
			if want := decide.Compute(decide.Inputs{Self: self, Model: model, Services: s.gatherServices(t0.Add(3 * time.Second)), Nodes: aliveNodes(nodes...), Interfaces: testNodeInterfaces}); !reflect.DeepEqual(want.Owners, d.Owners) {
				t.Errorf("Incremental owners %v, Compute %v", d.Owners, want.Owners)
			}
		})
	}
}
