package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
)

// TestImport starts the controller on Services that already record
// addresses, as a previous controller (or another implementation) left
// them: it keeps every address, resolves a conflict in favour of the older
// Service, and keeps an address that lies in no pool.
func TestImport(t *testing.T) {
	e := newEnv(t)
	const ns = "import"
	e.namespace(t, ns, nil)
	e.createPool(t, "main", []string{"198.51.100.0/28"})

	// withStatus creates a Service and writes its ingress as if allocated
	// before; creation order decides which is older.
	withStatus := func(name string, ips ...string) {
		t.Helper()
		e.createService(t, ns, name)
		s := e.getService(t, ns, name)
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress,
				corev1.LoadBalancerIngress{IP: ip, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)})
		}
		if _, err := e.kube.CoreV1().Services(ns).UpdateStatus(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // creation timestamps have a resolution of one second
	}
	withStatus("alone", "198.51.100.12") // holds .12 alone
	withStatus("older", "198.51.100.5")
	withStatus("younger", "198.51.100.5") // claims the same address: loses it
	withStatus("outside", "203.0.113.99") // in no pool: kept

	e.startController(t, nil)
	e.waitIngress(t, ns, "older", "198.51.100.5")
	e.waitIngress(t, ns, "alone", "198.51.100.12")
	e.waitIngress(t, ns, "outside", "203.0.113.99")
	c := e.waitCondition(t, ns, "outside", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonAllocated)
	if g, ok := config.ParseGrant(c.Message); !ok || g.Pool != "" {
		t.Errorf("condition of an address in no pool: %q", c.Message)
	}
	// The younger Service gets another address, never the contested one.
	eventually(t, "younger re-addressed", func() (bool, string) {
		got := ingressIPs(e.getService(t, ns, "younger"))
		return len(got) == 1 && !slices.Contains([]string{"198.51.100.5", "198.51.100.12"}, got[0]), describeConditions(e.getService(t, ns, "younger").Status.Conditions)
	})
}
