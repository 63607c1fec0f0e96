package decide

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// BenchmarkCompute computes one node's desired state for 10,000 Services of
// 5 endpoints each over 3, 100 and 1,000 nodes (benchInputs): the work of
// one reconcile in a large cluster.
func BenchmarkCompute(b *testing.B) {
	for _, nodes := range []int{3, 100, 1000} {
		b.Run(fmt.Sprintf("services=10000/nodes=%d", nodes), func(b *testing.B) {
			in := benchInputs(b, nodes)
			b.ResetTimer()
			for b.Loop() {
				Compute(in)
			}
		})
	}
}

// BenchmarkIncrementalMembership is one node's work when another node's
// speaker leaves or joins (each iteration flips one node, in turn), with
// BenchmarkCompute's 10,000 Services: the reconcile every speaker runs on
// a membership change. It checks that the flips take the incremental path.
func BenchmarkIncrementalMembership(b *testing.B) {
	for _, nodes := range []int{100, 1000} {
		b.Run(fmt.Sprintf("services=10000/nodes=%d", nodes), func(b *testing.B) {
			in := benchInputs(b, nodes)
			inc := NewIncremental()
			inc.Compute(in)
			i := 0
			b.ResetTimer()
			for b.Loop() {
				in.Nodes = slices.Clone(in.Nodes)
				n := 1 + i%(nodes-1) // never self, node1
				in.Nodes[n].State.SpeakerAlive = !in.Nodes[n].State.SpeakerAlive
				i++
				inc.Compute(in)
				if inc.RecomputedAll() {
					b.Fatal("a membership change recomputed every address")
				}
			}
		})
	}
}

// benchInputs returns one node's inputs for 10,000 Cluster Services of 5
// endpoints each over the given number of nodes. Every address is elected
// (the Services claim the model's pool; a claim in a pool the model lacks
// is skipped, which an earlier version of BenchmarkCompute timed instead),
// which it checks.
func benchInputs(b *testing.B, nodes int) Inputs {
	b.Helper()
	model := config.Build(config.Snapshot{
		IPPools:          []*v1alpha1.IPPool{{ObjectMeta: metav1.ObjectMeta{Name: "v6"}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{"2001:db8:1::1:0/112"}}}},
		L2Advertisements: []*v1alpha1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "all"}}},
	})
	var names []string
	for i := range nodes {
		names = append(names, fmt.Sprintf("node%d", i+1))
	}
	in := Inputs{Self: "node1", Model: model, Nodes: aliveNodes(names...), Interfaces: testNodeInterfaces}
	base := netip.MustParseAddr("2001:db8:1::1:0")
	a := base
	for i := range 10000 {
		a = a.Next()
		var eps []Endpoint
		for j := range 5 {
			eps = append(eps, ready(names[(i+j)%nodes]))
		}
		in.Services = append(in.Services, claimedSvc(fmt.Sprintf("s%05d", i), TrafficPolicyCluster, inPool("v6", a), nil, eps))
	}
	if d := Compute(in); len(d.Owners) != 10000 || d.Owners[base.Next()] == "" || len(d.Layer2) == 0 {
		b.Fatalf("%d addresses elected, %d announced here: the benchmark would time no election", len(d.Owners), len(d.Layer2))
	}
	return in
}
