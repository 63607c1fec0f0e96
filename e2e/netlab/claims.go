package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/herald-dev/herald/config"
	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// The harnesses that play herald-controller's part (they write a Service's
// status.loadBalancer.ingress themselves) must also write the AddressClaims
// that grant the addresses, since a speaker announces an address only while
// its claim lists the Service (docs/claims.md). WriteClaim and ReleaseClaim
// are that part of the contract, shared by every such harness: claim before
// the status names the address, release after it no longer does.

// WriteClaim makes the AddressClaim of addr (named config.ClaimName(addr))
// record pool and list svc as a holder, as v1alpha1.HolderLoadBalancer or
// v1alpha1.HolderExternalIP. It creates the claim, or adds svc to the
// holders of an existing one, replacing a holder with svc's namespace and
// name (a Service deleted and created again under the same name). A claim
// that exists with another pool is an error: a claim's pool never changes.
// svc must carry its UID (as the API server returns it).
func WriteClaim(ctx context.Context, c heraldclient.Interface, addr netip.Addr, pool string, svc *corev1.Service, as string) error {
	if svc.UID == "" {
		return fmt.Errorf("netlab: claim %s for Service %s/%s: the Service has no UID", addr, svc.Namespace, svc.Name)
	}
	addr = addr.Unmap().WithZone("")
	h := v1alpha1.AddressHolder{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: as}
	claims := c.HeraldV1alpha1().AddressClaims()
	name := config.ClaimName(addr)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		claim, err := claims.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			family := "IPv4"
			if addr.Is6() {
				family = "IPv6"
			}
			_, err = claims.Create(ctx, &v1alpha1.AddressClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: v1alpha1.AddressClaimSpec{Address: addr.String(), Family: family, Pool: pool,
					Holders: []v1alpha1.AddressHolder{h}, HolderCount: 1},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Created meanwhile: read it and add the holder.
				return apierrors.NewConflict(v1alpha1.Resource("addressclaims"), name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if claim.Spec.Pool != pool {
			return fmt.Errorf("the claim exists with pool %q, not %q", claim.Spec.Pool, pool)
		}
		sameService := func(o v1alpha1.AddressHolder) bool {
			return o.Namespace == h.Namespace && o.Name == h.Name && o.As == h.As
		}
		if i := slices.IndexFunc(claim.Spec.Holders, sameService); i >= 0 && claim.Spec.Holders[i].UID == h.UID {
			return nil
		}
		holders := append(slices.DeleteFunc(slices.Clone(claim.Spec.Holders), sameService), h)
		claim.Spec.Holders, claim.Spec.HolderCount = holders, int32(len(holders))
		_, err = claims.Update(ctx, claim, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("netlab: claim %s in pool %q for Service %s/%s: %w", addr, pool, svc.Namespace, svc.Name, err)
	}
	return nil
}

// ReleaseClaim removes the Service namespace/name, held as as (empty: either
// way), from the holders of addr's AddressClaim, and deletes the claim when
// no holder is left (with a resourceVersion precondition, so a holder added
// meanwhile is kept). A missing claim is not an error.
func ReleaseClaim(ctx context.Context, c heraldclient.Interface, addr netip.Addr, namespace, name, as string) error {
	claims := c.HeraldV1alpha1().AddressClaims()
	claimName := config.ClaimName(addr)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		claim, err := claims.Get(ctx, claimName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		holders := slices.DeleteFunc(slices.Clone(claim.Spec.Holders), func(o v1alpha1.AddressHolder) bool {
			return o.Namespace == namespace && o.Name == name && (as == "" || o.As == as)
		})
		switch {
		case len(holders) == len(claim.Spec.Holders):
			return nil
		case len(holders) == 0:
			return claims.Delete(ctx, claimName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &claim.ResourceVersion}})
		}
		claim.Spec.Holders, claim.Spec.HolderCount = holders, int32(len(holders))
		_, err = claims.Update(ctx, claim, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("netlab: release the claim of %s by Service %s/%s: %w", addr, namespace, name, err)
	}
	return nil
}
