package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/ipam"
)

// syncService reconciles one Service: it decides its allocations, writes
// spec.externalIPs when an address was allocated for it, and brings its
// status (ingress and conditions) in line, with an Event for each changed
// decision. A Service that is gone releases what it held.
func (c *Controller) syncService(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		c.log.Error("invalid service key", "key", key, "err", err)
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.setWaiting(key, false)
		var sharers []string
		for _, kind := range []ipam.Kind{ipam.LoadBalancer, ipam.ExternalIP} {
			if held, ok := c.core.Held(ns, name, kind); ok && held.Sharing != nil {
				sharers = append(sharers, c.core.CoHolders(ns, name, held.Addresses)...)
			}
		}
		released, err := c.claims.Release(ctx, c.core, ns, name)
		if released {
			c.log.Debug("released addresses of deleted service", "service", key)
			c.kickWaiting(key)
			c.poolsChanged()
		}
		c.kick(sharers)
		return err
	}
	if err != nil {
		return fmt.Errorf("controller: get service %s: %w", key, err)
	}

	// The claims record the decision before the status names it.
	d, err := c.claims.Ensure(ctx, c.core, svc)
	c.setWaiting(key, d.LoadBalancer.Waiting || d.ExternalIPs.Waiting)
	if d.LoadBalancer.Freed || d.ExternalIPs.Freed {
		c.kickWaiting(key)
	}
	if d.LoadBalancer.Changed || d.ExternalIPs.Changed {
		c.poolsChanged()
	}
	for _, dec := range []Decision{d.LoadBalancer, d.ExternalIPs} {
		if dec.Reshared {
			// Whether the co-holders conflict with this Service may have
			// changed (both sides of a cross-namespace opt-in, a port or
			// policy edit): their conditions are decided again.
			c.kick(c.core.CoHolders(ns, name, dec.Previous, dec.Addresses))
		}
	}
	if err != nil {
		return err
	}

	if d.ExternalIPs.WriteExternalIPs && len(svc.Spec.ExternalIPs) == 0 {
		upd := svc.DeepCopy()
		for _, a := range d.ExternalIPs.Addresses {
			upd.Spec.ExternalIPs = append(upd.Spec.ExternalIPs, a.String())
		}
		svc, err = c.kube.CoreV1().Services(ns).Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("controller: write spec.externalIPs of service %s: %w", key, err)
		}
	}
	if svc, err = c.writeServiceStatus(ctx, svc, d); err != nil || svc == nil {
		return err
	}
	// The status no longer names what the Service released: its claims go.
	return c.claims.Settle(ctx, c.core, svc, d, c.takeOrphansDue(key))
}

// writeServiceStatus writes the status d implies, if it differs from svc's,
// and emits an Event for each condition whose decision changed. A Service of
// another controller's class is left alone unless this controller just
// released something of it. It returns the Service as it is afterwards (nil
// when it is gone).
func (c *Controller) writeServiceStatus(ctx context.Context, svc *corev1.Service, d ServiceDecision) (*corev1.Service, error) {
	if !c.core.Serves(svc) && !d.LoadBalancer.Changed && !d.ExternalIPs.Changed {
		return svc, nil
	}
	next, changed := desiredStatus(svc, d)
	if !changed {
		return svc, nil
	}
	upd := svc.DeepCopy()
	upd.Status = next
	written, err := c.kube.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controller: write status of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	for _, dec := range []Decision{d.LoadBalancer, d.ExternalIPs} {
		if !dec.Wanted {
			continue
		}
		old := meta.FindStatusCondition(svc.Status.Conditions, dec.Condition.Type)
		if old != nil && old.Status == dec.Condition.Status && old.Reason == dec.Condition.Reason && old.Message == dec.Condition.Message {
			continue
		}
		c.recorder.Event(svc, eventType(dec.Condition.Reason), dec.Condition.Reason, dec.Condition.Message)
		c.m.decisions.WithLabelValues(dec.Condition.Type, dec.Condition.Reason).Inc()
		c.log.Debug("service decision", "service", svc.Namespace+"/"+svc.Name, "condition", dec.Condition.Type,
			"reason", dec.Condition.Reason, "message", dec.Condition.Message)
	}
	return written, nil
}

// desiredStatus returns svc's status as decision d wants it, and whether it
// differs from the current one. The comparison is semantic: ingress entries
// with the same IPs in the same order are kept as they are (the apiserver
// fills in ipMode), and conditions count as changed only when their status,
// reason, message or observed generation differ.
func desiredStatus(svc *corev1.Service, d ServiceDecision) (corev1.ServiceStatus, bool) {
	st := *svc.Status.DeepCopy()
	changed := false
	if d.LoadBalancer.Wanted && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if !sameIngress(svc.Status.LoadBalancer.Ingress, d.LoadBalancer.Addresses) {
			st.LoadBalancer.Ingress = d.LoadBalancer.Ingress()
			changed = true
		}
	}
	for _, dec := range []Decision{d.LoadBalancer, d.ExternalIPs} {
		condType := config.ConditionAddressAllocated
		if dec.Kind == ipam.ExternalIP {
			condType = config.ConditionExternalIPsAccepted
		}
		if !dec.Wanted {
			if meta.RemoveStatusCondition(&st.Conditions, condType) {
				changed = true
			}
			continue
		}
		cond := dec.Condition
		cond.ObservedGeneration = svc.Generation
		if meta.SetStatusCondition(&st.Conditions, cond) {
			changed = true
		}
	}
	return st, changed
}

// sameIngress reports whether ingress lists exactly addrs, in order, as IPs.
func sameIngress(ingress []corev1.LoadBalancerIngress, addrs []netip.Addr) bool {
	if len(ingress) != len(addrs) {
		return false
	}
	for i, ing := range ingress {
		a, err := netip.ParseAddr(ing.IP)
		if err != nil || a.Unmap() != addrs[i] || ing.Hostname != "" || len(ing.Ports) > 0 {
			return false
		}
	}
	return true
}

// eventType is Normal for a decision that gave the Service what it asked
// for, Warning otherwise.
func eventType(reason string) string {
	if slices.Contains([]string{ReasonAllocated, ReasonExternalIPsAccepted, ReasonExternalIPAllocated}, reason) {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}
