package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	cloud "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/api"

	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/ipam"
)

// loadBalancer is the provider's cloud.LoadBalancer. Every method treats the
// Service as read-only; the upstream controller guarantees that calls for
// one Service do not run concurrently, as controller.Core requires.
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
// controller.Core.EnsureLoadBalancer) and returns them as its status. The
// nodes are not used: speakers choose the announcing nodes. When the Service
// gets no address it returns the decision's error: a *api.RetryError,
// retried after Config.WaitingRetry, when capacity appearing could help, and
// the error itself (retried with backoff) when the Service's own input is
// wrong.
func (lb loadBalancer) EnsureLoadBalancer(ctx context.Context, _ string, svc *corev1.Service, _ []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	if err := lb.p.waitReady(ctx); err != nil {
		return nil, err
	}
	d := lb.p.core.EnsureLoadBalancer(svc)
	return lb.p.status(svc, d)
}

// UpdateLoadBalancer is called when the cluster's nodes change. Herald's
// addresses do not depend on nodes, so it re-runs the same decision as
// EnsureLoadBalancer (which moves nothing for an unchanged Service) and
// reports only its error.
func (lb loadBalancer) UpdateLoadBalancer(ctx context.Context, _ string, svc *corev1.Service, _ []*corev1.Node) error {
	if err := lb.p.waitReady(ctx); err != nil {
		return err
	}
	_, err := lb.p.status(svc, lb.p.core.EnsureLoadBalancer(svc))
	return err
}

// EnsureLoadBalancerDeleted releases the load-balancer addresses the
// Service holds; it succeeds when it held none.
func (lb loadBalancer) EnsureLoadBalancerDeleted(ctx context.Context, _ string, svc *corev1.Service) error {
	if err := lb.p.waitReady(ctx); err != nil {
		return err
	}
	lb.p.core.ReleaseLoadBalancer(svc.Namespace, svc.Name)
	return nil
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
