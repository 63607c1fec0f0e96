package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

// tenantSecrets are what tenant-a's Services in these tests are made of: no
// message or Event written for another namespace's Service may contain one.
var tenantSecrets = []string{"tenant-a", "shop", "k1", "8443"}

// checkNoSecrets fails when the Service's AddressAllocated condition or one
// of its Events reveals one of secrets.
func (e *env) checkNoSecrets(t *testing.T, ns, name string, secrets []string) {
	t.Helper()
	var texts []string
	for _, c := range e.getService(t, ns, name).Status.Conditions {
		texts = append(texts, c.Message)
	}
	for _, ev := range e.serviceEvents(t, ns, name) {
		texts = append(texts, ev.Message)
	}
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s/%s: %q reveals %q", ns, name, text, s)
			}
		}
	}
}

// TestCrossNamespaceSharingOptIn (issue 12): Services of two namespaces share
// an address only when both set the same key and each lists the other's
// namespace in herald.dev/sharing-cross-namespace. A Service of tenant-b
// that asks for tenant-a's address by key and address gets nothing, whether
// or not it opted in, and its refusal reads exactly as if it had guessed
// another key: no name, key or port of tenant-a shows.
func TestCrossNamespaceSharingOptIn(t *testing.T) {
	e := newEnv(t)
	for _, ns := range []string{"tenant-a", "tenant-b", "tenant-c"} {
		e.namespace(t, ns, nil)
	}
	e.createPool(t, "shared-pool", []string{"198.51.100.0/28"})
	e.startController(t, nil)

	e.createService(t, "tenant-a", "shop", withPorts(8443),
		annotate(config.AnnotationSharingKey, "k1", config.AnnotationSharingCrossNamespace, "tenant-b"))
	addr := e.waitAnyIngress(t, "tenant-a", "shop", 1)[0]

	// Attackers: the key without opting in, an opt-in for every namespace
	// that tenant-a does not reciprocate, and a guessed key.
	attackers := []struct {
		ns, name string
		opts     []svcOpt
	}{
		{"tenant-b", "attacker", []svcOpt{annotate(config.AnnotationSharingKey, "k1")}},
		{"tenant-c", "wide", []svcOpt{annotate(config.AnnotationSharingKey, "k1", config.AnnotationSharingCrossNamespace, "*")}},
		{"tenant-b", "guess", []svcOpt{annotate(config.AnnotationSharingKey, "zz")}},
	}
	var messages []string
	for _, a := range attackers {
		opts := append([]svcOpt{withPorts(9000), annotate(config.AnnotationAddresses, addr)}, a.opts...)
		e.createService(t, a.ns, a.name, opts...)
		c := e.waitCondition(t, a.ns, a.name, config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonAddressInUse)
		e.waitEvent(t, a.ns, a.name, corev1.EventTypeWarning, controller.ReasonAddressInUse)
		if got := ingressIPs(e.getService(t, a.ns, a.name)); len(got) != 0 {
			t.Errorf("%s/%s got %v", a.ns, a.name, got)
		}
		e.checkNoSecrets(t, a.ns, a.name, tenantSecrets)
		messages = append(messages, c.Message)
	}
	for i, m := range messages[1:] {
		if m != messages[0] {
			t.Errorf("the refusal of %s/%s differs from %s/%s's, so it tells whether the key matched:\n%s\n%s",
				attackers[i+1].ns, attackers[i+1].name, attackers[0].ns, attackers[0].name, m, messages[0])
		}
	}
	t.Logf("refusal: %s", messages[0])

	// Both sides opt in: tenant-b's blog joins without asking for the address.
	e.createService(t, "tenant-b", "blog", withPorts(443),
		annotate(config.AnnotationSharingKey, "k1", config.AnnotationSharingCrossNamespace, "tenant-a"))
	e.waitIngress(t, "tenant-b", "blog", addr)
	// One side only: tenant-a's shop does not allow tenant-c.
	e.createService(t, "tenant-c", "one-sided", withPorts(444),
		annotate(config.AnnotationSharingKey, "k1", config.AnnotationSharingCrossNamespace, "tenant-a"))
	if got := e.waitAnyIngress(t, "tenant-c", "one-sided", 1)[0]; got == addr {
		t.Errorf("tenant-c/one-sided joined %s, which tenant-a's shop does not share with tenant-c", addr)
	}
	e.waitClaimsMatch(t)
	cl := e.getClaim(t, addr)
	var holders []string
	for _, h := range cl.Spec.Holders {
		holders = append(holders, fmt.Sprintf("%s/%s %s %v", h.Namespace, h.Name, h.SharingKey, h.SharingNamespaces))
	}
	if want := []string{"tenant-a/shop k1 [tenant-b]", "tenant-b/blog k1 [tenant-a]"}; !slices.Equal(holders, want) {
		t.Errorf("claim of %s lists %q, want %q", addr, holders, want)
	}
}

// TestCrossNamespaceSharersKeptOnUpgrade (issue 12): Services of two
// namespaces that share an address from before sharing needed an opt-in,
// recorded in an AddressClaim (198.51.100.5) or only in their statuses
// (198.51.100.6, a release without claims), keep it when the controller
// starts; each gets the condition CrossNamespaceSharingNotOptedIn (still
// True) and a Warning Event naming the annotation value to add, never the
// other Service. Nobody new joins across namespaces; once both sides opt in
// the condition is Allocated again, and no address ever changed.
func TestCrossNamespaceSharersKeptOnUpgrade(t *testing.T) {
	e := newEnv(t)
	for _, ns := range []string{"tenant-a", "tenant-b", "tenant-c", "probes"} {
		e.namespace(t, ns, nil)
	}
	e.createPool(t, "lan", []string{"198.51.100.0/28"})

	type old struct {
		ns, name string
		port     int32
		addr     string
	}
	olds := []old{
		{"tenant-a", "shop", 80, "198.51.100.5"}, {"tenant-b", "blog", 443, "198.51.100.5"},
		{"tenant-a", "shop-v1", 80, "198.51.100.6"}, {"tenant-b", "blog-v1", 443, "198.51.100.6"},
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	var claimed []v1alpha1.AddressHolder
	for _, o := range olds {
		s := e.createService(t, o.ns, o.name, withPorts(o.port), annotate(config.AnnotationSharingKey, "k1"))
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: o.addr}}
		s.Status.Conditions = []metav1.Condition{{
			Type: config.ConditionAddressAllocated, Status: metav1.ConditionTrue, Reason: controller.ReasonAllocated,
			Message: config.GrantSentence(config.VerbAllocated, []netip.Addr{mustAddr(o.addr)}, "lan"), ObservedGeneration: s.Generation, LastTransitionTime: now,
		}}
		if _, err := e.kube.CoreV1().Services(o.ns).UpdateStatus(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("write the old status of %s/%s: %v", o.ns, o.name, err)
		}
		if o.addr == "198.51.100.5" {
			claimed = append(claimed, v1alpha1.AddressHolder{Namespace: o.ns, Name: o.name, UID: string(s.UID), As: v1alpha1.HolderLoadBalancer,
				SharingKey: "k1", Ports: []v1alpha1.HolderPort{{Protocol: "TCP", Port: o.port}}})
		}
	}
	_, err := e.herald.HeraldV1alpha1().AddressClaims().Create(context.Background(), &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "198.51.100.5"},
		Spec: v1alpha1.AddressClaimSpec{Address: "198.51.100.5", Family: "IPv4", Pool: "lan",
			Holders: claimed, HolderCount: int32(len(claimed))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the old claim: %v", err)
	}

	e.startController(t, nil)
	e.settle(t, "probes", "probe")
	for _, o := range olds {
		other := map[string]string{"tenant-a": "tenant-b", "tenant-b": "tenant-a"}[o.ns]
		e.waitCondition(t, o.ns, o.name, config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonCrossNamespaceSharingNotOptedIn)
		e.waitEvent(t, o.ns, o.name, corev1.EventTypeWarning, controller.ReasonCrossNamespaceSharingNotOptedIn,
			fmt.Sprintf("%s: %q", config.AnnotationSharingCrossNamespace, other))
		if got := ingressIPs(e.getService(t, o.ns, o.name)); !slices.Equal(got, []string{o.addr}) {
			t.Errorf("%s/%s shows %v, had %s", o.ns, o.name, got, o.addr)
		}
		var otherNames []string
		for _, p := range olds {
			if p.ns != o.ns {
				otherNames = append(otherNames, p.name)
			}
		}
		e.checkNoSecrets(t, o.ns, o.name, otherNames)
	}
	e.waitClaimsMatch(t)
	for _, addr := range []string{"198.51.100.5", "198.51.100.6"} {
		if cl := e.getClaim(t, addr); cl == nil || cl.Spec.HolderCount != 2 {
			t.Errorf("claim of %s: %v, want both old sharers", addr, describeHolders(cl))
		}
	}

	// A newcomer of another namespace, opted in to everyone, cannot join.
	e.createService(t, "tenant-c", "newcomer", withPorts(8080), annotate(config.AnnotationSharingKey, "k1",
		config.AnnotationSharingCrossNamespace, "*", config.AnnotationAddresses, "198.51.100.5"))
	e.waitCondition(t, "tenant-c", "newcomer", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonAddressInUse)

	// Both sides opt in as told, one after the other: Allocated again, on
	// the same address. The first side's own reconcile is done (its
	// condition no longer asks it to add the annotation) before the second
	// opts in, so it turns Allocated only if the second side's change
	// decides its sharers again.
	for _, o := range olds[:2] {
		other := map[string]string{"tenant-a": "tenant-b", "tenant-b": "tenant-a"}[o.ns]
		e.updateService(t, o.ns, o.name, func(s *corev1.Service) { s.Annotations[config.AnnotationSharingCrossNamespace] = other })
		eventually(t, fmt.Sprintf("%s/%s's condition takes its opt-in in", o.ns, o.name), func() (bool, string) {
			c := meta.FindStatusCondition(e.getService(t, o.ns, o.name).Status.Conditions, config.ConditionAddressAllocated)
			if c == nil {
				return false, "no condition"
			}
			return !strings.Contains(c.Message, "add the annotation"), c.Reason + ": " + c.Message
		})
	}
	for _, o := range olds[:2] {
		e.waitCondition(t, o.ns, o.name, config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonAllocated)
		if got := ingressIPs(e.getService(t, o.ns, o.name)); !slices.Equal(got, []string{o.addr}) {
			t.Errorf("%s/%s shows %v after opting in, had %s", o.ns, o.name, got, o.addr)
		}
	}
}

// ingressWatch polls Services' ingress until stopped and records every
// value other than the one each first showed.
type ingressWatch struct {
	mu      sync.Mutex
	changes []string
	stop    chan struct{}
	done    chan struct{}
}

func (e *env) watchIngress(t *testing.T, ns string, names ...string) *ingressWatch {
	w := &ingressWatch{stop: make(chan struct{}), done: make(chan struct{})}
	first := map[string]string{}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, n := range names {
				s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), n, metav1.GetOptions{})
				if err != nil {
					continue
				}
				got := strings.Join(ingressIPs(s), ",")
				if f, ok := first[n]; !ok {
					first[n] = got
				} else if got != f {
					w.mu.Lock()
					w.changes = append(w.changes, fmt.Sprintf("%s: %s -> %s", n, f, got))
					w.mu.Unlock()
					first[n] = got
				}
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *ingressWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *ingressWatch) seen() []string {
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}

// TestTrafficPolicyEditKeepsSharedAddress is the chaos soak's regression
// (seed 30, docs/figures.md): two Services sharing key k1 under
// externalTrafficPolicy Local; editing one to Cluster moved it to another
// address. Local beside Cluster is compatible (any node the Local one may
// use serves the Cluster one), so it stays, Allocated; editing it back to
// Local with another selector makes the backends differ, and it still stays,
// with SharingRefused in a True condition. Neither address ever changes.
func TestTrafficPolicyEditKeepsSharedAddress(t *testing.T) {
	e := newEnv(t)
	const ns = "soak-b"
	e.namespace(t, ns, nil)
	e.createPool(t, "l2", []string{"198.51.100.128/28"})
	e.startController(t, nil)

	local := func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.Selector = map[string]string{"app": "web"}
	}
	e.createService(t, ns, "svc-60", withPorts(80), local, annotate(config.AnnotationSharingKey, "k1"))
	addr := e.waitAnyIngress(t, ns, "svc-60", 1)[0]
	e.createService(t, ns, "svc-69", withPorts(81), local, annotate(config.AnnotationSharingKey, "k1"))
	e.waitIngress(t, ns, "svc-69", addr)
	e.waitClaimsMatch(t)
	w := e.watchIngress(t, ns, "svc-60", "svc-69")

	holderOf := func(name string) v1alpha1.AddressHolder {
		if cl := e.getClaim(t, addr); cl != nil {
			for _, h := range cl.Spec.Holders {
				if h.Name == name {
					return h
				}
			}
		}
		return v1alpha1.AddressHolder{}
	}
	e.updateService(t, ns, "svc-69", func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	})
	eventually(t, "svc-69's claim holder records Cluster (no backend key)", func() (bool, string) {
		h := holderOf("svc-69")
		return h.Name != "" && h.BackendKey == "", fmt.Sprintf("%+v", h)
	})
	e.waitCondition(t, ns, "svc-69", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonAllocated)

	e.updateService(t, ns, "svc-69", func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.Selector = map[string]string{"app": "other"}
	})
	c := e.waitCondition(t, ns, "svc-69", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonSharingRefused)
	if !strings.Contains(c.Message, "backends") {
		t.Errorf("condition %q does not say the backends differ", c.Message)
	}
	e.waitEvent(t, ns, "svc-69", corev1.EventTypeWarning, controller.ReasonSharingRefused)
	e.waitClaimsMatch(t)
	time.Sleep(2 * time.Second) // a move would show within the watch by now
	if changes := w.seen(); len(changes) > 0 {
		t.Errorf("addresses changed: %q", changes)
	}
	for _, n := range []string{"svc-60", "svc-69"} {
		if got := ingressIPs(e.getService(t, ns, n)); !slices.Equal(got, []string{addr}) {
			t.Errorf("%s shows %v, want %s", n, got, addr)
		}
	}
}
