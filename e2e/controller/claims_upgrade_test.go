package controller

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
)

// TestClaimsUpgrade starts the controller on a cluster that the previous
// release (addresses recorded only in Service statuses) left: each Service
// carries status.loadBalancer.ingress and the True condition
// herald.dev/AddressAllocated whose message starts with config.GrantSentence
// (`Allocated <addr> from IPPool "<pool>".`), or, for spec.externalIPs,
// herald.dev/ExternalIPsAccepted; no AddressClaim exists. The controller
// creates one claim per address, with the pool the sentence names (none for
// an address in no pool) and exactly the Services showing it, and writes no
// Service at all: each status already says what it would write. No Event
// calls the creation a repair.
func TestClaimsUpgrade(t *testing.T) {
	e := newEnv(t)
	const ns, probes = "claims-upgrade", "claims-upgrade-probe"
	e.namespace(t, ns, nil)
	e.namespace(t, probes, nil)
	e.createPool(t, "old", []string{"198.51.100.0/28", "2001:db8:60::/120"})
	e.createPool(t, "old-ext", []string{"203.0.113.0/28"}, noAutoAssign, externalIPsFor(ns))

	type old struct {
		name    string
		opts    []svcOpt
		ingress []string // written with the AddressAllocated sentence from pool
		pool    string
		ext     []string // accepted spec.externalIPs, from extPool
		extVerb string
		extPool string
	}
	services := []old{
		{name: "single", ingress: []string{"198.51.100.3"}, pool: "old"},
		{name: "dual", opts: []svcOpt{dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)},
			ingress: []string{"198.51.100.4", "2001:db8:60::4"}, pool: "old"},
		{name: "share-a", opts: []svcOpt{annotate(config.AnnotationSharingKey, "up"), withPorts(80)}, ingress: []string{"198.51.100.5"}, pool: "old"},
		{name: "share-b", opts: []svcOpt{annotate(config.AnnotationSharingKey, "up"), withPorts(443)}, ingress: []string{"198.51.100.5"}, pool: "old"},
		{name: "outside", ingress: []string{"203.0.113.200"}},
		{name: "ext", opts: []svcOpt{clusterIP, withExternalIPs("203.0.113.5")}, ext: []string{"203.0.113.5"}, extVerb: config.VerbAccepted, extPool: "old-ext"},
		{name: "ext-alloc", opts: []svcOpt{clusterIP, annotate(config.AnnotationAllocateExternalIP, "old-ext"), withExternalIPs("203.0.113.7")},
			ext: []string{"203.0.113.7"}, extVerb: config.VerbAllocated, extPool: "old-ext"},
		{name: "lb-and-ext", opts: []svcOpt{withExternalIPs("203.0.113.8")}, ingress: []string{"198.51.100.6"}, pool: "old",
			ext: []string{"203.0.113.8"}, extVerb: config.VerbAccepted, extPool: "old-ext"},
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for _, o := range services {
		s := e.createService(t, ns, o.name, o.opts...)
		if len(o.ingress) > 0 {
			var addrs []netip.Addr
			for _, ip := range o.ingress {
				addrs = append(addrs, mustAddr(ip))
				s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
			}
			s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{
				Type: config.ConditionAddressAllocated, Status: metav1.ConditionTrue, Reason: controller.ReasonAllocated,
				Message: config.GrantSentence(config.VerbAllocated, addrs, o.pool), ObservedGeneration: s.Generation, LastTransitionTime: now,
			})
		}
		if len(o.ext) > 0 {
			var addrs []netip.Addr
			for _, ip := range o.ext {
				addrs = append(addrs, mustAddr(ip))
			}
			reason := controller.ReasonExternalIPsAccepted
			if o.extVerb == config.VerbAllocated {
				reason = controller.ReasonExternalIPAllocated
			}
			s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{
				Type: config.ConditionExternalIPsAccepted, Status: metav1.ConditionTrue, Reason: reason,
				Message: config.GrantSentence(o.extVerb, addrs, o.extPool), ObservedGeneration: s.Generation, LastTransitionTime: now,
			})
		}
		if _, err := e.kube.CoreV1().Services(ns).UpdateStatus(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("write the previous release's status of %s: %v", o.name, err)
		}
	}
	if n := len(e.allClaims(t)); n != 0 {
		t.Fatalf("%d AddressClaims before the upgrade", n)
	}
	before := e.snapshot(t, ns)

	e.startController(t, nil)
	e.settle(t, probes, "probe")
	e.waitClaimsMatch(t)

	wantPool := map[string]string{}
	for _, o := range services {
		for _, ip := range o.ingress {
			wantPool[ip] = o.pool
		}
		for _, ip := range o.ext {
			wantPool[ip] = o.extPool
		}
	}
	for ip, pool := range wantPool {
		if cl := e.getClaim(t, ip); cl == nil || cl.Spec.Pool != pool {
			t.Errorf("claim of %s: %+v; want pool %q", ip, cl, pool)
		}
	}
	after := e.snapshot(t, ns)
	for name, b := range before.services {
		if a := after.services[name]; a != b {
			t.Errorf("service %s was written during the upgrade: %+v -> %+v", name, b, a)
			t.Logf("its conditions now: %s", describeConditions(e.getService(t, ns, name).Status.Conditions))
		}
	}
	for _, o := range services {
		for _, ev := range e.serviceEvents(t, ns, o.name) {
			if ev.Reason == controller.ReasonAddressClaimRestored {
				t.Errorf("service %s: an upgrade is not a repair, but got %s: %s", o.name, ev.Reason, ev.Message)
			}
		}
	}
}
