package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/migrate"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// heraldObject is one Herald resource to write.
type heraldObject struct {
	resource string
	obj      metav1.Object
	raw      runtime.Object
}

func planObjects(p *migrate.Plan) []heraldObject {
	var out []heraldObject
	for _, o := range p.IPPools {
		out = append(out, heraldObject{"ippools", o, o})
	}
	for _, o := range p.BGPPeers {
		out = append(out, heraldObject{"bgppeers", o, o})
	}
	for _, o := range p.L2Advertisements {
		out = append(out, heraldObject{"l2advertisements", o, o})
	}
	for _, o := range p.BGPAdvertisements {
		out = append(out, heraldObject{"bgpadvertisements", o, o})
	}
	return out
}

// applyPlan writes the plan: first it checks everything it can (Herald's
// CRDs, existing objects of the same names, the Services' addresses as
// planned), so that a refusal changes nothing; then it applies the
// resources, then the annotations.
func applyPlan(ctx context.Context, c *clients, p *migrate.Plan, out io.Writer) error {
	served, err := c.kube.Discovery().ServerResourcesForGroupVersion(v1alpha1.SchemeGroupVersion.String())
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("discovering %s: %w", v1alpha1.SchemeGroupVersion, err)
	}
	objs := planObjects(p)
	for _, o := range objs {
		if served == nil || !slices.ContainsFunc(served.APIResources, func(r metav1.APIResource) bool { return r.Name == o.resource }) {
			return fmt.Errorf("nothing applied: the API server does not serve Herald's %s (%s): install Herald's CRDs first (kubectl apply --server-side -k deploy/crds, docs/migration.md)", o.resource, v1alpha1.SchemeGroupVersion)
		}
	}
	for _, o := range objs {
		gvr := v1alpha1.SchemeGroupVersion.WithResource(o.resource)
		cur, err := c.dynamic.Resource(gvr).Get(ctx, o.obj.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("nothing applied: reading %s %s: %w", o.resource, o.obj.GetName(), err)
		case cur.GetLabels()[migrate.LabelMigratedFrom] == "":
			return fmt.Errorf("nothing applied: %s %s already exists and was not written by a migration: rename or delete it first", o.resource, o.obj.GetName())
		}
	}
	for _, s := range p.Services {
		svc, err := c.kube.CoreV1().Services(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("nothing applied: reading Service %s/%s: %w", s.Namespace, s.Name, err)
		}
		if got := fmt.Sprint(addrsOf(svc)); got != fmt.Sprint(s.Now) {
			return fmt.Errorf("nothing applied: Service %s/%s now holds %s, not %v as planned: run the plan again", s.Namespace, s.Name, got, s.Now)
		}
	}
	for _, o := range objs {
		data, err := json.Marshal(o.raw)
		if err != nil {
			return err
		}
		gvr := v1alpha1.SchemeGroupVersion.WithResource(o.resource)
		if _, err := c.dynamic.Resource(gvr).Patch(ctx, o.obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}); err != nil {
			return fmt.Errorf("applying %s %s (the objects before it are applied; run again to finish): %w", o.resource, o.obj.GetName(), err)
		}
		fmt.Fprintf(out, "applied %s %s\n", o.resource, o.obj.GetName())
	}
	for _, s := range p.Services {
		if len(s.Annotations) == 0 {
			continue
		}
		patch := map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": s.Name, "namespace": s.Namespace, "annotations": s.Annotations},
		}
		data, err := json.Marshal(patch)
		if err != nil {
			return err
		}
		gvr := schema.GroupVersionResource{Version: "v1", Resource: "services"}
		if _, err := c.dynamic.Resource(gvr).Namespace(s.Namespace).Patch(ctx, s.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}); err != nil {
			return fmt.Errorf("annotating Service %s/%s (the objects before it are applied; run again to finish): %w", s.Namespace, s.Name, err)
		}
		fmt.Fprintf(out, "annotated Service %s/%s\n", s.Namespace, s.Name)
	}
	fmt.Fprintln(out, "\nApplied. No address changed. Next: stop MetalLB, then start Herald's controller and speakers (docs/migration.md).")
	return nil
}
