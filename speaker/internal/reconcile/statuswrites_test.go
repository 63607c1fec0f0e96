package reconcile

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/report"
	"github.com/herald-dev/herald/speaker/layer2"
)

// statusCluster is n simulated speakers, each with its loop's reporting
// path and its status writer, writing to one fake API server.
type statusCluster struct {
	herald  *heraldfake.Clientset
	records cache.Indexer // the SpeakerStatus cache every writer reads
	names   []string
	loops   map[string]*Loop
}

func newStatusCluster(t testing.TB, n int) *statusCluster {
	c := &statusCluster{herald: heraldfake.NewSimpleClientset(), records: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), loops: map[string]*Loop{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range n {
		name := fmt.Sprintf("node%03d", i)
		c.names = append(c.names, name)
		l := New(Config{NodeName: name}, Deps{
			Log: log, Informers: &kubeinput.Informers{}, Changes: NewChanges(name, kubeinput.NewSummaries(nil), nil),
			Status: report.NewStatusWriter(c.herald.HeraldV1alpha1().SpeakerStatuses(), heraldlisters.NewSpeakerStatusLister(c.records), name, time.Second,
				func() types.UID { return "" }, nil),
			Recorder: discardEvents{},
			Metrics: report.NewMetrics(prometheus.NewRegistry(), func() layer2.Stats { return layer2.Stats{} },
				func() (int, int) { return 0, 0 }, func() int { return 0 }),
		})
		l.started = time.Now()
		c.loops[name] = l
	}
	return c
}

// round has every live node reconcile with the given dead nodes, then
// every writer flush once (their coalescing interval, 1 s, has passed),
// and returns how many SpeakerStatus writes (patches) the API received.
func (c *statusCluster) round(t testing.TB, model *config.Model, services []decide.Service, dead map[string]bool) int {
	var nodes []decide.Node
	for _, n := range c.names {
		nodes = append(nodes, decide.Node{State: decide.NodeState{Name: n, SpeakerAlive: !dead[n]}})
	}
	before := len(c.herald.Actions())
	now := time.Now()
	for _, n := range c.names {
		if dead[n] {
			continue
		}
		d := decide.Compute(decide.Inputs{Self: n, Model: model, Services: services, Nodes: nodes, Interfaces: testNodeInterfaces})
		c.loops[n].report(d, len(c.names)-len(dead), now)
	}
	for _, n := range c.names {
		if !dead[n] {
			if err := c.loops[n].status.Flush(t.Context()); err != nil && err != report.ErrUnchanged {
				t.Fatal(err)
			}
		}
	}
	writes := 0
	for _, a := range c.herald.Actions()[before:] {
		if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
			writes++
		}
	}
	// The writers' cache follows the API, as their informer would.
	list, err := c.herald.HeraldV1alpha1().SpeakerStatuses().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := heraldlisters.NewSpeakerStatusLister(c.records).List(labels.Everything())
	for _, o := range old {
		_ = c.records.Delete(o)
	}
	for i := range list.Items {
		_ = c.records.Add(&list.Items[i])
	}
	return writes
}

// TestStatusWritesOnANodeDeath measures the SpeakerStatus writes one
// node's death causes, in simulated clusters of 10 and 100 nodes with the
// same 300 layer-2 Services: only the nodes that take the dead node's
// addresses over rewrite their records (plus, outside this test, the
// first live speaker marking the dead node's record), so the count
// follows the dead node's addresses, not the number of nodes. Every
// writer writes at most once a second, and all these writes fall in the
// first second, so the count is also the writes per second the death
// causes. Run with -v to see the figures.
func TestStatusWritesOnANodeDeath(t *testing.T) {
	model := testModel([]*v1alpha1.L2Advertisement{l2Adv("all")})
	var services []decide.Service
	a := netip.MustParseAddr("2001:db8:1::1:0")
	for i := range 300 {
		a = a.Next()
		services = append(services, decide.Service{
			Key: decide.ServiceKey{Namespace: "default", Name: fmt.Sprintf("svc-%03d", i)}, Addresses: []config.ClaimedAddress{{Addr: a, Pool: "lan"}},
			TrafficPolicy: decide.TrafficPolicyCluster, EndpointsV6: []decide.Endpoint{{Ready: true, Serving: true}},
		})
	}
	for _, n := range []int{10, 100} {
		c := newStatusCluster(t, n)
		c.round(t, model, services, nil)
		dead := map[string]bool{c.names[n/2]: true}
		owned := 0
		for _, s := range services {
			if w, _ := decide.AnnouncingNode(s.Addresses[0].Addr, c.names); w == c.names[n/2] {
				owned++
			}
		}
		writes := c.round(t, model, services, dead)
		t.Logf("%d nodes, 300 Services: the dead node announced %d addresses; %d SpeakerStatus writes (in the first second) on its death", n, owned, writes)
		if writes > owned {
			t.Errorf("%d nodes: %d writes on one node's death, want at most one per address it announced (%d)", n, writes, owned)
		}
	}
}
