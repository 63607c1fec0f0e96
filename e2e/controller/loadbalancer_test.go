package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
)

// TestLoadBalancer covers the life of LoadBalancer Services: allocation with
// events and conditions, families, classes, release on deletion and on a
// change of type, and a waiting Service served as soon as capacity appears.
func TestLoadBalancer(t *testing.T) {
	e := newEnv(t)
	const ns = "lb"
	e.namespace(t, ns, nil)
	e.createPool(t, "main", []string{"198.51.100.10-198.51.100.12", "2001:db8:10::10-2001:db8:10::11"})
	// One worker: Services are then reconciled in the order of their
	// events, which "an unchanged Service is not rewritten" relies on.
	e.startController(t, func(c *controller.Config) { c.Workers = 1 })

	t.Run("allocated, with event and condition", func(t *testing.T) {
		e.createService(t, ns, "first")
		svc := e.waitIngress(t, ns, "first", "198.51.100.10")
		if m := svc.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
			t.Errorf("ipMode = %v, want VIP", m)
		}
		c := e.waitCondition(t, ns, "first", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonAllocated)
		g, ok := config.ParseGrant(c.Message)
		if !ok || g.Pool != "main" {
			t.Errorf("condition message %q does not name pool main", c.Message)
		}
		if c.ObservedGeneration != svc.Generation {
			t.Errorf("observedGeneration %d, want %d", c.ObservedGeneration, svc.Generation)
		}
		e.waitEvent(t, ns, "first", corev1.EventTypeNormal, controller.ReasonAllocated, "198.51.100.10", `IPPool "main"`)
	})

	t.Run("an unchanged Service is not rewritten", func(t *testing.T) {
		// Touch the Service without changing what it asks: a label.
		e.updateService(t, ns, "first", func(s *corev1.Service) {
			if s.Labels == nil {
				s.Labels = map[string]string{}
			}
			s.Labels["touched"] = "yes"
		})
		touched := e.getService(t, ns, "first")
		// With one worker, a Service created after the touch is reconciled
		// after it: once it is served, the touch has been seen.
		e.createService(t, ns, "after-touch")
		e.waitAnyIngress(t, ns, "after-touch", 1)
		now := e.getService(t, ns, "first")
		if now.ResourceVersion != touched.ResourceVersion {
			t.Errorf("the controller rewrote an unchanged Service: resourceVersion %s -> %s; status %+v", touched.ResourceVersion, now.ResourceVersion, now.Status)
		}
		if n := countEvents(e.serviceEvents(t, ns, "first"), controller.ReasonAllocated); n != 1 {
			t.Errorf("%d Allocated events, want 1", n)
		}
		e.deleteService(t, ns, "after-touch")
	})

	t.Run("dual stack", func(t *testing.T) {
		e.createService(t, ns, "dual", dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol))
		got := e.waitAnyIngress(t, ns, "dual", 2)
		if mustAddr(got[0]).Is4() || !mustAddr(got[1]).Is4() {
			t.Errorf("ingress %v is not in the Service's family order (IPv6, IPv4)", got)
		}
	})

	t.Run("released on deletion, and a waiting Service gets it", func(t *testing.T) {
		// The pool has 3 IPv4 addresses: first, dual and this one hold them
		// (after-touch released its own).
		e.createService(t, ns, "third")
		e.waitAnyIngress(t, ns, "third", 1)
		e.createService(t, ns, "waiting")
		e.waitCondition(t, ns, "waiting", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonPoolExhausted)
		e.waitEvent(t, ns, "waiting", corev1.EventTypeWarning, controller.ReasonPoolExhausted, `"main"`)
		e.deleteService(t, ns, "first")
		e.waitIngress(t, ns, "waiting", "198.51.100.10")
	})

	t.Run("a change of type releases the address", func(t *testing.T) {
		e.updateService(t, ns, "waiting", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
		})
		eventually(t, "condition removed", func() (bool, string) {
			s := e.getService(t, ns, "waiting")
			return len(s.Status.Conditions) == 0 && len(s.Status.LoadBalancer.Ingress) == 0, describeConditions(s.Status.Conditions)
		})
		e.createService(t, ns, "reuse")
		e.waitIngress(t, ns, "reuse", "198.51.100.10")
	})

	t.Run("a new pool serves a waiting Service", func(t *testing.T) {
		e.createService(t, ns, "needs-more")
		e.waitCondition(t, ns, "needs-more", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonPoolExhausted)
		e.createPool(t, "more", []string{"203.0.113.64/30"})
		e.waitIngress(t, ns, "needs-more", "203.0.113.64")
	})

	t.Run("Services of another class are left alone", func(t *testing.T) {
		e.createService(t, ns, "foreign", withClass("example.com/other"))
		e.createService(t, ns, "after-foreign")
		e.waitAnyIngress(t, ns, "after-foreign", 1)
		s := e.getService(t, ns, "foreign")
		if len(s.Status.LoadBalancer.Ingress) != 0 || len(s.Status.Conditions) != 0 || len(e.serviceEvents(t, ns, "foreign")) != 0 {
			t.Errorf("a Service of another class was touched: %+v", s.Status)
		}
	})
}

// TestLoadBalancerClass runs a controller that serves one class.
func TestLoadBalancerClass(t *testing.T) {
	e := newEnv(t)
	const ns = "cls"
	e.namespace(t, ns, nil)
	e.createPool(t, "main", []string{"198.51.100.20/30"})
	e.startController(t, func(c *controller.Config) { c.LoadBalancerClass = "herald.dev/one" })
	e.createService(t, ns, "mine", withClass("herald.dev/one"))
	e.createService(t, ns, "classless")
	e.createService(t, ns, "after", withClass("herald.dev/one"))
	e.waitAnyIngress(t, ns, "mine", 1)
	e.waitAnyIngress(t, ns, "after", 1)
	s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), "classless", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Status.LoadBalancer.Ingress) != 0 || len(s.Status.Conditions) != 0 {
		t.Errorf("a class controller served a classless Service: %+v", s.Status)
	}
}

func countEvents(evs []corev1.Event, reason string) int {
	n := 0
	for _, ev := range evs {
		if ev.Reason == reason {
			n += int(max(ev.Count, 1))
		}
	}
	return n
}
