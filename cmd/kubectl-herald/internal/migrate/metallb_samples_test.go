package migrate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// carriedTo says where Herald carries each MetalLB field: kind -> MetalLB
// path under spec -> the Herald paths under spec (any one set counts).
// The test keeps this table apart from the converters on purpose: a field
// the converters forget to report and do not carry shows up here.
var carriedTo = map[string]map[string][]string{
	KindIPAddressPool: {
		"addresses": {"addresses"}, "autoAssign": {"autoAssign"}, "avoidBuggyIPs": {"avoidBuggyIPs"},
		"serviceAllocation.priority": {"serviceAllocation.priority"}, "serviceAllocation.namespaces": {"serviceAllocation.namespaces"},
		"serviceAllocation.namespaceSelectors": {"serviceAllocation.namespaceSelector"},
		"serviceAllocation.serviceSelectors":   {"serviceAllocation.serviceSelector"},
	},
	KindL2Advertisement: {
		"ipAddressPools": {"ipPools"}, "ipAddressPoolSelectors": {"ipPoolSelector", "ipPools"},
		"nodeSelectors": {"nodeSelectors"}, "interfaces": {"interfaces"},
	},
	KindBGPAdvertisement: {
		"ipAddressPools": {"ipPools"}, "ipAddressPoolSelectors": {"ipPoolSelector", "ipPools"},
		"nodeSelectors": {"nodeSelectors"}, "peers": {"peers"}, "aggregationLength": {"aggregationLength"},
		"aggregationLengthV6": {"aggregationLengthV6"}, "localPref": {"localPref"},
		"communities": {"communities", "largeCommunities"},
	},
	KindBGPPeer: {
		"myASN": {"myASN"}, "peerASN": {"peerASN"}, "peerAddress": {"peerAddress"}, "interface": {"interface"}, "sourceAddress": {"sourceAddress"},
		"peerPort": {"port"}, "holdTime": {"holdTime"}, "keepaliveTime": {"keepaliveTime"}, "password": {"password"},
		"passwordSecret": {"passwordSecretRef"}, "ebgpMultiHop": {"ebgpMultihop"}, "nodeSelectors": {"nodeSelectors"},
		"enableGracefulRestart": {"gracefulRestart"}, "bfdProfile": {"bfd"},
	},
	// A BFDProfile is carried into the BGPPeers that name it.
	KindBFDProfile: {"receiveInterval": {"bfd.minRx"}, "transmitInterval": {"bfd.minTx"}, "detectMultiplier": {"bfd.multiplier"}},
	// A Community's aliases are written out in the BGPAdvertisements that use them.
	KindCommunity: {"communities": {"communities", "largeCommunities"}},
}

// nested are the MetalLB fields whose own fields are accounted one by one.
var nested = map[string]bool{"serviceAllocation": true}

// TestMetalLBSamples migrates each of MetalLB's own sample configurations
// and checks that every field of every MetalLB object is either carried
// (set in the Herald object it became) or reported as dropped, with a
// reason; and that the samples need nothing Herald refuses.
func TestMetalLBSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/metallb-configsamples/*.yaml")
	if err != nil || len(files) < 15 {
		t.Fatalf("the samples: %v, %d files (want MetalLB's 18)", err, len(files))
	}
	// wantDropped are the samples' settings Herald cannot carry.
	wantDropped := map[string][]string{
		"bgppeer_with_vrf.yaml":             {"BGPPeer/metallb-system/peer spec.vrf"},
		"bgppeer_with_session_options.yaml": {"BGPPeer/metallb-system/peer spec.connectTime"},
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			objs, svcs, err := Decode(file, f)
			if err != nil {
				t.Fatal(err)
			}
			plan := MetalLB(MetalLBInput{Objects: objs, Services: svcs})
			if len(plan.Problems) > 0 {
				t.Errorf("problems: %q", plan.Problems)
			}
			var dropped []string
			for _, d := range plan.Dropped {
				if d.Reason == "" {
					t.Errorf("%s %s dropped without a reason", d.Object, d.Field)
				}
				dropped = append(dropped, d.Object+" "+d.Field)
			}
			if diff := cmp.Diff(wantDropped[filepath.Base(file)], dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			for _, o := range objs {
				if o.GroupVersionKind().Group != MetalLBGroup {
					continue
				}
				for _, path := range leafPaths(o) {
					if slices.Contains(dropped, ref(o)+" spec."+path) {
						continue
					}
					targets, ok := carriedTo[o.GetKind()][path]
					if !ok {
						t.Errorf("%s spec.%s is neither carried nor reported as dropped", ref(o), path)
						continue
					}
					if !setInHerald(t, plan, o, targets) {
						t.Errorf("%s spec.%s: none of spec.%s is set in what it became, and it is not reported as dropped", ref(o), path, strings.Join(targets, ", spec."))
					}
				}
			}
		})
	}
}

// leafPaths lists the fields set in o's spec, descending into nested ones.
func leafPaths(o *unstructured.Unstructured) []string {
	spec, _, _ := unstructured.NestedMap(o.Object, "spec")
	var out []string
	for k, v := range spec {
		if m, ok := v.(map[string]any); ok && nested[k] {
			for k2 := range m {
				out = append(out, k+"."+k2)
			}
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// setInHerald reports whether one of targets is set in a Herald object o
// became.
func setInHerald(t *testing.T, plan *Plan, o *unstructured.Unstructured, targets []string) bool {
	t.Helper()
	var candidates []runtime.Object
	switch o.GetKind() {
	case KindIPAddressPool:
		for _, h := range plan.IPPools {
			if h.Name == o.GetName() {
				candidates = append(candidates, h)
			}
		}
	case KindL2Advertisement:
		for _, h := range plan.L2Advertisements {
			if h.Name == o.GetName() {
				candidates = append(candidates, h)
			}
		}
	case KindBGPAdvertisement, KindCommunity:
		for _, h := range plan.BGPAdvertisements {
			if h.Name == o.GetName() || o.GetKind() == KindCommunity {
				candidates = append(candidates, h)
			}
		}
	case KindBGPPeer, KindBFDProfile:
		for _, h := range plan.BGPPeers {
			if h.Name == o.GetName() || o.GetKind() == KindBFDProfile {
				candidates = append(candidates, h)
			}
		}
	}
	for _, c := range candidates {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range targets {
			v, found, _ := unstructured.NestedFieldNoCopy(u, append([]string{"spec"}, strings.Split(target, ".")...)...)
			if found && v != nil {
				return true
			}
		}
	}
	return false
}
