package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

// Reasons of the IPPool conditions the controller adds to those the
// configuration model decides (Ready, Overlapping).
const (
	// ReasonAllAddressesInPool: no Service holds an address outside the pool.
	ReasonAllAddressesInPool = "AllAddressesInPool"
)

// maxListed bounds how many addresses or Services a pool condition names.
const maxListed = 5

// syncPool keeps an IPPool's finalizer and status: the finalizer stays while
// the pool is not deleted or still has allocations; the status carries the
// model's conditions, AddressesOutsidePool, DeletionBlocked while a deletion
// waits, and exact per-family counts.
func (c *Controller) syncPool(ctx context.Context, name string) error {
	pool, err := c.pools.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("controller: get ippool %s: %w", name, err)
	}
	client := c.herald.HeraldV1alpha1().IPPools()
	model := c.core.Model()
	has := slices.Contains(pool.Finalizers, PoolFinalizer)
	switch {
	case pool.DeletionTimestamp == nil && !has:
		upd := pool.DeepCopy()
		upd.Finalizers = append(upd.Finalizers, PoolFinalizer)
		if pool, err = client.Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return ignoreNotFound(fmt.Errorf("controller: add finalizer to ippool %s: %w", name, err))
		}
	case pool.DeletionTimestamp != nil && has:
		if model.PoolServes(name) {
			// The model in use does not know yet that the pool is being
			// deleted, so it could still allocate from it: rebuild first.
			c.objQueue.Add(modelKey)
			c.objQueue.AddAfter(objectKey{config.KindIPPool, name}, poolStatusDelay)
			return nil
		}
		if c.core.InUse(name) == 0 && c.claims.PoolClaims(name) == 0 {
			upd := pool.DeepCopy()
			upd.Finalizers = slices.DeleteFunc(upd.Finalizers, func(f string) bool { return f == PoolFinalizer })
			_, err := client.Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
			if err == nil {
				c.log.Info("ippool released its last address; deletion proceeds", "ippool", name)
			}
			return ignoreNotFound(err)
		}
	}
	if _, known := model.Pool(name); !known {
		return nil // the model rebuild queued with this pool's event will queue it again
	}

	st := pool.Status.DeepCopy()
	st.ObservedGeneration = pool.Generation
	changed := st.ObservedGeneration != pool.Status.ObservedGeneration
	for _, cond := range model.Conditions(config.ObjectRef{Kind: config.KindIPPool, Name: name}, pool.Generation) {
		changed = meta.SetStatusCondition(&st.Conditions, cond) || changed
	}
	changed = meta.SetStatusCondition(&st.Conditions, c.outsideCondition(name, pool.Generation)) || changed
	if pool.DeletionTimestamp != nil {
		changed = meta.SetStatusCondition(&st.Conditions, c.deletionCondition(name, pool.Generation)) || changed
	} else {
		changed = meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionDeletionBlocked) || changed
	}
	st.IPv4, st.IPv6 = nil, nil
	for _, ps := range c.core.Stats().Pools {
		if ps.Name == name {
			st.IPv4, st.IPv6 = counts(ps.IPv4), counts(ps.IPv6)
		}
	}
	if !equality.Semantic.DeepEqual(st.IPv4, pool.Status.IPv4) || !equality.Semantic.DeepEqual(st.IPv6, pool.Status.IPv6) {
		changed = true
	}
	if !changed {
		return nil
	}
	upd := pool.DeepCopy()
	upd.Status = *st
	_, err = client.UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
	return ignoreNotFound(err)
}

// counts converts one family's IPAM counts to the status form, or nil when
// the pool has no address of that family and none is held.
func counts(fs ipam.FamilyStats) *v1alpha1.AddressCounts {
	if fs.Total.IsZero() && fs.Used.IsZero() {
		return nil
	}
	return &v1alpha1.AddressCounts{Total: fs.Total.String(), Used: fs.Used.String(), Free: fs.Free.String()}
}

// outsideCondition reports the addresses Services hold outside the pool's
// usable addresses, which an edit left there: they keep them.
func (c *Controller) outsideCondition(pool string, generation int64) metav1.Condition {
	var out []ipam.Outside
	for _, o := range c.core.OutsidePool() {
		if o.Pool == pool {
			out = append(out, o)
		}
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionAddressesOutsidePool, ObservedGeneration: generation}
	if len(out) == 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonAllAddressesInPool
		cond.Message = "Every address allocated from this pool is a usable address of the pool."
		return cond
	}
	var parts []string
	for i, o := range out {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(out)-maxListed))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s/%s, %s)", o.Addr, o.Owner.Namespace, o.Owner.Name, o.Reason))
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse
	cond.Message = fmt.Sprintf("%d %s held by Services %s outside the pool's usable addresses since an edit; the Services keep them, and nothing new is allocated there: %s.",
		len(out), plural(len(out), "address", "addresses"), plural(len(out), "lies", "lie"), strings.Join(parts, ", "))
	return cond
}

// deletionCondition reports whether a deleted pool waits for its last
// allocation to be released.
func (c *Controller) deletionCondition(pool string, generation int64) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionDeletionBlocked, ObservedGeneration: generation}
	n := max(c.core.InUse(pool), c.claims.PoolClaims(pool))
	if n == 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonAllAddressesInPool
		cond.Message = "No Service holds an address of this pool; the deletion proceeds."
		return cond
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse
	cond.Message = fmt.Sprintf("The pool is being deleted, but %d %s still %s its addresses: %s. It allocates nothing new, and goes once the last is released.",
		n, plural(n, "allocation", "allocations"), plural(n, "holds", "hold"), c.holdersOf(pool, n))
	return cond
}

// holdersOf names up to maxListed Services holding addresses of pool.
func (c *Controller) holdersOf(pool string, n int) string {
	svcs, _ := c.services.List(labels.Everything())
	var names []string
	for _, s := range svcs {
		for _, kind := range []ipam.Kind{ipam.LoadBalancer, ipam.ExternalIP} {
			if r, ok := c.core.Held(s.Namespace, s.Name, kind); ok && r.Pool == pool {
				names = append(names, s.Namespace+"/"+s.Name)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > maxListed {
		return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(" and %d more", n-maxListed)
	}
	return strings.Join(names, ", ")
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
