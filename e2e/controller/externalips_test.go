package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

// TestExternalIPs covers spec.externalIPs: claims admitted by a pool's
// allowExternalIPs, refused claims (never accepted, so never announced),
// conflicts between Services, and addresses allocated into spec.externalIPs.
func TestExternalIPs(t *testing.T) {
	e := newEnv(t)
	const ns, other = "ext", "ext-other"
	e.namespace(t, ns, nil)
	e.namespace(t, other, nil)
	e.createPool(t, "lb", []string{"198.51.100.0/28"})
	e.createPool(t, "external", []string{"203.0.113.0/28", "2001:db8:40::/120"}, noAutoAssign, externalIPsFor(ns))
	e.createPool(t, "by-label", []string{"203.0.113.16/28"}, noAutoAssign, func(p *v1alpha1.IPPool) {
		p.Spec.AllowExternalIPs = &v1alpha1.ExternalIPAllowance{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"externals": "yes"}}}
	})
	e.startController(t, nil)

	// accepted waits until the Service's accepted external IPs, as a speaker
	// reads them, are exactly want.
	accepted := func(t *testing.T, namespace, name, reason string, want ...string) {
		t.Helper()
		e.waitCondition(t, namespace, name, config.ConditionExternalIPsAccepted, metav1.ConditionTrue, reason)
		eventually(t, "accepted external IPs", func() (bool, string) {
			got := addrStrings(config.AcceptedExternalIPs(e.getService(t, namespace, name)))
			return slices.Equal(got, want), fmt.Sprint(got)
		})
	}
	refused := func(t *testing.T, namespace, name, reason string, contains ...string) {
		t.Helper()
		e.waitCondition(t, namespace, name, config.ConditionExternalIPsAccepted, metav1.ConditionFalse, reason)
		e.waitEvent(t, namespace, name, corev1.EventTypeWarning, reason, contains...)
		if got := config.AcceptedExternalIPs(e.getService(t, namespace, name)); len(got) != 0 {
			t.Errorf("a refused Service has accepted external IPs %v", got)
		}
	}

	t.Run("a claim the pool allows", func(t *testing.T) {
		e.createService(t, ns, "allowed", clusterIP, withExternalIPs("203.0.113.5"))
		accepted(t, ns, "allowed", controller.ReasonExternalIPsAccepted, "203.0.113.5")
		e.waitEvent(t, ns, "allowed", corev1.EventTypeNormal, controller.ReasonExternalIPsAccepted, "203.0.113.5", `IPPool "external"`)
	})
	t.Run("a claim from a namespace the pool does not allow", func(t *testing.T) {
		e.createService(t, other, "hijack", clusterIP, withExternalIPs("203.0.113.6"))
		refused(t, other, "hijack", controller.ReasonExternalIPNotAllowed, "203.0.113.6", other)
	})
	t.Run("a claim of a load-balancer pool's address", func(t *testing.T) {
		e.createService(t, ns, "lb-address", clusterIP, withExternalIPs("198.51.100.3"))
		refused(t, ns, "lb-address", controller.ReasonExternalIPNotAllowed, `"lb"`)
	})
	t.Run("a claim outside every pool", func(t *testing.T) {
		e.createService(t, ns, "nowhere", clusterIP, withExternalIPs("203.0.113.200"))
		refused(t, ns, "nowhere", controller.ReasonExternalIPNotInAnyPool, "203.0.113.200")
	})
	t.Run("a LoadBalancer Service's external IP", func(t *testing.T) {
		e.createService(t, ns, "lb-and-ext", withExternalIPs("2001:db8:40::9"))
		e.waitAnyIngress(t, ns, "lb-and-ext", 1)
		accepted(t, ns, "lb-and-ext", controller.ReasonExternalIPsAccepted, "2001:db8:40::9")
	})
	t.Run("two Services claim one address: the older keeps it", func(t *testing.T) {
		e.createService(t, ns, "claim-old", clusterIP, withExternalIPs("203.0.113.7"))
		accepted(t, ns, "claim-old", controller.ReasonExternalIPsAccepted, "203.0.113.7")
		e.createService(t, ns, "claim-young", clusterIP, withExternalIPs("203.0.113.7"))
		refused(t, ns, "claim-young", controller.ReasonExternalIPInUse, "203.0.113.7", ns+"/claim-old")
		e.deleteService(t, ns, "claim-old")
		accepted(t, ns, "claim-young", controller.ReasonExternalIPsAccepted, "203.0.113.7")
	})
	t.Run("an address allocated into spec.externalIPs", func(t *testing.T) {
		e.createService(t, ns, "alloc", clusterIP, annotate("herald.dev/allocate-external-ip", "external"))
		eventually(t, "spec.externalIPs written", func() (bool, string) {
			s := e.getService(t, ns, "alloc")
			return len(s.Spec.ExternalIPs) == 1, fmt.Sprint(s.Spec.ExternalIPs)
		})
		ip := e.getService(t, ns, "alloc").Spec.ExternalIPs[0]
		if !netip.MustParsePrefix("203.0.113.0/28").Contains(netip.MustParseAddr(ip)) {
			t.Errorf("allocated external IP %s is not from pool external", ip)
		}
		accepted(t, ns, "alloc", controller.ReasonExternalIPAllocated, ip)
		e.waitEvent(t, ns, "alloc", corev1.EventTypeNormal, controller.ReasonExternalIPAllocated, ip)
		// Only spec.externalIPs was written by the controller's spec update.
		s := e.getService(t, ns, "alloc")
		if s.Spec.Type != corev1.ServiceTypeClusterIP || len(s.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("unexpected spec/status after the allocation: type %s ingress %v", s.Spec.Type, ingressIPs(s))
		}
	})
	t.Run("an allocation the pool does not allow", func(t *testing.T) {
		e.createService(t, other, "alloc-refused", clusterIP, annotate("herald.dev/allocate-external-ip", "external"))
		refused(t, other, "alloc-refused", controller.ReasonExternalIPNotAllowed, `"external"`)
		if s := e.getService(t, other, "alloc-refused"); len(s.Spec.ExternalIPs) != 0 {
			t.Errorf("refused allocation wrote spec.externalIPs %v", s.Spec.ExternalIPs)
		}
	})
	t.Run("a namespace labelled later is allowed then", func(t *testing.T) {
		e.namespace(t, "late-label", nil)
		e.createService(t, "late-label", "claim", clusterIP, withExternalIPs("203.0.113.20"))
		refused(t, "late-label", "claim", controller.ReasonExternalIPNotAllowed, "203.0.113.20")
		ns, err := e.kube.CoreV1().Namespaces().Get(context.Background(), "late-label", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Labels = map[string]string{"externals": "yes"}
		if _, err := e.kube.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		accepted(t, "late-label", "claim", controller.ReasonExternalIPsAccepted, "203.0.113.20")
	})
	t.Run("the pool withdrawing its permission withdraws the claim", func(t *testing.T) {
		e.updatePool(t, "external", func(p *v1alpha1.IPPool) {
			p.Spec.AllowExternalIPs = &v1alpha1.ExternalIPAllowance{Namespaces: []string{other}}
		})
		refused(t, ns, "allowed", controller.ReasonExternalIPNotAllowed, "203.0.113.5")
		// The address is free for a Service the pool now allows.
		e.createService(t, other, "now-allowed", clusterIP, withExternalIPs("203.0.113.5"))
		accepted(t, other, "now-allowed", controller.ReasonExternalIPsAccepted, "203.0.113.5")
	})
}

func addrStrings(addrs []netip.Addr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}
