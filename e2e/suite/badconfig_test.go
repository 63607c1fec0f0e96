package suite

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(70, "bad configuration", testBadConfig) }

// The bad-configuration group owns 198.51.100.168/29 and 2001:db8:1::1:200/120.
// Its pools carry the group label; one L2Advertisement announces them all.
const badNS = "bad-config"

func testBadConfig(t *testing.T, l *productlab.Lab) {
	l.CreateNamespace(badNS, nil)
	web := l.WebPods()
	// pool applies an IPPool of the group; when t ends, services are deleted,
	// then the pool.
	pool := func(t *testing.T, name string, services []string, addrs ...string) {
		t.Helper()
		l.For(t).Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata:
  name: %s
  labels: {%s: bad-config}
spec:
  addresses: [%s]
  autoAssign: false
`, name, addrGroupLabel, strings.Join(addrs, ", ")))
		removeAtEnd(t, l, services, "ippool/"+name)
	}
	l.Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: bad-config}
spec:
  ipPoolSelector:
    matchLabels: {%s: bad-config}
`, addrGroupLabel))
	removeAtEnd(t, l, []string{badNS + "/*"}, "l2advertisement/bad-config")
	pool(t, "bad-config", []string{badNS + "/*"}, "198.51.100.168/31")

	// A bystander holds an address throughout; nothing below may move it,
	// rewrite it, or cut the client off.
	l.Apply(testService{Namespace: badNS, Name: "bystander", Annotations: pinned("bad-config")}.YAML())
	l.Backend(badNS, "bystander", productlab.WebPort, web...)
	bystander := waitAllocated(t, l, badNS, "bystander", "bad-config")
	reach(t, l, bystander.ingress[0], 80)
	probe := l.Probe(bystander.ingress[0], 80, 250*time.Millisecond, 3*time.Second)
	probeStopped := false
	t.Cleanup(func() {
		if !probeStopped {
			probe.Stop()
		}
	})

	t.Run("an L2Advertisement naming a missing pool", func(t *testing.T) {
		l := l.For(t)
		l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: bad-config-missing}
spec:
  ipPools: [bad-config-later]
`)
		removeAtEnd(t, l, nil, "l2advertisement/bad-config-missing")
		c := l.WaitL2AdvertisementReady("bad-config-missing", metav1.ConditionFalse, v1alpha1.ReasonPoolNotFound, patience)
		if !strings.Contains(c.Message, "bad-config-later") {
			t.Errorf("PoolNotFound message %q does not name the missing pool", c.Message)
		}
		if out, err := l.Kubectl("get", "l2advertisement", "bad-config-missing"); err != nil || !strings.Contains(out, "False") {
			t.Errorf("kubectl get l2advertisement does not show Ready False (%v):\n%s", err, out)
		}
		// Creating the pool fixes it.
		pool(t, "bad-config-later", nil, "198.51.100.170/31")
		l.WaitL2AdvertisementReady("bad-config-missing", metav1.ConditionTrue, v1alpha1.ReasonValid, patience)
	})

	t.Run("a pool edit that would take an address in use", func(t *testing.T) {
		l := l.For(t)
		held := netip.MustParseAddr("198.51.100.174")
		editServices := []string{badNS + "/edit-holder", badNS + "/edit-wants-174"}
		pool(t, "bad-config-edit", editServices, "198.51.100.172/30")
		l.Apply(testService{Namespace: badNS, Name: "edit-holder",
			Annotations: map[string]string{"herald.dev/pool": "bad-config-edit", "herald.dev/addresses": held.String()}}.YAML())
		l.Backend(badNS, "edit-holder", productlab.WebPort, web...)
		holder := waitAllocated(t, l, badNS, "edit-holder", "bad-config-edit", held)
		reach(t, l, held, 80)

		// The edit leaves .174 outside the pool: the pool says so, the Service
		// keeps the address and the client still reaches it.
		pool(t, "bad-config-edit", editServices, "198.51.100.172/31")
		p := l.WaitPoolCondition("bad-config-edit", v1alpha1.ConditionAddressesOutsidePool, metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse, patience)
		msg := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAddressesOutsidePool).Message
		if !strings.Contains(msg, held.String()) || !strings.Contains(msg, badNS+"/edit-holder") {
			t.Errorf("AddressesOutsidePool message %q does not name %v and %s/edit-holder", msg, held, badNS)
		}
		assertUnchanged(t, l, badNS, map[string]serviceState{"edit-holder": holder}, "after the pool edit")
		reach(t, l, held, 80)
		// Nothing new is allocated there.
		l.Apply(testService{Namespace: badNS, Name: "edit-wants-174",
			Annotations: map[string]string{"herald.dev/pool": "bad-config-edit", "herald.dev/addresses": held.String()}}.YAML())
		_, c := l.WaitServiceCondition(badNS, "edit-wants-174", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonAddressNotInAnyPool, patience)
		t.Logf("a Service asking for %v is told: %s", held, c.Message)

		// Undoing the edit clears the condition; still nothing moved.
		pool(t, "bad-config-edit", editServices, "198.51.100.172/30")
		l.WaitPoolCondition("bad-config-edit", v1alpha1.ConditionAddressesOutsidePool, metav1.ConditionFalse, controller.ReasonAllAddressesInPool, patience)
		assertUnchanged(t, l, badNS, map[string]serviceState{"edit-holder": holder}, "after the edit was undone")
	})

	t.Run("a malformed annotation", func(t *testing.T) {
		l := l.For(t)
		// A new Service with an address that does not parse gets nothing and is
		// told why.
		l.Apply(testService{Namespace: badNS, Name: "malformed",
			Annotations: map[string]string{"herald.dev/pool": "bad-config", "herald.dev/addresses": "198.51.100.300"}}.YAML())
		_, c := l.WaitServiceCondition(badNS, "malformed", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonInvalidAnnotation, patience)
		if !strings.Contains(c.Message, "herald.dev/addresses") {
			t.Errorf("InvalidAnnotation message %q does not name the annotation", c.Message)
		}
		l.WaitServiceEvent(badNS, "malformed", corev1.EventTypeWarning, controller.ReasonInvalidAnnotation, patience, "herald.dev/addresses", "198.51.100.300")
		if got := config.LoadBalancerAddresses(getService(t, l, badNS, "malformed")); len(got) != 0 {
			t.Errorf("malformed got %v", got)
		}

		// A Service that holds an address keeps it when an annotation breaks,
		// and is told; fixed, it is as before.
		l.Apply(testService{Namespace: badNS, Name: "annotated", Annotations: pinned("bad-config")}.YAML())
		l.Backend(badNS, "annotated", productlab.WebPort, web...)
		annotated := waitAllocated(t, l, badNS, "annotated", "bad-config")
		l.Apply(testService{Namespace: badNS, Name: "annotated",
			Annotations: map[string]string{"herald.dev/pool": "bad-config", "herald.dev/sharing-key": "not a key!"}}.YAML())
		_, c = l.WaitServiceCondition(badNS, "annotated", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonInvalidAnnotation, patience)
		t.Logf("annotated with a bad sharing key: %s", c.Message)
		l.WaitServiceEvent(badNS, "annotated", corev1.EventTypeWarning, controller.ReasonInvalidAnnotation, patience, "herald.dev/sharing-key")
		if got := config.LoadBalancerAddresses(getService(t, l, badNS, "annotated")); len(got) != 1 || got[0] != annotated.ingress[0] {
			t.Errorf("annotated holds %v after its annotation broke, want %v", got, annotated.ingress)
		}
		reach(t, l, annotated.ingress[0], 80)
		l.Apply(testService{Namespace: badNS, Name: "annotated", Annotations: pinned("bad-config")}.YAML())
		waitAllocated(t, l, badNS, "annotated", "bad-config", annotated.ingress...)
	})

	t.Run("overlapping pools", func(t *testing.T) {
		l := l.For(t)
		// The older pool keeps the shared addresses; the newer serves only the
		// rest. Both say so, naming the other.
		overlapServices := []string{badNS + "/overlap-old", badNS + "/overlap-new"}
		pool(t, "bad-config-overlap-a", overlapServices, `"2001:db8:1::1:200/121"`)
		l.WaitPoolCondition("bad-config-overlap-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, patience)
		v6 := []string{"ipFamilyPolicy: SingleStack", "ipFamilies: [IPv6]"}
		l.Apply(testService{Namespace: badNS, Name: "overlap-old", Annotations: pinned("bad-config-overlap-a"), Spec: v6}.YAML())
		l.Backend(badNS, "overlap-old", productlab.WebPort, web...)
		old := waitAllocated(t, l, badNS, "overlap-old", "bad-config-overlap-a")

		pool(t, "bad-config-overlap-b", overlapServices, `"2001:db8:1::1:200/120"`)
		for pool, other := range map[string]string{"bad-config-overlap-a": "bad-config-overlap-b", "bad-config-overlap-b": "bad-config-overlap-a"} {
			p := l.WaitPoolCondition(pool, v1alpha1.ConditionOverlapping, metav1.ConditionTrue, v1alpha1.ReasonOverlapsOtherPool, patience)
			if msg := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionOverlapping).Message; !strings.Contains(msg, `"`+other+`"`) {
				t.Errorf("pool %s: Overlapping message %q does not name %s", pool, msg, other)
			}
		}
		waitPoolIPv6Total(t, l, "bad-config-overlap-b", "128")
		l.Apply(testService{Namespace: badNS, Name: "overlap-new", Annotations: pinned("bad-config-overlap-b"), Spec: v6}.YAML())
		newer := waitAllocated(t, l, badNS, "overlap-new", "bad-config-overlap-b")
		if netip.MustParsePrefix("2001:db8:1::1:200/121").Contains(newer.ingress[0]) {
			t.Errorf("the newer pool handed out %v, an address the older pool keeps", newer.ingress[0])
		}
		assertUnchanged(t, l, badNS, map[string]serviceState{"overlap-old": old}, "after an overlapping pool appeared")
		node := l.WaitAnnouncer(old.ingress[0], patience, nil)
		r := reach(t, l, old.ingress[0], 80)
		t.Logf("%v is announced over NDP by %s; the client reached %s", old.ingress[0], node, r.Pod)

		// The overlap gone, the older pool says so.
		if out, err := l.Kubectl("delete", "-n", badNS, "service/overlap-new"); err != nil {
			t.Fatalf("delete service: %v\n%s", err, out)
		}
		if out, err := l.Kubectl("delete", "ippool/bad-config-overlap-b", "--timeout=50s"); err != nil {
			t.Fatalf("delete ippool: %v\n%s", err, out)
		}
		l.WaitPoolCondition("bad-config-overlap-a", v1alpha1.ConditionOverlapping, metav1.ConditionFalse, v1alpha1.ReasonNoOverlap, patience)
	})

	t.Run("pools the CRD refuses", func(t *testing.T) {
		l := l.For(t)
		for _, entry := range []string{"198.51.100.300/32", "198.51.100.169/30", "198.51.100.175-198.51.100.172", "198.51.100.172-2001:db8:1::1:2ff"} {
			f := filepath.Join(t.TempDir(), "pool.yaml")
			manifest := fmt.Sprintf("apiVersion: herald.dev/v1alpha1\nkind: IPPool\nmetadata: {name: bad-config-refused}\nspec:\n  addresses: [%q]\n", entry)
			if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := l.Kubectl("apply", "--server-side", "-f", f)
			if err == nil {
				l.Kubectl("delete", "ippool/bad-config-refused", "--wait=false")
				t.Errorf("the apiserver accepted an IPPool with %q:\n%s", entry, out)
				continue
			}
			if !strings.Contains(out, "spec.addresses") {
				t.Errorf("refusing %q, kubectl says %q, which does not point at spec.addresses", entry, strings.TrimSpace(out))
			}
			t.Logf("%q: %s", entry, strings.TrimSpace(out))
		}
	})

	probeStopped = true
	attempts := probe.Stop()
	if failed := productlab.Failed(attempts); len(failed) > 0 {
		logFailedConnections(t, l, bystander.ingress[0], failed)
		t.Errorf("%d of %d client connections to the bystander %v failed; first: %v", len(failed), len(attempts), bystander.ingress[0], failed[0].Err)
	} else if len(attempts) == 0 {
		t.Errorf("the client made no connection to the bystander")
	}
	assertUnchanged(t, l, badNS, map[string]serviceState{"bystander": bystander}, "after all the bad configuration")
}

// waitPoolIPv6Total waits until the IPPool counts total IPv6 addresses.
func waitPoolIPv6Total(t *testing.T, l *productlab.Lab, name, total string) {
	t.Helper()
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		p, err := l.Herald.HeraldV1alpha1().IPPools().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.IPv6 == nil || p.Status.IPv6.Total != total {
			return fmt.Errorf("ippool %s: ipv6 counts %+v, want total %s", name, p.Status.IPv6, total)
		}
		return nil
	})
}
