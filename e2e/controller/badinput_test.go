package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
)

// TestBadInput gives the controller each kind of bad input the issue lists.
// Each gets a Warning event naming the problem and the same reason in the
// Service's condition; no other Service's address changes, and the
// controller keeps running.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	const ns, otherNS = "bad", "bad-other"
	e.namespace(t, ns, nil)
	e.namespace(t, otherNS, nil)
	e.createPool(t, "open", []string{"198.51.100.0/29", "2001:db8:20::/125"})
	e.createPool(t, "tiny", []string{"203.0.113.1/32"}, noAutoAssign)
	e.createPool(t, "reserved", []string{"203.0.113.8/29"}, forNamespaces(otherNS))
	r := e.startController(t, nil)

	// Bystanders hold addresses throughout; they must never move.
	bystanders := map[string]string{}
	for _, name := range []string{"by-1", "by-2"} {
		e.createService(t, ns, name)
		bystanders[name] = e.waitAnyIngress(t, ns, name, 1)[0]
	}

	warns := func(t *testing.T, name, reason string, contains ...string) {
		t.Helper()
		e.waitCondition(t, ns, name, config.ConditionAddressAllocated, metav1.ConditionFalse, reason)
		e.waitEvent(t, ns, name, corev1.EventTypeWarning, reason, contains...)
		if s := e.getService(t, ns, name); len(s.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("refused Service got ingress %v", ingressIPs(s))
		}
	}

	t.Run("unparsable address in an annotation", func(t *testing.T) {
		e.createService(t, ns, "unparsable", annotate("herald.dev/addresses", "198.51.100.300"))
		warns(t, "unparsable", controller.ReasonInvalidAnnotation, "herald.dev/addresses", "198.51.100.300")
	})
	t.Run("address of the wrong family", func(t *testing.T) {
		e.createService(t, ns, "wrong-family", annotate("herald.dev/addresses", "2001:db8:20::3"))
		warns(t, "wrong-family", controller.ReasonWrongAddressFamily, "2001:db8:20::3", "IPv4 only")
	})
	t.Run("address outside every pool", func(t *testing.T) {
		e.createService(t, ns, "outside", withLBIP("203.0.113.100"))
		warns(t, "outside", controller.ReasonAddressNotInAnyPool, "203.0.113.100")
	})
	t.Run("pool that does not exist", func(t *testing.T) {
		e.createService(t, ns, "no-pool", annotate("herald.dev/pool", "nonexistent"))
		warns(t, "no-pool", controller.ReasonPoolNotFound, `"nonexistent"`)
	})
	t.Run("pool the namespace may not use", func(t *testing.T) {
		e.createService(t, ns, "forbidden", annotate("herald.dev/pool", "reserved"))
		warns(t, "forbidden", controller.ReasonPoolNotAllowed, `"reserved"`, ns)
	})
	t.Run("the same address requested by two Services", func(t *testing.T) {
		e.createService(t, ns, "older", annotate("herald.dev/addresses", "198.51.100.6"))
		e.waitIngress(t, ns, "older", "198.51.100.6")
		e.createService(t, ns, "younger", annotate("herald.dev/addresses", "198.51.100.6"))
		warns(t, "younger", controller.ReasonAddressInUse, "198.51.100.6", ns+"/older")
		// The younger gets it when the older lets go.
		e.deleteService(t, ns, "older")
		e.waitIngress(t, ns, "younger", "198.51.100.6")
		e.waitEvent(t, ns, "younger", corev1.EventTypeNormal, controller.ReasonAllocated, "198.51.100.6")
	})
	t.Run("a sharing key with overlapping ports", func(t *testing.T) {
		key := annotate("herald.dev/sharing-key", "shared", "herald.dev/addresses", "198.51.100.7")
		e.createService(t, ns, "share-a", key, withPorts(80, 443))
		e.waitIngress(t, ns, "share-a", "198.51.100.7")
		e.createService(t, ns, "share-b", key, withPorts(8080))
		e.waitIngress(t, ns, "share-b", "198.51.100.7")
		e.createService(t, ns, "share-c", key, withPorts(443))
		warns(t, "share-c", controller.ReasonSharingRefused, "198.51.100.7", "TCP/443")
	})
	t.Run("an exhausted pool", func(t *testing.T) {
		e.createService(t, ns, "tiny-1", annotate("herald.dev/pool", "tiny"))
		e.waitIngress(t, ns, "tiny-1", "203.0.113.1")
		e.createService(t, ns, "tiny-2", annotate("herald.dev/pool", "tiny"))
		warns(t, "tiny-2", controller.ReasonPoolExhausted, `"tiny"`, "no free IPv4 address")
	})
	t.Run("spec.loadBalancerIP and the annotation disagree", func(t *testing.T) {
		e.createService(t, ns, "disagree", annotate("herald.dev/addresses", "198.51.100.1"), withLBIP("198.51.100.2"))
		warns(t, "disagree", controller.ReasonLoadBalancerIPMismatch, "198.51.100.2", "198.51.100.1")
		// And on a Service that has an address, nothing changes either.
		e.createService(t, ns, "agreed", annotate("herald.dev/addresses", "198.51.100.3"))
		e.waitIngress(t, ns, "agreed", "198.51.100.3")
		e.updateService(t, ns, "agreed", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.4" })
		c := e.waitCondition(t, ns, "agreed", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonLoadBalancerIPMismatch)
		if !strings.Contains(c.Message, "keeps this address") {
			t.Errorf("condition message %q does not say the address is kept", c.Message)
		}
		e.waitEvent(t, ns, "agreed", corev1.EventTypeWarning, controller.ReasonLoadBalancerIPMismatch, "198.51.100.4")
		if got := ingressIPs(e.getService(t, ns, "agreed")); len(got) != 1 || got[0] != "198.51.100.3" {
			t.Errorf("ingress %v, want the kept 198.51.100.3", got)
		}
	})
	t.Run("malformed annotations do not crash the controller", func(t *testing.T) {
		long := strings.Repeat("198.51.100.1,", 2000)
		e.createService(t, ns, "huge", annotate("herald.dev/addresses", long, "herald.dev/sharing-key", "ü", "herald.dev/pool", "",
			"herald.dev/allocate-external-ip", "maybe"))
		warns(t, "huge", controller.ReasonInvalidAnnotation, "herald.dev/addresses", "herald.dev/sharing-key")
		e.createService(t, ns, "no-ports", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Ports = nil
			s.Spec.ExternalIPs = []string{"203.0.113.250"}
		})
		e.waitCondition(t, ns, "no-ports", config.ConditionExternalIPsAccepted, metav1.ConditionFalse, controller.ReasonExternalIPNotInAnyPool)
		select {
		case err := <-r.done:
			t.Fatalf("the controller stopped: %v", err)
		default:
		}
		e.createService(t, ns, "still-served")
		e.waitAnyIngress(t, ns, "still-served", 1)
	})

	for name, addr := range bystanders {
		if got := ingressIPs(e.getService(t, ns, name)); len(got) != 1 || got[0] != addr {
			t.Errorf("bystander %s moved from %s to %v", name, addr, got)
		}
	}
}
