package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// syncObjectStatus writes the conditions the configuration model decides
// for an L2Advertisement, BGPPeer or BGPAdvertisement, when they changed.
// The controller is the only writer of these conditions.
func (c *Controller) syncObjectStatus(ctx context.Context, key objectKey) error {
	model := c.core.Model()
	v1 := c.herald.HeraldV1alpha1()
	switch key.Kind {
	case config.KindL2Advertisement:
		return writeConditions(ctx, model, key, c.l2s.Get, v1.L2Advertisements().UpdateStatus,
			func(o *v1alpha1.L2Advertisement) (*[]metav1.Condition, *int64) {
				return &o.Status.Conditions, &o.Status.ObservedGeneration
			}, nil)
	case config.KindBGPPeer:
		return writeConditions(ctx, model, key, c.peers.Get, v1.BGPPeers().UpdateStatus,
			func(o *v1alpha1.BGPPeer) (*[]metav1.Condition, *int64) {
				return &o.Status.Conditions, &o.Status.ObservedGeneration
			}, c.peerBFD)
	case config.KindBGPAdvertisement:
		return writeConditions(ctx, model, key, c.bgpAds.Get, v1.BGPAdvertisements().UpdateStatus,
			func(o *v1alpha1.BGPAdvertisement) (*[]metav1.Condition, *int64) {
				return &o.Status.Conditions, &o.Status.ObservedGeneration
			}, nil)
	}
	return nil
}

// peerBFD returns a BGPPeer's BFDUp condition from the speakers' records
// (peerBFDCondition), or, when it has none, the condition type to remove.
func (c *Controller) peerBFD(name string, generation int64) ([]metav1.Condition, []string) {
	statuses, err := c.speakerStatuses.List(labels.Everything())
	if err != nil {
		return nil, nil
	}
	if cond := peerBFDCondition(name, statuses, generation); cond != nil {
		return []metav1.Condition{*cond}, nil
	}
	return nil, []string{ConditionBFDUp}
}

// statusObject is a Herald object whose status carries conditions: a
// pointer to L2Advertisement, BGPPeer or BGPAdvertisement.
type statusObject[T any] interface {
	*T
	metav1.Object
	DeepCopy() *T
}

// writeConditions reads key's object from the lister, sets the conditions
// the model decides on a copy of its status (status says where they live),
// and writes it through the status subresource when anything changed. An
// object gone (from the lister, or by the time of the write) is not an error.
// extra, when not nil, adds conditions that do not come from the model and
// names condition types to remove.
func writeConditions[T any, P statusObject[T]](ctx context.Context, model *config.Model, key objectKey,
	get func(name string) (P, error),
	update func(context.Context, P, metav1.UpdateOptions) (P, error),
	status func(P) (*[]metav1.Condition, *int64),
	extra func(name string, generation int64) (add []metav1.Condition, remove []string),
) error {
	obj, err := get(key.Name)
	if err != nil {
		return listerErr(err, key)
	}
	upd := P(obj.DeepCopy())
	conds, observed := status(upd)
	gen := upd.GetGeneration()
	want := model.Conditions(config.ObjectRef{Kind: key.Kind, Name: key.Name}, gen)
	var remove []string
	if extra != nil {
		add, rm := extra(key.Name, gen)
		want, remove = append(want, add...), rm
	}
	changed := applyConditions(conds, observed, want, gen)
	for _, t := range remove {
		changed = meta.RemoveStatusCondition(conds, t) || changed
	}
	if !changed {
		return nil
	}
	_, err = update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
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
