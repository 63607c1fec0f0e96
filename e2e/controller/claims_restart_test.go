package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
)

// claimRestarts is how many times TestClaimsSurviveRestarts restarts the
// controller (issue 11: twenty).
const claimRestarts = 20

// TestClaimsSurviveRestarts is the first case of issue 11. Services share an
// address (herald.dev/sharing-key, disjoint ports), one of them then gets an
// unparseable herald.dev/addresses (it keeps its address), a pending Service
// requests an address another one holds, Services hold accepted
// spec.externalIPs (one allocated by Herald, two sharing one), and some are
// dual-stack. The herald-controller binary, as one replica with leader
// election, is restarted 20 times, alternately by SIGTERM and SIGKILL.
// After each restart no Service changed at all (same resourceVersion, so the
// same address), no AddressClaim was written (same resourceVersion), every
// shown address has the claim that lists exactly the Services showing it,
// and the new process counted no claim repair. At the end the apiserver's
// audit log confirms that the controller never wrote one of these Services
// after they were settled.
func TestClaimsSurviveRestarts(t *testing.T) {
	opts, auditLog := auditOptions(t)
	e := newEnvWith(t, opts)
	e.grantControllerRBAC(t, "alice")
	bin := buildController(t)
	const ns, probes = "claims-restart", "claims-probe"
	e.namespace(t, ns, nil)
	e.namespace(t, probes, nil)
	e.createPool(t, "lb", []string{"198.51.100.0/27", "2001:db8:10::/120"})
	e.createPool(t, "ext", []string{"203.0.113.0/28", "2001:db8:40::/120"}, noAutoAssign, externalIPsFor(ns))
	r := startReplica(t, e.cp, bin, "alice")
	waitLeading(t, r)

	// Three sharers of 198.51.100.10; the third joins it by key alone.
	e.createService(t, ns, "share-a", annotate(config.AnnotationSharingKey, "k1", config.AnnotationAddresses, "198.51.100.10"), withPorts(80))
	e.waitIngress(t, ns, "share-a", "198.51.100.10")
	e.createService(t, ns, "share-b", annotate(config.AnnotationSharingKey, "k1", config.AnnotationAddresses, "198.51.100.10"), withPorts(443))
	e.createService(t, ns, "share-c", annotate(config.AnnotationSharingKey, "k1"), withPorts(8080))
	e.waitIngress(t, ns, "share-b", "198.51.100.10")
	e.waitIngress(t, ns, "share-c", "198.51.100.10")
	// share-b's annotation becomes unparseable: it keeps its address.
	e.updateService(t, ns, "share-b", annotate(config.AnnotationAddresses, "not-an-address"))
	e.waitCondition(t, ns, "share-b", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonInvalidAnnotation)
	e.waitIngress(t, ns, "share-b", "198.51.100.10")

	// A pending request for an address another Service holds.
	e.createService(t, ns, "holder", annotate(config.AnnotationAddresses, "198.51.100.11"))
	e.waitIngress(t, ns, "holder", "198.51.100.11")
	e.createService(t, ns, "wants-held", annotate(config.AnnotationAddresses, "198.51.100.11"))
	e.waitCondition(t, ns, "wants-held", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonAddressInUse)

	// Dual stack: alone, sharing both addresses, and preferred.
	e.createService(t, ns, "dual", dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	e.createService(t, ns, "dual-share-a", annotate(config.AnnotationSharingKey, "k2"), withPorts(80),
		dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	e.waitAnyIngress(t, ns, "dual-share-a", 2)
	e.createService(t, ns, "dual-share-b", annotate(config.AnnotationSharingKey, "k2"), withPorts(443),
		dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	e.createService(t, ns, "prefer-dual", dualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol))
	e.createService(t, ns, "v6-only", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol))
	for i := range 6 {
		e.createService(t, ns, fmt.Sprintf("plain-%d", i))
	}

	// External IPs: claimed, refused (held by another), on a LoadBalancer
	// Service, allocated by Herald, and shared.
	e.createService(t, ns, "ext-cip", clusterIP, withExternalIPs("203.0.113.5"))
	e.waitCondition(t, ns, "ext-cip", config.ConditionExternalIPsAccepted, metav1.ConditionTrue, controller.ReasonExternalIPsAccepted)
	e.createService(t, ns, "ext-taken", clusterIP, withExternalIPs("203.0.113.5"))
	e.createService(t, ns, "ext-lb", withExternalIPs("2001:db8:40::9"))
	e.createService(t, ns, "ext-alloc", clusterIP, annotate(config.AnnotationAllocateExternalIP, "ext"))
	e.createService(t, ns, "ext-share-a", clusterIP, annotate(config.AnnotationSharingKey, "k3"), withPorts(80), withExternalIPs("203.0.113.6"))
	e.createService(t, ns, "ext-share-b", clusterIP, annotate(config.AnnotationSharingKey, "k3"), withPorts(443), withExternalIPs("203.0.113.6"))
	e.waitCondition(t, ns, "ext-taken", config.ConditionExternalIPsAccepted, metav1.ConditionFalse, controller.ReasonExternalIPInUse)
	for _, name := range []string{"ext-lb", "ext-share-a", "ext-share-b"} {
		e.waitCondition(t, ns, name, config.ConditionExternalIPsAccepted, metav1.ConditionTrue, controller.ReasonExternalIPsAccepted)
	}
	e.waitCondition(t, ns, "ext-alloc", config.ConditionExternalIPsAccepted, metav1.ConditionTrue, controller.ReasonExternalIPAllocated)
	for _, name := range []string{"dual", "dual-share-b", "prefer-dual"} {
		e.waitAnyIngress(t, ns, name, 2)
	}
	e.waitAnyIngress(t, ns, "v6-only", 1)
	e.waitAnyIngress(t, ns, "ext-lb", 1)
	for i := range 6 {
		e.waitAnyIngress(t, ns, fmt.Sprintf("plain-%d", i), 1)
	}
	if a, b := ingressIPs(e.getService(t, ns, "dual-share-a")), ingressIPs(e.getService(t, ns, "dual-share-b")); !slices.Equal(a, b) {
		t.Fatalf("dual-share-a has %v and dual-share-b %v; want them to share both", a, b)
	}

	e.settle(t, probes, "settle")
	e.waitClaimsMatch(t)
	before := e.snapshot(t, ns)
	shared := 0
	for _, cl := range before.claims {
		if cl.holders > 1 {
			shared++
		}
	}
	t.Logf("%d Services, %d AddressClaims (%d shared) before the restarts", len(before.services), len(before.claims), shared)
	if shared < 3 {
		t.Fatalf("only %d shared claims; the fixture must share a load-balancer address, two dual-stack ones and an external IP", shared)
	}
	mark := len(auditWrites(t, auditLog))

	for i := range claimRestarts {
		how := "SIGTERM"
		if i%2 == 0 {
			r.stop(t)
		} else {
			how = "SIGKILL"
			r.kill(t)
		}
		r = startReplica(t, e.cp, bin, "alice")
		waitLeading(t, r)
		e.settle(t, probes, fmt.Sprintf("probe-%02d", i))
		after := e.snapshot(t, ns)
		if diff := before.diff(after); diff != "" {
			t.Fatalf("restart %d (%s) changed:\n%s", i+1, how, diff)
		}
		if p := claimProblems(e.allServices(t), e.allClaims(t)); len(p) > 0 {
			t.Fatalf("restart %d (%s): the claims do not record what Services show:\n%s", i+1, how, strings.Join(p, "\n"))
		}
		if got, err := r.repairCounts(); err != nil || len(got) > 0 {
			t.Errorf("restart %d (%s): the controller repaired claims %v (%v); a restart must find nothing to repair", i+1, how, got, err)
		}
	}

	for _, w := range auditWrites(t, auditLog)[mark:] {
		if w.User == "alice" && w.Resource == "services" && w.Namespace == ns {
			t.Errorf("the controller rewrote a settled Service: %s", w)
		}
	}
}

// waitLeading waits until the replica leads and has imported the
// allocations (its /readyz answers 200 and herald_controller_leader is 1).
func waitLeading(t *testing.T, r *replica) {
	t.Helper()
	eventually(t, "replica "+r.name+" leading and ready", func() (bool, string) {
		code, body, err := r.get("/readyz")
		if err != nil {
			return false, err.Error()
		}
		v, err := r.metric("herald_controller_leader")
		return code == 200 && err == nil && v == 1, fmt.Sprintf("readyz %d %s; leader %v %v", code, body, v, err)
	})
}

// settle creates a Service in ns, waits for its address and claim, then
// deletes it and waits for its claim to go. The controller's queue is
// first in, first out: the Services queued before the probe, at start-up
// or by earlier events, were reconciled by then.
func (e *env) settle(t *testing.T, ns, name string) {
	t.Helper()
	e.createService(t, ns, name)
	addr := e.waitAnyIngress(t, ns, name, 1)[0]
	eventually(t, "claim of probe "+name, func() (bool, string) {
		cl := e.getClaim(t, addr)
		return cl != nil, fmt.Sprint(cl)
	})
	e.deleteService(t, ns, name)
	eventually(t, "probe "+name+" released", func() (bool, string) {
		cl := e.getClaim(t, addr)
		return cl == nil, fmt.Sprint(cl)
	})
}

// clusterState is what a restart must not change: every Service of a
// namespace and every AddressClaim, by name.
type clusterState struct {
	services map[string]serviceRecord
	claims   map[string]claimRecord
}

type serviceRecord struct {
	resourceVersion string
	ingress         string
	externalIPs     string
}

type claimRecord struct {
	resourceVersion string
	holders         int
}

func (e *env) snapshot(t *testing.T, ns string) clusterState {
	t.Helper()
	st := clusterState{services: map[string]serviceRecord{}, claims: map[string]claimRecord{}}
	list, err := e.kube.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		st.services[s.Name] = serviceRecord{s.ResourceVersion, strings.Join(ingressIPs(&s), ","), strings.Join(s.Spec.ExternalIPs, ",")}
	}
	for _, cl := range e.allClaims(t) {
		st.claims[cl.Name] = claimRecord{cl.ResourceVersion, len(cl.Spec.Holders)}
	}
	return st
}

// diff describes what changed from st to now, or returns "".
func (st clusterState) diff(now clusterState) string {
	var out []string
	for name, b := range st.services {
		if a, ok := now.services[name]; !ok {
			out = append(out, fmt.Sprintf("service %s is gone", name))
		} else if a != b {
			out = append(out, fmt.Sprintf("service %s: %+v -> %+v", name, b, a))
		}
	}
	for name, b := range st.claims {
		if a, ok := now.claims[name]; !ok {
			out = append(out, fmt.Sprintf("addressclaim %s is gone", name))
		} else if a != b {
			out = append(out, fmt.Sprintf("addressclaim %s: %+v -> %+v", name, b, a))
		}
	}
	for name := range now.claims {
		if _, ok := st.claims[name]; !ok {
			out = append(out, fmt.Sprintf("addressclaim %s is new", name))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
