package controller

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

// TestClaimsEditedByHand deletes an AddressClaim, edits one so that it no
// longer lists its only holder (another Service's name takes its place),
// and edits a shared one to drop one of its two holders, as a cluster admin
// could without the admission policy. Each time the controller restores the
// claim from the Services that hold the address, says so with a Warning
// Event AddressClaimRestored on the Service, and the Service is not written
// at all: its address never changes.
func TestClaimsEditedByHand(t *testing.T) {
	e := newEnv(t)
	const ns = "claims-hand"
	e.namespace(t, ns, nil)
	e.createPool(t, "hand", []string{"198.51.100.0/28", "2001:db8:70::/120"})
	e.startController(t, nil)
	claims := e.herald.HeraldV1alpha1().AddressClaims()
	ctx := context.Background()

	// addressed creates a Service and waits for its address and its claim.
	addressed := func(t *testing.T, name string, opts ...svcOpt) (*corev1.Service, string) {
		t.Helper()
		e.createService(t, ns, name, opts...)
		addr := e.waitAnyIngress(t, ns, name, 1)[0]
		e.waitClaimsMatch(t)
		return e.getService(t, ns, name), addr
	}
	// restored waits for the Event on each Service and for the claim of addr
	// to list exactly them again, then checks that none was written.
	restored := func(t *testing.T, addr string, svcs ...*corev1.Service) {
		t.Helper()
		name := config.ClaimName(mustAddr(addr))
		for _, s := range svcs {
			e.waitEvent(t, ns, s.Name, corev1.EventTypeWarning, controller.ReasonAddressClaimRestored, name, addr)
		}
		e.waitClaimsMatch(t)
		cl := e.getClaim(t, addr)
		if cl.Spec.Pool != "hand" {
			t.Errorf("restored claim %s has pool %q, want %q", name, cl.Spec.Pool, "hand")
		}
		for _, s := range svcs {
			now := e.getService(t, ns, s.Name)
			if now.ResourceVersion != s.ResourceVersion || !slices.Equal(ingressIPs(now), ingressIPs(s)) {
				t.Errorf("service %s was written: ingress %v rv %s -> ingress %v rv %s", s.Name,
					ingressIPs(s), s.ResourceVersion, ingressIPs(now), now.ResourceVersion)
			}
		}
	}

	t.Run("a deleted claim", func(t *testing.T) {
		svc, addr := addressed(t, "deleted")
		if err := claims.Delete(ctx, config.ClaimName(mustAddr(addr)), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		restored(t, addr, svc)
	})

	t.Run("a claim listing another Service instead", func(t *testing.T) {
		svc, addr := addressed(t, "replaced", dualStack(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol))
		edit := func(cl *v1alpha1.AddressClaim) {
			cl.Spec.Holders = []v1alpha1.AddressHolder{{Namespace: ns, Name: "nobody", UID: "00000000-0000-0000-0000-00000000dead", As: v1alpha1.HolderLoadBalancer}}
			cl.Spec.HolderCount = 1
		}
		e.editClaim(t, addr, edit)
		restored(t, addr, svc)
	})

	t.Run("a shared claim without one of its holders", func(t *testing.T) {
		a, addr := addressed(t, "shared-a", annotate(config.AnnotationSharingKey, "hand"), withPorts(80))
		e.createService(t, ns, "shared-b", annotate(config.AnnotationSharingKey, "hand"), withPorts(443))
		e.waitIngress(t, ns, "shared-b", addr)
		e.waitClaimsMatch(t)
		b := e.getService(t, ns, "shared-b")
		e.editClaim(t, addr, func(cl *v1alpha1.AddressClaim) {
			cl.Spec.Holders = slices.DeleteFunc(cl.Spec.Holders, func(h v1alpha1.AddressHolder) bool { return h.UID == string(b.UID) })
			cl.Spec.HolderCount = int32(len(cl.Spec.Holders))
		})
		restored(t, addr, b)
		for _, ev := range e.serviceEvents(t, ns, a.Name) {
			if ev.Reason == controller.ReasonAddressClaimRestored {
				t.Errorf("shared-a, which the edit left in the claim, got %s: %s", ev.Reason, ev.Message)
			}
		}
	})
}

// editClaim updates the claim of addr as a user would, retrying on conflict.
func (e *env) editClaim(t *testing.T, addr string, edit func(*v1alpha1.AddressClaim)) {
	t.Helper()
	claims := e.herald.HeraldV1alpha1().AddressClaims()
	name := config.ClaimName(mustAddr(addr))
	err := retryConflict(func() error {
		cl, err := claims.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(cl)
		_, err = claims.Update(context.Background(), cl, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("edit addressclaim %s: %v", name, err)
	}
}
