package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// L2Advertisement is a validated L2Advertisement: the pools it announces at
// layer 2, the nodes that may announce them, and on which interfaces.
type L2Advertisement struct {
	// Name is the L2Advertisement's name.
	Name string
	// Pools are the names of the existing pools it announces, sorted.
	Pools []string
	// Interfaces are the interfaces to announce on, sorted; empty means the
	// speaker's default choice.
	Interfaces []string

	nodes nodeSelectors
}

// SelectsNode reports whether a node with these labels may announce for this
// advertisement. Its cost is that of matching the node selectors.
func (a L2Advertisement) SelectsNode(nodeLabels map[string]string) bool {
	return a.nodes.matches(nodeLabels)
}

func (a L2Advertisement) clone() L2Advertisement {
	a.Pools = slices.Clone(a.Pools)
	a.Interfaces = slices.Clone(a.Interfaces)
	return a
}

// maxInterfaceName is the longest Linux interface name (IFNAMSIZ - 1).
const maxInterfaceName = 15

// buildL2Advertisements validates the L2Advertisements against the pools.
func buildL2Advertisements(in []*v1alpha1.L2Advertisement, pools []pool, problems problemSet) []L2Advertisement {
	objs := usableObjects(in, func(a *v1alpha1.L2Advertisement) (string, time.Time) { return a.Name, a.CreationTimestamp.Time })
	out := make([]L2Advertisement, 0, len(objs))
	for _, obj := range objs {
		ref := ObjectRef{Kind: KindL2Advertisement, Name: obj.Name}
		spec := obj.Spec
		ad := L2Advertisement{Name: obj.Name}
		ad.Pools = selectPools(ref, spec.IPPools, spec.IPPoolSelector, pools, problems)
		var err error
		if ad.nodes, err = newNodeSelectors(spec.NodeSelectors); err != nil {
			problems.add(ref, notReady(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.%v", err)))
		}
		for i, name := range spec.Interfaces {
			if name == "" || len(name) > maxInterfaceName || strings.ContainsAny(name, "/: \t\n") {
				problems.add(ref, notReady(v1alpha1.ReasonInvalidField, fmt.Sprintf(
					"spec.interfaces[%d] %q is not an interface name: 1 to %d characters without '/', ':' or spaces", i, name, maxInterfaceName)))
			}
		}
		ad.Interfaces = sortedUnique(spec.Interfaces)
		if excluded(ref, problems) {
			continue
		}
		out = append(out, ad)
	}
	slices.SortFunc(out, func(a, b L2Advertisement) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// selectPools resolves an advertisement's ipPools or ipPoolSelector to the
// names of existing pools, sorted. It reports names that match no pool.
func selectPools(ref ObjectRef, names []string, sel *metav1.LabelSelector, pools []pool, problems problemSet) []string {
	if len(names) > 0 && sel != nil {
		problems.add(ref, notReady(v1alpha1.ReasonInvalidField, "spec sets both ipPools and ipPoolSelector: keep one"))
		return nil
	}
	if sel != nil {
		s, err := selector(sel)
		if err != nil {
			problems.add(ref, notReady(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.ipPoolSelector: %v", err)))
			return nil
		}
		var out []string
		for _, p := range pools {
			if s.Matches(labels.Set(p.labels)) {
				out = append(out, p.spec.Name)
			}
		}
		return out
	}
	if len(names) == 0 { // neither: every pool
		out := make([]string, len(pools))
		for i, p := range pools {
			out[i] = p.spec.Name
		}
		return out
	}
	var out []string
	for _, name := range sortedUnique(names) {
		if _, found := findPool(pools, name); !found {
			problems.add(ref, notReady(v1alpha1.ReasonPoolNotFound, fmt.Sprintf(
				"IPPool %q named in spec.ipPools does not exist: create it or remove it from the list", name)))
			continue
		}
		out = append(out, name)
	}
	return out
}

// findPool finds a pool by name in pools sorted by name.
func findPool(pools []pool, name string) (int, bool) {
	return slices.BinarySearchFunc(pools, name, func(p pool, n string) int { return strings.Compare(p.spec.Name, n) })
}

// excluded reports whether ref has a problem that keeps it out of the model:
// any problem on its Ready condition, except names of missing pools or peers,
// which only drop those names.
func excluded(ref ObjectRef, problems problemSet) bool {
	for _, p := range problems[ref] {
		if p.Type == v1alpha1.ConditionReady && p.Reason != v1alpha1.ReasonPoolNotFound && p.Reason != v1alpha1.ReasonPeerNotFound && p.Reason != v1alpha1.ReasonAggregationTooShort {
			return true
		}
	}
	return false
}
