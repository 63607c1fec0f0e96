package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
)

// syncObjectStatus writes the conditions the configuration model decides
// for an L2Advertisement, BGPPeer or BGPAdvertisement, when they changed.
// The controller is the only writer of these conditions.
func (c *Controller) syncObjectStatus(ctx context.Context, key objectKey) error {
	model := c.core.Model()
	ref := config.ObjectRef{Kind: key.Kind, Name: key.Name}
	opts := metav1.UpdateOptions{FieldManager: FieldManager}
	v1 := c.herald.HeraldV1alpha1()
	var err error
	switch key.Kind {
	case config.KindL2Advertisement:
		obj, gerr := c.l2s.Get(key.Name)
		if gerr != nil {
			return listerErr(gerr, key)
		}
		st := obj.Status.DeepCopy()
		if applyConditions(&st.Conditions, &st.ObservedGeneration, model.Conditions(ref, obj.Generation), obj.Generation) {
			upd := obj.DeepCopy()
			upd.Status = *st
			_, err = v1.L2Advertisements().UpdateStatus(ctx, upd, opts)
		}
	case config.KindBGPPeer:
		obj, gerr := c.peers.Get(key.Name)
		if gerr != nil {
			return listerErr(gerr, key)
		}
		st := obj.Status.DeepCopy()
		if applyConditions(&st.Conditions, &st.ObservedGeneration, model.Conditions(ref, obj.Generation), obj.Generation) {
			upd := obj.DeepCopy()
			upd.Status = *st
			_, err = v1.BGPPeers().UpdateStatus(ctx, upd, opts)
		}
	case config.KindBGPAdvertisement:
		obj, gerr := c.bgpAds.Get(key.Name)
		if gerr != nil {
			return listerErr(gerr, key)
		}
		st := obj.Status.DeepCopy()
		if applyConditions(&st.Conditions, &st.ObservedGeneration, model.Conditions(ref, obj.Generation), obj.Generation) {
			upd := obj.DeepCopy()
			upd.Status = *st
			_, err = v1.BGPAdvertisements().UpdateStatus(ctx, upd, opts)
		}
	}
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("controller: write status of %s %s: %w", key.Kind, key.Name, err)
	}
	return nil
}

// applyConditions sets conds (and the observed generation) into a status,
// and reports whether anything changed apart from transition times.
func applyConditions(conditions *[]metav1.Condition, observed *int64, conds []metav1.Condition, generation int64) bool {
	changed := *observed != generation
	*observed = generation
	for _, cond := range conds {
		changed = meta.SetStatusCondition(conditions, cond) || changed
	}
	return changed
}

func listerErr(err error, key objectKey) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("controller: get %s %s: %w", key.Kind, key.Name, err)
}
