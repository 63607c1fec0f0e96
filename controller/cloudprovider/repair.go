package cloudprovider

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/ipam"
)

// repairQueue holds the Services (namespace/name) that an AddressClaim
// stopped listing: a claim edited or deleted by hand, by another allocator,
// or by the provider itself. The upstream service controller would not call
// the provider for them, since nothing changed in the Services.
type repairQueue struct {
	queue workqueue.TypedRateLimitingInterface[string]
}

func newRepairQueue() *repairQueue {
	return &repairQueue{queue: workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "herald-cloud-provider-claims"})}
}

// lost queues the holders of the claim old that obj (nil when the claim was
// deleted) no longer lists.
func (r *repairQueue) lost(old, obj any) {
	for _, key := range lostHolders(old, obj) {
		r.queue.Add(key)
	}
}

// lostHolders returns the namespace/name of each holder of the claim old
// that obj does not list with the same UID and kind, sorted, without
// duplicates. obj nil means the claim is gone; old may be a
// cache.DeletedFinalStateUnknown.
func lostHolders(old, obj any) []string {
	if t, ok := old.(cache.DeletedFinalStateUnknown); ok {
		old = t.Obj
	}
	before, ok := old.(*v1alpha1.AddressClaim)
	if !ok {
		return nil
	}
	var after []v1alpha1.AddressHolder
	if c, ok := obj.(*v1alpha1.AddressClaim); ok {
		after = c.Spec.Holders
	}
	var keys []string
	for _, h := range before.Spec.Holders {
		if !slices.ContainsFunc(after, func(a v1alpha1.AddressHolder) bool { return a.UID == h.UID && a.As == h.As }) {
			keys = append(keys, h.Namespace+"/"+h.Name)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// runRepairs repairs the queued Services, once the import is done, until
// ctx ends; a failure is retried with backoff.
func (p *Provider) runRepairs(ctx context.Context, kube kubernetes.Interface, r *repairQueue) {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return
	}
	for {
		key, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		if err := p.repair(ctx, kube, key); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("AddressClaim repair failed, will retry", "service", key, "err", err)
			r.queue.AddRateLimited(key)
		} else {
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}

// repair brings the Core and the claims back in line for the Service key,
// which a claim no longer lists, reading the Service live:
//   - it is gone: what the Core held for it is released, and its holders
//     are removed from every claim (controller.Claims.Release);
//   - it is one of the provider's (type LoadBalancer, no class), not being
//     deleted, and the Core holds addresses for it: its claims are made to
//     list it again (controller.Claims.EnsureLoadBalancer, which says so in
//     an Event), so speakers keep announcing it. A Service being deleted is
//     left to the upstream controller's EnsureLoadBalancerDeleted;
//   - another allocator serves it: the Core forgets its copy of that
//     Service's holdings, which the claims no longer back, so their
//     addresses are free for the provider again (an address still claimed is
//     adopted when the provider tries it, and the Service decided again).
func (p *Provider) repair(ctx context.Context, kube kubernetes.Interface, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	defer p.services.Lock(key)()
	svc, err := kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = p.claims.Release(ctx, p.core, ns, name)
		return err
	}
	if err != nil {
		return err
	}
	if servedHere(svc) {
		if svc.DeletionTimestamp != nil {
			return nil
		}
		if res, ok := p.core.Held(ns, name, ipam.LoadBalancer); ok && len(res.Addresses) > 0 {
			_, err = p.claims.EnsureLoadBalancer(ctx, p.core, svc)
			return err
		}
		return nil
	}
	p.core.ReleaseLoadBalancer(ns, name)
	p.core.ReleaseExternalIPs(ns, name)
	return nil
}

// servedHere reports whether the upstream service controller hands svc to
// the provider: a Service of type LoadBalancer without a class.
func servedHere(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && controller.Serves(svc, "")
}
