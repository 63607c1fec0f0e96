package soak

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

var addrEq = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in       string
		from, to string
	}{
		{"198.51.100.128/26", "198.51.100.128", "198.51.100.191"},
		{"198.51.100.7/32", "198.51.100.7", "198.51.100.7"},
		{"2001:db8:1::1:0/112", "2001:db8:1::1:0", "2001:db8:1::1:ffff"},
		{"2001:db8:200::/124", "2001:db8:200::", "2001:db8:200::f"},
		{"198.51.100.128-198.51.100.131", "198.51.100.128", "198.51.100.131"},
	} {
		r, ok := parseRange(tc.in)
		want := Range{netip.MustParseAddr(tc.from), netip.MustParseAddr(tc.to)}
		if !ok || r != want {
			t.Errorf("parseRange(%q) = %v, %v; want %v", tc.in, r, ok, want)
		}
	}
	if _, ok := parseRange("nonsense"); ok {
		t.Errorf("parseRange(nonsense) succeeded")
	}
}

func TestPoolOf(t *testing.T) {
	p := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 3},
		Spec: v1alpha1.IPPoolSpec{Addresses: []string{"198.51.100.128-198.51.100.131"},
			ServiceAllocation: &v1alpha1.ServiceAllocation{Namespaces: []string{"a"}},
			AllowExternalIPs: &v1alpha1.ExternalIPAllowance{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"ext": "yes"}}}},
		Status: v1alpha1.IPPoolStatus{ObservedGeneration: 3, IPv4: &v1alpha1.AddressCounts{Total: "4", Used: "2", Free: "2"},
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionAddressesOutsidePool, Status: metav1.ConditionTrue,
				Message: "2 addresses held by Services lie outside the pool's usable addresses since an edit; the Services keep them, and nothing new is allocated there: 198.51.100.140 (a/x, removed), 2001:db8:1::1:9 (a/y, removed)."}}},
	}
	got := PoolOf(p, map[string]labels.Set{"a": {}, "b": {"ext": "yes"}})
	want := Pool{Name: "p", Ranges: []Range{{netip.MustParseAddr("198.51.100.128"), netip.MustParseAddr("198.51.100.131")}},
		AdmitsLB: map[string]bool{"a": true, "b": false}, AdmitsExternal: map[string]bool{"a": false, "b": true},
		Current: true, Outside: []netip.Addr{netip.MustParseAddr("198.51.100.140"), netip.MustParseAddr("2001:db8:1::1:9")},
		Used4: 2}
	if diff := cmp.Diff(want, got, addrEq); diff != "" {
		t.Errorf("PoolOf (-want +got):\n%s", diff)
	}
}

func TestServiceOf(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x", UID: "u",
			Annotations: map[string]string{config.AnnotationSharingKey: "k", AsksAnnotation: "2", config.AnnotationPool: "Not A Pool"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports:       []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
			ExternalIPs: []string{"198.51.100.177", "198.51.100.178"}},
		Status: corev1.ServiceStatus{
			LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "198.51.100.130"}}},
			Conditions: []metav1.Condition{
				{Type: config.ConditionAddressAllocated, Status: metav1.ConditionTrue, Message: `Allocated 198.51.100.130 from IPPool "p".`},
				{Type: config.ConditionExternalIPsAccepted, Status: metav1.ConditionTrue, Message: `Accepted 198.51.100.177 from IPPool "ext".`},
			}},
	}
	got := ServiceOf(svc)
	a := netip.MustParseAddr
	want := Service{Namespace: "a", Name: "x", UID: "u", Local: true, SharingKey: "k", Frozen: true, Asks: "2",
		Ports:                 []Port{{"TCP", 80}},
		Held:                  []Holding{{Addr: a("198.51.100.130"), Pool: "p"}, {Addr: a("198.51.100.177"), External: true, Pool: "ext"}},
		UnacceptedExternalIPs: []netip.Addr{a("198.51.100.178")}}
	if diff := cmp.Diff(want, got, addrEq); diff != "" {
		t.Errorf("ServiceOf (-want +got):\n%s", diff)
	}
}

func TestAdvertisedNodes(t *testing.T) {
	names := []string{"node1", "node2", "node3"}
	ls := []labels.Set{{"kubernetes.io/hostname": "node1"}, {"kubernetes.io/hostname": "node2", "edge": "yes"}, {"kubernetes.io/hostname": "node3"}}
	notIn := func(n string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "kubernetes.io/hostname", Operator: metav1.LabelSelectorOpNotIn, Values: []string{n}}}}
	}
	ad := func(sels ...metav1.LabelSelector) v1alpha1.L2Advertisement {
		return v1alpha1.L2Advertisement{Spec: v1alpha1.L2AdvertisementSpec{NodeSelectors: sels}}
	}
	for _, tc := range []struct {
		name string
		ads  []v1alpha1.L2Advertisement
		want []string
	}{
		{"no selector: every node", []v1alpha1.L2Advertisement{ad()}, nil},
		{"every node but node3", []v1alpha1.L2Advertisement{ad(notIn("node3"))}, []string{"node1", "node2"}},
		{"by label", []v1alpha1.L2Advertisement{ad(metav1.LabelSelector{MatchLabels: map[string]string{"edge": "yes"}})}, []string{"node2"}},
		{"one of two ads without selector", []v1alpha1.L2Advertisement{ad(notIn("node1")), ad()}, nil},
		{"no advertisement: no node", nil, []string{}},
	} {
		if got := AdvertisedNodes(tc.ads, names, ls); !cmp.Equal(got, tc.want) {
			t.Errorf("%s: AdvertisedNodes = %#v, want %#v", tc.name, got, tc.want)
		}
	}
}

func TestHeldOrAsked(t *testing.T) {
	a := netip.MustParseAddr
	svcs := []Service{
		{Name: "x", Held: []Holding{{Addr: a("198.51.100.130")}}},
		{Name: "y", UnacceptedExternalIPs: []netip.Addr{a("198.51.100.176")}},
		{Name: "z"},
	}
	got := heldOrAsked(svcs)
	want := map[netip.Addr]bool{a("198.51.100.130"): true, a("198.51.100.176"): true}
	if !cmp.Equal(got, want, addrEq) {
		t.Errorf("heldOrAsked = %v, want %v", got, want)
	}
}
