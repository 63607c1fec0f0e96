package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/ipam"
)

// TestImportFromClaims starts the provider over existing claims: a
// Service's claimed address is its own again (a restart moves nothing,
// whatever the Service asks meanwhile), and an address another allocator
// claimed is never handed out.
func TestImportFromClaims(t *testing.T) {
	kept := service("kept", func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = ingress("203.0.113.11").Ingress
	})
	foreign := service("foreign", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("herald.dev/herald") })
	fresh := service("fresh")
	f := readyProvider(t, pool("two", "203.0.113.10/31"), kept, foreign, fresh,
		claimOf("203.0.113.11", "two", kept), claimOf("203.0.113.10", "two", foreign))
	ctx := context.Background()

	st, exists, err := f.lb.GetLoadBalancer(ctx, "cluster", kept)
	if err != nil || !exists || !cmp.Equal(st, ingress("203.0.113.11")) {
		t.Errorf("GetLoadBalancer(kept) = %v, %v, %v; want its claimed address", st, exists, err)
	}
	st, err = f.lb.EnsureLoadBalancer(ctx, "cluster", kept, nil)
	if err != nil || !cmp.Equal(st, ingress("203.0.113.11")) {
		t.Errorf("EnsureLoadBalancer(kept) = %v, %v; want its claimed address", st, err)
	}
	if _, err := f.lb.EnsureLoadBalancer(ctx, "cluster", fresh, nil); !errorIs(err, ipam.ErrPoolExhausted) {
		t.Errorf("EnsureLoadBalancer(fresh) = %v; want the pool exhausted: both addresses are claimed", err)
	}
	if diff := cmp.Diff([]string{"ns/foreign"}, f.holders(t, "203.0.113.10")); diff != "" {
		t.Errorf("the other allocator's claim changed (-want +got):\n%s", diff)
	}
}

// TestClaimedElsewhere: an address another allocator claimed after the
// import (the provider's Core does not know it) is adopted when the
// provider chooses it, and the Service is decided again.
func TestClaimedElsewhere(t *testing.T) {
	other := service("other", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("herald.dev/herald") })
	mine := service("mine")
	f := readyProvider(t, pool("two", "203.0.113.10/31"), other, mine)
	ctx := context.Background()
	// herald-controller claims the first address after the provider's import.
	if _, err := f.herald.HeraldV1alpha1().AddressClaims().Create(ctx, claimOf("203.0.113.10", "two", other), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := f.lb.EnsureLoadBalancer(ctx, "cluster", mine, nil)
	if err != nil || !cmp.Equal(st, ingress("203.0.113.11")) {
		t.Fatalf("EnsureLoadBalancer(mine) = %v, %v; want the address nobody claimed", st, err)
	}
	for addr, want := range map[string][]string{"203.0.113.10": {"ns/other"}, "203.0.113.11": {"ns/mine"}} {
		if diff := cmp.Diff(want, f.holders(t, addr)); diff != "" {
			t.Errorf("holders of %s (-want +got):\n%s", addr, diff)
		}
	}
}

// TestRepair: a claim of the provider's Service deleted behind its back is
// restored (with an Event), without waiting for the upstream controller;
// the claim of another allocator's Service that goes frees its address for
// the provider.
func TestRepair(t *testing.T) {
	mine := service("mine")
	other := service("other", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("herald.dev/herald") })
	waiting := service("waiting")
	f := readyProvider(t, pool("two", "203.0.113.10/31"), mine, other, waiting, claimOf("203.0.113.11", "two", other))
	ctx := context.Background()
	claims := f.herald.HeraldV1alpha1().AddressClaims()
	if st, err := f.lb.EnsureLoadBalancer(ctx, "cluster", mine, nil); err != nil || !cmp.Equal(st, ingress("203.0.113.10")) {
		t.Fatalf("EnsureLoadBalancer(mine) = %v, %v", st, err)
	}

	if err := claims.Delete(ctx, "203.0.113.10", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mine's claim is restored", func() (bool, string) {
		got := f.holders(t, "203.0.113.10")
		return cmp.Equal(got, []string{"ns/mine"}), cmp.Diff([]string{"ns/mine"}, got)
	})
	eventually(t, "an Event says so", func() (bool, string) {
		evs, _ := f.kube.CoreV1().Events("ns").List(ctx, metav1.ListOptions{})
		for _, e := range evs.Items {
			if e.Reason == controller.ReasonAddressClaimRestored && e.InvolvedObject.Name == "mine" {
				return true, ""
			}
		}
		return false, "no AddressClaimRestored Event on mine"
	})

	if _, err := f.lb.EnsureLoadBalancer(ctx, "cluster", waiting, nil); !errorIs(err, ipam.ErrPoolExhausted) {
		t.Fatalf("EnsureLoadBalancer(waiting) = %v; want the pool exhausted", err)
	}
	// The other allocator releases its address: the provider's Core forgets it.
	if err := claims.Delete(ctx, "203.0.113.11", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "waiting gets the released address", func() (bool, string) {
		st, err := f.lb.EnsureLoadBalancer(ctx, "cluster", waiting, nil)
		return err == nil && cmp.Equal(st, ingress("203.0.113.11")), fmt.Sprint(st, err)
	})
}

func TestLostHolders(t *testing.T) {
	holder := func(name, uid, as string) v1alpha1.AddressHolder {
		return v1alpha1.AddressHolder{Namespace: "ns", Name: name, UID: uid, As: as}
	}
	claim := func(hs ...v1alpha1.AddressHolder) *v1alpha1.AddressClaim {
		return &v1alpha1.AddressClaim{Spec: v1alpha1.AddressClaimSpec{Holders: hs}}
	}
	a, b := holder("a", "ua", v1alpha1.HolderLoadBalancer), holder("b", "ub", v1alpha1.HolderLoadBalancer)
	for _, tt := range []struct {
		name     string
		old, obj any
		want     []string
	}{
		{"a holder added", claim(a), claim(a, b), nil},
		{"a holder removed", claim(a, b), claim(a), []string{"ns/b"}},
		{"deleted", claim(b, a), nil, []string{"ns/a", "ns/b"}},
		{"deleted, final state unknown", cache.DeletedFinalStateUnknown{Obj: claim(a)}, nil, []string{"ns/a"}},
		{"another UID under the same name", claim(a), claim(holder("a", "ua2", v1alpha1.HolderLoadBalancer)), []string{"ns/a"}},
		{"held another way", claim(a), claim(holder("a", "ua", v1alpha1.HolderExternalIP)), []string{"ns/a"}},
		{"not a claim", "junk", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, lostHolders(tt.old, tt.obj)); diff != "" {
				t.Errorf("lostHolders (-want +got):\n%s", diff)
			}
		})
	}
}

func errorIs(err, target error) bool { return errors.Is(err, target) }
