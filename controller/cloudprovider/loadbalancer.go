package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	cloud "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/api"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/ipam"
)

// loadBalancer is the provider's cloud.LoadBalancer. Every method treats the
// Service as read-only, and holds the Service's lock: the upstream
// controller never calls concurrently for one Service, but the claim repair
// may, and controller.Claims requires that nothing does.
type loadBalancer struct{ p *Provider }

var _ cloud.LoadBalancer = loadBalancer{}

// GetLoadBalancer reports the addresses the Service holds in the Core, and
// whether it holds any.
func (lb loadBalancer) GetLoadBalancer(ctx context.Context, _ string, svc *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	if err := lb.p.waitReady(ctx); err != nil {
		return nil, false, err
	}
	res, ok := lb.p.core.Held(svc.Namespace, svc.Name, ipam.LoadBalancer)
	if !ok || len(res.Addresses) == 0 {
		return nil, false, nil
	}
	return &corev1.LoadBalancerStatus{Ingress: controller.IngressFor(res.Addresses)}, true, nil
}

// GetLoadBalancerName names the load balancer of a Service after the
// Service itself, namespace/name, as Herald's allocations are keyed.
func (loadBalancer) GetLoadBalancerName(_ context.Context, _ string, svc *corev1.Service) string {
	return svc.Namespace + "/" + svc.Name
}

// EnsureLoadBalancer makes the Service hold the addresses it asks for (see
// controller.Core.EnsureLoadBalancer), makes their AddressClaims list it
// (controller.Claims.EnsureLoadBalancer: an address another allocator
// claimed first is adopted and the Service decided again), and only then
// returns them as its status, for the upstream controller to write. The
// nodes are not used: speakers choose the announcing nodes. When the Service
// gets no address it returns the decision's error: a *api.RetryError,
// retried after Config.WaitingRetry, when capacity appearing could help, and
// the error itself (retried with backoff) when the Service's own input is
// wrong. A failed claim write is an error too: no address is returned
// without its claim.
func (lb loadBalancer) EnsureLoadBalancer(ctx context.Context, _ string, svc *corev1.Service, _ []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	if err := lb.p.waitReady(ctx); err != nil {
		return nil, err
	}
	return lb.p.ensure(ctx, svc)
}

// UpdateLoadBalancer is called when the cluster's nodes change. Herald's
// addresses do not depend on nodes, so it re-runs the same decision as
// EnsureLoadBalancer (which moves nothing for an unchanged Service, and
// restores a claim that lost it) and reports only its error.
func (lb loadBalancer) UpdateLoadBalancer(ctx context.Context, _ string, svc *corev1.Service, _ []*corev1.Node) error {
	if err := lb.p.waitReady(ctx); err != nil {
		return err
	}
	_, err := lb.p.ensure(ctx, svc)
	return err
}

// EnsureLoadBalancerDeleted releases the load-balancer addresses the
// Service holds and removes it from their AddressClaims (a claim left
// without holders is deleted); it succeeds when it held none.
func (lb loadBalancer) EnsureLoadBalancerDeleted(ctx context.Context, _ string, svc *corev1.Service) error {
	if err := lb.p.waitReady(ctx); err != nil {
		return err
	}
	defer lb.p.services.Lock(svc.Namespace + "/" + svc.Name)()
	// controller.Claims finds the claims to leave in its cache: let the
	// cache see the claims this provider wrote for the Service, even just
	// now, and then see them go.
	held, _ := lb.p.core.Held(svc.Namespace, svc.Name, ipam.LoadBalancer)
	lb.p.waitClaimCache(ctx, svc, func(listed []netip.Addr) bool {
		return !slices.ContainsFunc(held.Addresses, func(a netip.Addr) bool { return !slices.Contains(listed, a) })
	})
	if err := lb.p.claims.ReleaseLoadBalancer(ctx, lb.p.core, svc); err != nil {
		return fmt.Errorf("cloudprovider: release the addresses of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	// Until the cache sees them go, a Service deciding next could find svc
	// in a claim the cache still holds and, svc being alive until its
	// finalizer goes, adopt the address back for it.
	lb.p.waitClaimCache(ctx, svc, func(listed []netip.Addr) bool { return len(listed) == 0 })
	return nil
}

// claimCacheWait bounds how long the provider waits for the AddressClaims
// cache to see its own writes.
const claimCacheWait = 5 * time.Second

// waitClaimCache waits until done, given the addresses whose claims the
// AddressClaims cache shows listing svc as a load-balancer holder, reports
// true, or claimCacheWait passes (then it logs and returns: the repair and
// herald-controller's catch what is left).
func (p *Provider) waitClaimCache(ctx context.Context, svc *corev1.Service, done func(listed []netip.Addr) bool) {
	listed := func() []netip.Addr {
		var out []netip.Addr
		objs, _ := p.claimIndexer.ByIndex(controller.ClaimsByHolder, svc.Namespace+"/"+svc.Name)
		for _, obj := range objs {
			c, ok := obj.(*v1alpha1.AddressClaim)
			if !ok || !slices.ContainsFunc(c.Spec.Holders, func(h v1alpha1.AddressHolder) bool {
				return h.UID == string(svc.UID) && h.As == v1alpha1.HolderLoadBalancer
			}) {
				continue
			}
			if a, err := config.ParseClaimName(c.Name); err == nil {
				out = append(out, a)
			}
		}
		return out
	}
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, claimCacheWait, true, func(context.Context) (bool, error) {
		return done(listed()), nil
	})
	if err != nil {
		p.cfg.Logger.Warn("the AddressClaims cache did not catch up", "service", svc.Namespace+"/"+svc.Name, "err", err)
	}
}

// ensure decides svc's load-balancer addresses and records them in their
// claims, under the Service's lock, and translates the decision.
func (p *Provider) ensure(ctx context.Context, svc *corev1.Service) (*corev1.LoadBalancerStatus, error) {
	defer p.services.Lock(svc.Namespace + "/" + svc.Name)()
	d, err := p.claims.EnsureLoadBalancer(ctx, p.core, svc)
	if err != nil {
		return nil, fmt.Errorf("cloudprovider: record the addresses of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return p.status(svc, d)
}

// status translates a Decision for the upstream controller.
func (p *Provider) status(svc *corev1.Service, d controller.Decision) (*corev1.LoadBalancerStatus, error) {
	if len(d.Addresses) > 0 {
		// A partial grant (PreferDualStack with one family missing) is
		// still a load balancer; the second family waits for a later sync.
		return &corev1.LoadBalancerStatus{Ingress: d.Ingress()}, nil
	}
	if !d.Wanted {
		// The Core does not serve the Service (a class, or not of type
		// LoadBalancer); the upstream controller should not have asked.
		// The upstream controller compares this error with ==.
		return nil, cloud.ImplementedElsewhere
	}
	msg := fmt.Sprintf("cloudprovider: no address for service %s/%s: %s (%s)", svc.Namespace, svc.Name, d.Condition.Message, d.Condition.Reason)
	if d.Waiting {
		return nil, &retryError{api.NewRetryError(msg, p.cfg.WaitingRetry.Duration), d.Err}
	}
	if d.Err == nil {
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("%s: %w", msg, d.Err)
}

// retryError is an *api.RetryError that also unwraps to the decision's
// error, so callers can check it with errors.Is against the ipam sentinels.
type retryError struct {
	*api.RetryError
	cause error
}

func (e *retryError) Unwrap() []error { return []error{e.RetryError, e.cause} }

// waitReady waits until the initial import is done, ctx ends, or
// Config.ReadyWait passes; in the last case it asks for a retry.
func (p *Provider) waitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	default:
	}
	t := time.NewTimer(p.cfg.ReadyWait.Duration)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cloudprovider: waiting for the initial import: %w", ctx.Err())
	case <-t.C:
		return api.NewRetryError(fmt.Sprintf("cloudprovider: not ready: %v", p.Ready()), time.Second)
	}
}
