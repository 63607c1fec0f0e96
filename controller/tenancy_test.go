package controller

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// TestCoreCrossNamespaceRefusalsNameNobody: a Service of another namespace
// that asks for a tenant's address by key and address gets nothing, and the
// same words whatever key it sets: nothing of the tenant's Service shows.
func TestCoreCrossNamespaceRefusalsNameNobody(t *testing.T) {
	c := NewCore("")
	if err := c.SetModel(model(t, ippool("p", []string{"198.51.100.0/29"}))); err != nil {
		t.Fatal(err)
	}
	key := func(k string) svcOpt { return annotate(config.AnnotationSharingKey, k) }
	allow := func(ns string) svcOpt { return annotate(config.AnnotationSharingCrossNamespace, ns) }
	shop := service("tenant-a", "shop", withPorts(8443), key("k1"), allow("tenant-b"), withLBIP("198.51.100.3"))
	if d := c.Ensure(shop).LoadBalancer; d.Condition.Reason != ReasonAllocated {
		t.Fatalf("shop: %s: %s", d.Condition.Reason, d.Condition.Message)
	}
	var messages []string
	for _, opts := range [][]svcOpt{
		{key("k1")},                    // tenant-a's key, no opt-in
		{key("k1"), allow("tenant-c")}, // an opt-in for another namespace
		{key("k1"), withPorts(8443)},   // tenant-a's port too
		{key("guess")},                 // another key
		{},                             // no key
	} {
		attacker := service("tenant-b", "attacker", append([]svcOpt{withPorts(9000), withLBIP("198.51.100.3")}, opts...)...)
		d := c.Ensure(attacker).LoadBalancer
		if len(d.Addresses) != 0 || d.Condition.Reason != ReasonAddressInUse || d.Condition.Status != metav1.ConditionFalse {
			t.Fatalf("attacker got %v, %s", d.Addresses, d.Condition.Reason)
		}
		for _, secret := range []string{"shop", "tenant-a", "k1", "8443"} {
			if strings.Contains(d.Condition.Message, secret) {
				t.Errorf("refusal %q reveals %q", d.Condition.Message, secret)
			}
		}
		messages = append(messages, d.Condition.Message)
	}
	for _, m := range messages[1:] {
		if m != messages[0] {
			t.Errorf("refusals differ with the key:\n%s\n%s", messages[0], m)
		}
	}
	blog := service("tenant-b", "blog", withPorts(443), key("k1"), allow("tenant-a"))
	if d := c.Ensure(blog).LoadBalancer; d.Condition.Reason != ReasonAllocated || len(d.Addresses) != 1 || d.Addresses[0] != netip.MustParseAddr("198.51.100.3") {
		t.Fatalf("blog, opted in on both sides: %v %s: %s", d.Addresses, d.Condition.Reason, d.Condition.Message)
	}
}

// TestImportClaimsKeepsCrossNamespaceSharers: a claim listing Services of two
// namespaces that share under one key without opting in (written before
// namespaces had to) is imported as it is; each Service keeps the address
// and is told which annotation to add, naming only namespaces.
func TestImportClaimsKeepsCrossNamespaceSharers(t *testing.T) {
	c := NewCore("")
	if err := c.SetModel(model(t, ippool("p", []string{"198.51.100.0/29"}))); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("198.51.100.5")
	ingress := func(s *corev1.Service) { s.Status.LoadBalancer.Ingress = IngressFor([]netip.Addr{addr}) }
	shop := service("tenant-a", "shop", withPorts(80), annotate(config.AnnotationSharingKey, "k1"), ingress)
	blog := service("tenant-b", "blog", withPorts(443), annotate(config.AnnotationSharingKey, "k1"), ingress)
	holder := func(s *corev1.Service) config.ClaimHolder {
		return config.ClaimHolder{Namespace: s.Namespace, Name: s.Name, UID: string(s.UID), SharingKey: "k1",
			Ports: []v1alpha1.HolderPort{{Protocol: "TCP", Port: s.Spec.Ports[0].Port}}}
	}
	rep := c.ImportClaims([]config.Claim{{Addr: addr, Pool: "p", Holders: []config.ClaimHolder{holder(shop), holder(blog)}}},
		[]*corev1.Service{shop, blog})
	if len(rep.Conflicts) != 0 || len(rep.Displaced) != 0 || rep.Allocations != 2 {
		t.Fatalf("import: %+v", rep)
	}
	for _, tc := range []struct {
		svc       *corev1.Service
		want, not string
	}{
		{blog, `add the annotation herald.dev/sharing-cross-namespace: "tenant-a" to this Service`, "shop"},
		{shop, `add the annotation herald.dev/sharing-cross-namespace: "tenant-b" to this Service`, "blog"},
	} {
		d := c.Ensure(tc.svc).LoadBalancer
		if len(d.Addresses) != 1 || d.Addresses[0] != addr || d.Condition.Status != metav1.ConditionTrue ||
			d.Condition.Reason != ReasonCrossNamespaceSharingNotOptedIn {
			t.Fatalf("%s: %v %s %s: %s", tc.svc.Name, d.Addresses, d.Condition.Status, d.Condition.Reason, d.Condition.Message)
		}
		if !strings.Contains(d.Condition.Message, tc.want) || strings.Contains(d.Condition.Message, tc.not) {
			t.Errorf("%s: message %q: want %q, and not %q", tc.svc.Name, d.Condition.Message, tc.want, tc.not)
		}
		if g, ok := config.ParseGrant(d.Condition.Message); !ok || len(g.Addresses) != 1 || g.Addresses[0] != addr {
			t.Errorf("%s: message %q does not record the grant", tc.svc.Name, d.Condition.Message)
		}
	}
	for _, s := range []*corev1.Service{shop, blog} {
		other := map[string]string{"tenant-a": "tenant-b", "tenant-b": "tenant-a"}[s.Namespace]
		annotate(config.AnnotationSharingCrossNamespace, other)(s)
	}
	c.Ensure(shop)
	for _, s := range []*corev1.Service{blog, shop} {
		if d := c.Ensure(s).LoadBalancer; d.Condition.Reason != ReasonAllocated || len(d.Addresses) != 1 || d.Addresses[0] != addr {
			t.Errorf("%s after both opted in: %v %s: %s", s.Name, d.Addresses, d.Condition.Reason, d.Condition.Message)
		}
	}
}
