package reconcile

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/probe"
	"github.com/herald-dev/herald/speaker/internal/report"
)

// scaleCluster is the measurement command's cluster: n IPv6 Services of
// type LoadBalancer, each with one EndpointSlice of perService endpoints
// spread over the nodes, in informer caches trimmed as the speaker trims
// them.
type scaleCluster struct {
	services cache.Store
	slices   cache.Store
	claims   cache.Store
	nodes    []decide.Node
	model    *config.Model
}

func newScaleCluster(tb testing.TB, n, perService, nodes int) *scaleCluster {
	tb.Helper()
	c := &scaleCluster{
		services: cache.NewStore(cache.MetaNamespaceKeyFunc),
		slices:   cache.NewStore(cache.MetaNamespaceKeyFunc),
		claims:   cache.NewStore(cache.MetaNamespaceKeyFunc),
		model: config.Build(config.Snapshot{
			IPPools:          []*v1alpha1.IPPool{{ObjectMeta: metav1.ObjectMeta{Name: "v6"}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{"2001:db8:1::/96"}}}},
			L2Advertisements: []*v1alpha1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "all"}}},
		}),
	}
	var names []string
	for i := range nodes {
		names = append(names, fmt.Sprintf("node%d", i+1))
	}
	c.nodes = aliveNodes(names...)
	in := kubeinput.NewInterner()
	a := netip.MustParseAddr("2001:db8:1::1:0")
	for i := range n {
		a = a.Next()
		name := fmt.Sprintf("mem-%05d", i)
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: "u"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: a.String()}}}},
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv6,
		}
		for j := range perService {
			node := names[(i+j)%nodes]
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"2001:db8:2::1"}, NodeName: &node})
		}
		if err := c.services.Add(cached(tb, in, s)); err != nil {
			tb.Fatal(err)
		}
		if err := c.slices.Add(cached(tb, in, es)); err != nil {
			tb.Fatal(err)
		}
		if err := c.claims.Add(cached(tb, in, claimFor(a, "v6", holder(s, v1alpha1.HolderLoadBalancer)))); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

func (c *scaleCluster) loop() *Loop {
	return newCacheLoop("node1", kubeinput.Caches{
		Services: c.services, Slices: c.slices, Claims: c.claims,
	}, nil)
}

// moveEndpoints rewrites the EndpointSlice of Service i with its endpoints
// on other nodes, as an informer would store it, and marks it dirty.
func (c *scaleCluster) moveEndpoints(tb testing.TB, s *Loop, i, shift int) {
	obj, ok, err := c.slices.GetByKey(fmt.Sprintf("default/mem-%05d-x", i))
	if err != nil || !ok {
		tb.Fatalf("slice %d: %v %v", i, ok, err)
	}
	old := obj.(*kubeinput.CachedSlice)
	es := &kubeinput.CachedSlice{}
	*es = *old
	es.Endpoints = slices.Clone(old.Endpoints)
	for j := range es.Endpoints {
		es.Endpoints[j].NodeName = c.nodes[(i+j+shift)%len(c.nodes)].State.Name
	}
	if err := c.slices.Update(es); err != nil {
		tb.Fatal(err)
	}
	s.changes.sums.SliceChanged(old, es)
}

// BenchmarkReconcile is the pure part of one reconcile in the measurement
// command's cluster (10,000 Services, 50,000 endpoints, 3 nodes): read the
// Services and their endpoints from the caches, compute the desired state,
// and derive what the loop derives from it (ownership changes, probe
// targets, the status list when announcements changed).
//
//   - full: every Service summary rebuilt and every address recomputed, as
//     every reconcile did before the incremental path (and as a global
//     change, and the loop's ten-minute safety net, still do);
//   - summariesRebuilt: every Service summary rebuilt from the caches but
//     nothing changed (the loop's minutely safety net);
//   - oneSliceChanged: one EndpointSlice changed since the last reconcile,
//     the reaction the measurement times.
func BenchmarkReconcile(b *testing.B) {
	c := newScaleCluster(b, 10000, 5, 3)
	for _, mode := range []string{"full", "summariesRebuilt", "oneSliceChanged"} {
		b.Run("services=10000/nodes=3/"+mode, func(b *testing.B) {
			s := c.loop()
			var prev decide.Desired
			since := map[netip.Addr]time.Time{}
			reconcile := func() {
				services := s.gatherServices(time.Now())
				d := s.inc.Compute(decide.Inputs{Self: "node1", Model: c.model, Services: services, Nodes: c.nodes, Interfaces: testNodeInterfaces})
				decide.OwnershipChanges(prev, d, "node1")
				probe.Targets(services, "node1")
				if !sameAnnouncements(prev.Layer2, d.Layer2) {
					report.Layer2Status(d, since)
				}
				prev = d
			}
			reconcile()
			i := 0
			b.ResetTimer()
			for b.Loop() {
				i++
				switch mode {
				case "full":
					s.changes.sums.RebuildAll()
					s.inc.Reset()
				case "summariesRebuilt":
					s.changes.sums.RebuildAll()
				default:
					c.moveEndpoints(b, s, 7, i)
				}
				reconcile()
			}
		})
	}
}

// BenchmarkScaleMemory reports what the speaker holds in the measurement
// command's cluster (10,000 Services, 50,000 endpoints, 3 nodes), as live
// heap after a collection: the informer caches as the transforms leave
// them (caches-MB, caches-objects), and what one full reconcile keeps
// (summaries, Incremental's state, the desired state: state-MB,
// state-objects). Run it with -benchtime=1x: each iteration builds the
// cluster anew.
func BenchmarkScaleMemory(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		heap0, objects0 := liveHeap()
		c := newScaleCluster(b, 10000, 5, 3)
		heap1, objects1 := liveHeap()
		s := c.loop()
		d := s.inc.Compute(decide.Inputs{Self: "node1", Model: c.model, Services: s.gatherServices(time.Now()), Nodes: c.nodes, Interfaces: testNodeInterfaces})
		heap2, objects2 := liveHeap()
		runtime.KeepAlive(c)
		runtime.KeepAlive(s)
		runtime.KeepAlive(d)
		b.ReportMetric(float64(heap1-heap0)/1e6, "caches-MB")
		b.ReportMetric(float64(objects1-objects0), "caches-objects")
		b.ReportMetric(float64(heap2-heap1)/1e6, "state-MB")
		b.ReportMetric(float64(objects2-objects1), "state-objects")
		b.StartTimer()
	}
}

// liveHeap returns the bytes and objects of the live heap, after a
// collection.
func liveHeap() (bytes, objects int64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.HeapObjects)
}
