package migrate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestKubeVIP: the pools of kube-vip's ConfigMap, by namespace then global,
// and Services that share an address by naming it get a common key.
func TestKubeVIP(t *testing.T) {
	cm := &corev1.ConfigMap{Data: map[string]string{
		"cidr-global": "198.51.100.0/28",
		"range-shop":  "198.51.100.16-198.51.100.20, 198.51.100.24-198.51.100.25",
		"other":       "x",
	}}
	svcs := []*corev1.Service{
		lbSvc("shop", "web", []string{"198.51.100.17"}, ann("kube-vip.io/loadbalancerIPs", "198.51.100.17"), ann("kube-vip.io/vipHost", "node1")),
		lbSvc("shop", "dns", []string{"198.51.100.3"}, port(53)),
		lbSvc("shop", "dns2", []string{"198.51.100.3"}, port(54)),
		lbSvc("shop", "egress", []string{"198.51.100.4"}, ann("kube-vip.io/egress", "true")),
	}
	p := KubeVIP(KubeVIPInput{ConfigMap: cm, Services: svcs})
	var pools []string
	for _, pl := range p.IPPools {
		pools = append(pools, pl.Name+"="+strings.Join(pl.Spec.Addresses, ",")+" ns="+strings.Join(pl.Spec.ServiceAllocation.Namespaces, ","))
	}
	if diff := cmp.Diff([]string{"kube-vip-global=198.51.100.0/28 ns=", "kube-vip-shop=198.51.100.16-198.51.100.20,198.51.100.24-198.51.100.25 ns=shop"}, pools); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	for _, s := range p.Services {
		got[s.Name] = annotationsText(s.Annotations) + " " + strings.Join(s.Problems, ";")
	}
	want := map[string]string{
		"web":    "herald.dev/addresses=198.51.100.17 ",
		"dns":    "herald.dev/sharing-key=shared-198-51-100-3 ",
		"dns2":   "herald.dev/sharing-key=shared-198-51-100-3 ",
		"egress": " ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Services (-want +got):\n%s", diff)
	}
	var dropped []string
	for _, d := range p.Dropped {
		dropped = append(dropped, d.Object+" "+d.Field)
	}
	if diff := cmp.Diff([]string{"ConfigMap/kube-system/kubevip data.other", "Service/shop/egress kube-vip.io/egress"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if p := KubeVIP(KubeVIPInput{}); len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "no kube-vip ConfigMap") {
		t.Errorf("without the ConfigMap: problems %q", p.Problems)
	}
}

func cilium(kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2alpha1", "kind": kind, "metadata": map[string]any{"name": name}, "spec": spec,
	}}
}

// TestCilium: pools with blocks and a namespace selector, an L2 policy with
// interface names and regular expressions, the Services' annotations, and
// what is dropped.
func TestCilium(t *testing.T) {
	objs := []*unstructured.Unstructured{
		cilium(KindCiliumLoadBalancerIPPool, "blue", map[string]any{
			"blocks":            []any{map[string]any{"cidr": "198.51.100.0/28"}, map[string]any{"start": "198.51.100.20", "stop": "198.51.100.22"}},
			"serviceSelector":   map[string]any{"matchLabels": map[string]any{"io.kubernetes.service.namespace": "shop", "color": "blue"}},
			"allowFirstLastIPs": "No",
		}),
		cilium(KindCiliumL2AnnouncementPolicy, "l2", map[string]any{
			"nodeSelector":    map[string]any{"matchLabels": map[string]any{"rack": "a"}},
			"interfaces":      []any{"eth0", "^eth[1-9]+"},
			"loadBalancerIPs": true,
		}),
		cilium(KindCiliumBGPPeeringPolicy, "bgp", map[string]any{}),
	}
	svcs := []*corev1.Service{lbSvc("shop", "web", []string{"198.51.100.21"}, ann("lbipam.cilium.io/ips", "198.51.100.21"), ann("lbipam.cilium.io/sharing-key", "k"))}
	p := Cilium(CiliumInput{Objects: objs, Services: svcs})
	if len(p.Problems) > 0 {
		t.Fatalf("problems %q", p.Problems)
	}
	pool := p.IPPools[0].Spec
	if diff := cmp.Diff([]string{"198.51.100.0/28", "198.51.100.20-198.51.100.22"}, pool.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"shop"}, pool.ServiceAllocation.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&metav1.LabelSelector{MatchLabels: map[string]string{"color": "blue"}}, pool.ServiceAllocation.ServiceSelector); diff != "" {
		t.Errorf("serviceSelector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0"}, p.L2Advertisements[0].Spec.Interfaces); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
	var dropped []string
	for _, d := range p.Dropped {
		dropped = append(dropped, d.Object+" "+d.Field)
	}
	want := []string{
		"CiliumBGPPeeringPolicy/bgp (whole object)",
		"CiliumL2AnnouncementPolicy/l2 spec.interfaces",
		"CiliumLoadBalancerIPPool/blue spec.allowFirstLastIPs",
	}
	if diff := cmp.Diff(want, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	s := p.Services[0]
	if got := annotationsText(s.Annotations); got != "herald.dev/addresses=198.51.100.21 herald.dev/sharing-key=k" || len(s.After) != 1 || s.Pools[0] != "blue" {
		t.Errorf("Service: annotations %q, after %v, pools %v, problems %q", got, s.After, s.Pools, s.Problems)
	}
}
