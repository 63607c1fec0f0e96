package reconcile

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"

	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/membership"
	"github.com/herald-dev/herald/speaker/internal/report"
	"github.com/herald-dev/herald/speaker/layer2"
)

// TestLoopWithFakeClientsets runs the loop as the speaker wires it (its
// goroutine, the informers' handlers, the status writer, membership on the
// loopback interface, the rejoin and janitor loops), on fake clientsets,
// under the race detector in CI: a Service whose claim lists it gets its
// address elected to this node, the node's SpeakerStatus is written, an
// IPPool status write leaves the model alone, and an EndpointSlice moving
// the only endpoint away withdraws the address.
func TestLoopWithFakeClientsets(t *testing.T) {
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u-web"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbV4.String()}}}},
	}
	node := func(name string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}}
	}
	slice := func(on string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: &on}},
		}
	}
	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "lan", Generation: 1}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{"198.51.100.128/26"}}}
	kube := kubefake.NewClientset(web, node("n1"), node("n2"), slice("n1"))
	herald := heraldfake.NewSimpleClientset(pool, l2Adv("all"), claimFor(lbV4, "lan", holder(web, v1alpha1.HolderLoadBalancer)))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	changes := NewChanges("n1", kubeinput.NewSummaries(decide.NewSettleTracker(-1)), kubeinput.NewBadClaims(log))
	inf := startedInformers(t, "n1", kube, herald, func(inf *kubeinput.Informers) {
		if err := changes.Register(inf); err != nil {
			t.Fatal(err)
		}
	})
	ctx := t.Context()

	members, err := membership.New(membership.Config{Name: "n1", BindAddr: "127.0.0.1", BindPort: 0, AdvertiseAddr: "127.0.0.1"}, changes.Poke)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { members.Shutdown() })
	health := &report.Health{}
	metrics := report.NewMetrics(prometheus.NewRegistry(), func() layer2.Stats { return layer2.Stats{} }, members.Counts, func() int { return 0 })
	status := report.NewStatusWriter(herald.HeraldV1alpha1().SpeakerStatuses(), inf.Statuses, "n1", 10*time.Millisecond, func() types.UID { return "" }, nil)
	loop := New(Config{NodeName: "n1", ConflictHold: time.Second, ResyncInterval: time.Second, MemberlistPort: 7946},
		Deps{Log: log, Informers: inf, Changes: changes, Members: members, Status: status, Recorder: discardEvents{}, Metrics: metrics, Health: health})

	// run runs the loop until until holds, then stops it: the loop's state
	// is its goroutine's, readable once it has returned.
	run := func(what string, until func() bool) {
		t.Helper()
		runCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { loop.Run(runCtx) })
		defer wg.Wait()
		defer stop()
		eventually(t, what, until)
	}
	reconciled := func() func() bool {
		n := testutil.ToFloat64(metrics.Reconciles)
		return func() bool { return testutil.ToFloat64(metrics.Reconciles) > n }
	}

	run("n1's SpeakerStatus written, ready", func() bool {
		rec, err := herald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, "n1", metav1.GetOptions{})
		return err == nil && len(rec.Status.Conditions) == 1 && rec.Status.Conditions[0].Status == metav1.ConditionTrue
	})
	if err := health.Ready(); err != nil {
		t.Errorf("after a reconcile: %v", err)
	}
	if got := loop.prev.Owners[lbV4]; got != "n1" {
		t.Errorf("with the only endpoint on n1, the owner is %q, want n1", got)
	}

	// A status write to the pool (the controller's usage) is no model change.
	pool.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Usage", LastTransitionTime: metav1.Now()}}
	if _, err := herald.HeraldV1alpha1().IPPools().UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool's status in the cache", func() bool {
		p, err := inf.Pools.Get("lan")
		return err == nil && len(p.Status.Conditions) == 1
	})
	time.Sleep(50 * time.Millisecond) // the handlers run after the cache is updated
	if changes.configDirty.Load() {
		t.Error("the IPPool status write left the model to be rebuilt")
	}

	// The only endpoint moves to n2, which has no live speaker here: under
	// Local policy nobody may announce.
	if _, err := kube.DiscoveryV1().EndpointSlices("shop").Update(ctx, slice("n2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the endpoint's move in the cache", func() bool {
		es, ok, err := inf.Slices.GetByKey("shop/web-1")
		return err == nil && ok && es.(*kubeinput.CachedSlice).Endpoints[0].NodeName == "n2"
	})
	run("a reconcile", reconciled())
	if got := loop.prev.Owners[lbV4]; got != "" {
		t.Errorf("with the only endpoint on n2, the owner is %q, want none", got)
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
