package reconcile

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeclient/kubeclienttest"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// The fixtures of the loop's tests: one pool "lan" of 198.51.100.128/26
// and 2001:db8:1::1:0/112, its address lbV4, and nodes whose eth0 is on
// the LAN.
var lbV4 = netip.MustParseAddr("198.51.100.130")

var testNodeInterfaces = []decide.NodeInterface{
	{Name: "eth0", Flags: net.FlagUp | net.FlagBroadcast, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("198.51.100.11/24"), netip.MustParsePrefix("2001:db8:1::11/64")}},
}

func testModel(l2 []*v1alpha1.L2Advertisement) *config.Model {
	return config.Build(config.Snapshot{
		IPPools: []*v1alpha1.IPPool{{
			ObjectMeta: metav1.ObjectMeta{Name: "lan"},
			Spec:       v1alpha1.IPPoolSpec{Addresses: []string{"198.51.100.128/26", "2001:db8:1::1:0/112"}},
		}},
		L2Advertisements: l2,
	})
}

func l2Adv(name string) *v1alpha1.L2Advertisement {
	return &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func aliveNodes(names ...string) []decide.Node {
	out := make([]decide.Node, 0, len(names))
	for _, n := range names {
		out = append(out, decide.Node{State: decide.NodeState{Name: n, SpeakerAlive: true}, Labels: map[string]string{"kubernetes.io/hostname": n}})
	}
	return out
}

// claimFor is the AddressClaim of addr in pool, held by holders, as an
// allocator writes it.
var claimFor = config.NewClaim

// holder lists svc as a holder: as v1alpha1.HolderLoadBalancer or HolderExternalIP.
func holder(svc *corev1.Service, as string) v1alpha1.AddressHolder {
	return v1alpha1.AddressHolder{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: as}
}

// cached returns obj as the speaker's informers store it.
func cached(tb testing.TB, in *kubeinput.Interner, obj any) any {
	tb.Helper()
	out, err := kubeinput.TransformObject(in)(obj)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// claimCache is a claims cache holding claims, as the informer stores
// them.
func claimCache(tb testing.TB, claims ...*v1alpha1.AddressClaim) cache.Store {
	tb.Helper()
	idx := cache.NewStore(cache.MetaNamespaceKeyFunc)
	for _, c := range claims {
		if err := idx.Add(cached(tb, nil, c)); err != nil {
			tb.Fatal(err)
		}
	}
	return idx
}

// newCacheLoop returns node self's loop reading Services, EndpointSlices
// and AddressClaims from caches (no clients, no announcers): enough for
// gatherServices and the decisions after it.
func newCacheLoop(self string, c kubeinput.Caches, takeover *decide.SettleTracker) *Loop {
	sums := kubeinput.NewSummaries(takeover)
	return New(Config{NodeName: self}, Deps{
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Informers: &kubeinput.Informers{Services: c.Services, Slices: c.Slices, Claims: c.Claims},
		Changes:   NewChanges(self, sums, nil),
	})
}

// newFakeLoop returns node self's loop wired as the speaker wires it, to
// informers of the clients (fake clientsets in tests), started and synced
// until the test ends; no membership, announcers or status writer.
func newFakeLoop(t *testing.T, self string, kube kubernetes.Interface, herald heraldclient.Interface, log *slog.Logger) *Loop {
	t.Helper()
	changes := NewChanges(self, kubeinput.NewSummaries(nil), kubeinput.NewBadClaims(log))
	inf := startedInformers(t, self, kube, herald, func(inf *kubeinput.Informers) {
		if err := changes.Register(inf); err != nil {
			t.Fatal(err)
		}
	})
	return New(Config{NodeName: self}, Deps{Log: log, Informers: inf, Changes: changes})
}

// startedInformers returns node self's informers of the clients (fake
// clientsets in tests), wired as the speaker wires them: register adds the
// handlers before they start; they are synced when it returns, and stop
// when the test ends.
func startedInformers(t *testing.T, self string, kube kubernetes.Interface, herald heraldclient.Interface,
	register func(*kubeinput.Informers)) *kubeinput.Informers {
	t.Helper()
	inf := kubeinput.NewInformers(kubeclienttest.ListWatches(kube, herald, self, ""), "", kubeinput.NewInterner())
	register(inf)
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	inf.Start(ctx)
	if err := inf.WaitForCacheSync(ctx); err != nil {
		t.Fatal(err)
	}
	return inf
}

// discardEvents is an EventRecorder that records nothing.
type discardEvents struct{}

func (discardEvents) Event(corev1.ObjectReference, string, string, string) {}
