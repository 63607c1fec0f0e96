package suite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(40, "external IPs", testExternalIPs) }

// The external-IPs group owns 198.51.100.160/29: one pool whose addresses
// Services may use in spec.externalIPs when their namespace carries extLabel.
const (
	extPool      = "external-ips"
	extAllowedNS = "external-allowed"
	extOtherNS   = "external-other"
	extLabel     = "e2e.herald.dev/external-ips"
)

// setNamespaceLabel sets extLabel on the namespace ns to "allowed", or removes
// it when allowed is false.
func setNamespaceLabel(t *testing.T, l *productlab.Lab, ns string, allowed bool) {
	t.Helper()
	label := extLabel + "=allowed"
	if !allowed {
		label = extLabel + "-"
	}
	if out, err := l.Kubectl("label", "namespace", ns, label, "--overwrite"); err != nil {
		t.Fatalf("label namespace %s: %v\n%s", ns, err, out)
	}
}

// waitAccepted waits until the Service's external IPs that speakers may announce
// (a True ExternalIPsAccepted condition of reason, naming extPool) are exactly
// want.
func waitAccepted(t *testing.T, l *productlab.Lab, ns, name, reason string, want ...netip.Addr) {
	t.Helper()
	_, c := l.WaitServiceCondition(ns, name, config.ConditionExternalIPsAccepted, metav1.ConditionTrue, reason, patience)
	verb := config.VerbAccepted
	if reason == controller.ReasonExternalIPAllocated {
		verb = config.VerbAllocated
	}
	if sentence := config.GrantSentence(verb, want, extPool); !strings.HasPrefix(c.Message, sentence) {
		t.Errorf("ExternalIPsAccepted message %q does not start with %q", c.Message, sentence)
	}
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		s, err := l.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := config.AcceptedExternalIPs(s); !slices.Equal(got, want) {
			return fmt.Errorf("service %s/%s: accepted external IPs %v, want %v", ns, name, got, want)
		}
		return nil
	})
}

// assertNotAnnounced fails t unless, for a few seconds, no host answers the
// client's ARP for addr and no SpeakerStatus lists it for the Service.
func assertNotAnnounced(t *testing.T, l *productlab.Lab, addr netip.Addr, ns, name string) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		// Each ARP waits a second for answers.
		names, err := l.Answering(t.Context(), addr)
		if !errors.Is(err, netlab.ErrNoAnswer) {
			t.Fatalf("ARP for %v: %v answer (%v), want no answer", addr, names, err)
		}
		if got, err := l.StatusAnnouncers(t.Context(), addr, ns, name); err != nil || len(got) > 0 {
			t.Fatalf("SpeakerStatuses list %v for %s/%s on %v (%v), want none", addr, ns, name, got, err)
		}
	}
}

// waitNotAnnounced waits until nobody answers the client's ARP for addr.
func waitNotAnnounced(t *testing.T, l *productlab.Lab, addr netip.Addr) {
	t.Helper()
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		names, err := l.Answering(ctx, addr)
		if errors.Is(err, netlab.ErrNoAnswer) {
			return nil
		}
		return fmt.Errorf("ARP for %v: %v answer (%v), want no answer", addr, names, err)
	})
}

func testExternalIPs(t *testing.T, l *productlab.Lab) {
	l.CreateNamespace(extAllowedNS, map[string]string{extLabel: "allowed"})
	l.CreateNamespace(extOtherNS, nil)
	web := l.WebPods()
	l.Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: %[1]s}
spec:
  addresses: ["198.51.100.160/29"]
  # No Service of type LoadBalancer gets these addresses unless it names the pool.
  autoAssign: false
  allowExternalIPs:
    namespaceSelector:
      matchLabels: {%[2]s: allowed}
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: %[1]s}
spec:
  ipPools: [%[1]s]
`, extPool, extLabel))
	removeAtEnd(t, l, []string{extAllowedNS + "/*", extOtherNS + "/*"}, "ippool/"+extPool, "l2advertisement/"+extPool)

	allowed, other := netip.MustParseAddr("198.51.100.161"), netip.MustParseAddr("198.51.100.162")
	externalService := func(ns, name string, addr netip.Addr) testService {
		return testService{Namespace: ns, Name: name, Type: "ClusterIP", Spec: []string{"externalIPs: [" + addr.String() + "]"}}
	}

	t.Run("allowed for a labelled namespace: accepted, announced, reachable", func(t *testing.T) {
		l := l.For(t)
		l.Apply(externalService(extAllowedNS, "ext-allowed", allowed).YAML())
		l.Backend(extAllowedNS, "ext-allowed", productlab.WebPort, web...)
		waitAccepted(t, l, extAllowedNS, "ext-allowed", controller.ReasonExternalIPsAccepted, allowed)
		l.WaitServiceEvent(extAllowedNS, "ext-allowed", corev1.EventTypeNormal, controller.ReasonExternalIPsAccepted, patience, allowed.String())
		node := l.WaitAnnouncer(allowed, patience, nil)
		l.WaitStatusAnnouncer(allowed, extAllowedNS, "ext-allowed", node, patience)
		r := reach(t, l, allowed, 80)
		t.Logf("%v is announced by %s; through kube-proxy the client reached %s", allowed, node, r.Pod)
	})

	t.Run("not allowed for another namespace: not announced, and the user is told why", func(t *testing.T) {
		l := l.For(t)
		l.Apply(externalService(extOtherNS, "ext-other", other).YAML())
		l.Backend(extOtherNS, "ext-other", productlab.WebPort, web...)
		_, c := l.WaitServiceCondition(extOtherNS, "ext-other", config.ConditionExternalIPsAccepted, metav1.ConditionFalse, controller.ReasonExternalIPNotAllowed, patience)
		if !strings.Contains(c.Message, other.String()) || !strings.Contains(c.Message, extOtherNS) {
			t.Errorf("ExternalIPNotAllowed message %q names neither the address %v nor the namespace %s", c.Message, other, extOtherNS)
		}
		l.WaitServiceEvent(extOtherNS, "ext-other", corev1.EventTypeWarning, controller.ReasonExternalIPNotAllowed, patience, other.String())
		if got := config.AcceptedExternalIPs(getService(t, l, extOtherNS, "ext-other")); len(got) != 0 {
			t.Errorf("a refused Service has accepted external IPs %v", got)
		}
		assertNotAnnounced(t, l, other, extOtherNS, "ext-other")
		if r, err := l.Connect(t.Context(), other, 80); err == nil {
			t.Errorf("the client reached pod %s through %v, an external IP nobody may announce", r.Pod, other)
		}
		// The allowed Service is still announced meanwhile.
		if names, err := l.Answering(t.Context(), allowed); err != nil || len(names) != 1 {
			t.Errorf("ARP for the accepted %v: %v (%v), want one node", allowed, names, err)
		}
	})

	t.Run("labelling the namespace allows it, unlabelling withdraws the claim", func(t *testing.T) {
		l := l.For(t)
		setNamespaceLabel(t, l, extOtherNS, true)
		waitAccepted(t, l, extOtherNS, "ext-other", controller.ReasonExternalIPsAccepted, other)
		node := l.WaitAnnouncer(other, patience, nil)
		r := reach(t, l, other, 80)
		t.Logf("once %s was labelled, %v was announced by %s and the client reached %s", extOtherNS, other, node, r.Pod)

		setNamespaceLabel(t, l, extAllowedNS, false)
		_, c := l.WaitServiceCondition(extAllowedNS, "ext-allowed", config.ConditionExternalIPsAccepted, metav1.ConditionFalse, controller.ReasonExternalIPNotAllowed, patience)
		t.Logf("ext-allowed after its namespace lost the label: %s", c.Message)
		l.WaitServiceEvent(extAllowedNS, "ext-allowed", corev1.EventTypeWarning, controller.ReasonExternalIPNotAllowed, patience, allowed.String())
		waitNotAnnounced(t, l, allowed)
		assertNotAnnounced(t, l, allowed, extAllowedNS, "ext-allowed")
		setNamespaceLabel(t, l, extAllowedNS, true)
		waitAccepted(t, l, extAllowedNS, "ext-allowed", controller.ReasonExternalIPsAccepted, allowed)
		l.WaitAnnouncer(allowed, patience, nil)
	})

	t.Run("an external IP allocated on request", func(t *testing.T) {
		l := l.For(t)
		l.Apply(testService{Namespace: extAllowedNS, Name: "ext-requested", Type: "ClusterIP",
			Annotations: map[string]string{"herald.dev/allocate-external-ip": extPool}}.YAML())
		l.Backend(extAllowedNS, "ext-requested", productlab.WebPort, web...)
		var addr netip.Addr
		productlab.WaitFor(t, patience, func(ctx context.Context) error {
			s, err := l.Kube.CoreV1().Services(extAllowedNS).Get(ctx, "ext-requested", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(s.Spec.ExternalIPs) != 1 {
				return fmt.Errorf("spec.externalIPs %v, want one address; %s", s.Spec.ExternalIPs, productlab.DescribeConditions(s.Status.Conditions))
			}
			addr, err = netip.ParseAddr(s.Spec.ExternalIPs[0])
			return err
		})
		if !netip.MustParsePrefix("198.51.100.160/29").Contains(addr) || addr == allowed || addr == other {
			t.Fatalf("allocated external IP %v: not a free address of %s", addr, extPool)
		}
		waitAccepted(t, l, extAllowedNS, "ext-requested", controller.ReasonExternalIPAllocated, addr)
		l.WaitServiceEvent(extAllowedNS, "ext-requested", corev1.EventTypeNormal, controller.ReasonExternalIPAllocated, patience, addr.String())
		node := l.WaitAnnouncer(addr, patience, nil)
		r := reach(t, l, addr, 80)
		t.Logf("allocated %v, announced by %s; the client reached %s", addr, node, r.Pod)
	})
}
