package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/migrate"
)

// migrateOptions are the flags of migrate metallb.
type migrateOptions struct {
	files           []string
	offline         bool
	apply           bool
	dropUnsupported bool
	output          string
}

// writePlan prints the plan as text, or with -o yaml the objects to apply
// (refused while the plan has a problem, so that no YAML that would move
// an address is ever printed).
func writePlan(p *migrate.Plan, o *migrateOptions, out, errOut io.Writer) error {
	switch o.output {
	case "":
		return p.Write(out)
	case "yaml":
		if p.Blocked(true) {
			if err := p.Write(errOut); err != nil {
				return err
			}
			fmt.Fprintln(errOut, "kubectl herald: no YAML written: fix the problems listed above first")
			return errReported
		}
		if len(p.Dropped) > 0 {
			fmt.Fprintf(errOut, "kubectl herald: warning: %d setting(s) are not carried (run without -o yaml to see them)\n", len(p.Dropped))
		}
		return p.WriteYAML(out)
	}
	return usageError{fmt.Errorf("unknown output format %q: want yaml", o.output)}
}

func newMigrate(c *clients) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move from another load balancer to Herald without changing any address",
	}
	o := &migrateOptions{}
	metallb := &cobra.Command{
		Use:   "metallb [-f FILE] [--apply]",
		Short: "Plan (and with --apply, perform) the move from MetalLB",
		Long: `migrate metallb reads MetalLB's resources (IPAddressPool, L2Advertisement,
BGPAdvertisement, BGPPeer, BFDProfile, Community of metallb.io) from the cluster,
or from files with -f, and the Services' MetalLB annotations (metallb.io/ and
metallb.universe.tf/: loadBalancerIPs, address-pool, allow-shared-ip,
ip-allocated-from-pool), and prints a plan:

  - the Herald resources it would create (IPPool, L2Advertisement,
    BGPAdvertisement, BGPPeer), named as in MetalLB and labelled
    herald.dev/migrated-from=metallb;
  - every Service, its address now and after (they are equal: Herald adopts
    the addresses in the Services' status when it starts), its pool and the
    herald.dev/ annotations it gets (MetalLB's stay, inert, to allow going back);
  - every MetalLB setting it cannot carry, with the reason;
  - notes (a password Secret to copy, a loadBalancerClass to serve);
  - problems that would change an address (an address two MetalLB pools
    claim, an address in no pool, sharers Herald would not let share...).

With --apply it writes the resources and annotations (server-side apply, field
manager kubectl-herald), after checking that Herald's CRDs are installed and
that no Herald resource of the same name exists that a migration did not
write. It applies nothing while the plan has a problem, nor while it drops a
setting unless --drop-unsupported accepts that. It changes no address, and
starts or stops nothing: the hand-over (stop MetalLB, start Herald) is in
docs/migration.md.`,
		Example: `  kubectl herald migrate metallb                       # plan from the cluster
  kubectl herald migrate metallb -f metallb-config.yaml  # plan from files (Services from the cluster)
  kubectl herald migrate metallb -f config.yaml --offline  # plan from files only
  kubectl herald migrate metallb --apply`,
		Args: cobraNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigrateMetalLB(cmd.Context(), c, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	metallb.Flags().StringSliceVarP(&o.files, "filename", "f", nil, "read MetalLB's resources (and any Services) from this file instead of the cluster (- for stdin); may be repeated")
	metallb.Flags().BoolVar(&o.offline, "offline", false, "with -f: contact no cluster, take the Services from the files only (plan only)")
	metallb.Flags().BoolVar(&o.apply, "apply", false, "write the Herald resources and Service annotations the plan lists")
	metallb.Flags().BoolVar(&o.dropUnsupported, "drop-unsupported", false, "with --apply: apply even though the plan drops settings Herald cannot carry")
	metallb.Flags().StringVarP(&o.output, "output", "o", "", "yaml: print the Herald resources and Service annotations to apply (kubectl apply --server-side) instead of the plan")
	cmd.AddCommand(metallb, newMigratePlanOnly(c, "kube-vip", "kube-vip's cloud provider (ConfigMap kube-system/kubevip)", planKubeVIP),
		newMigratePlanOnly(c, "cilium", "Cilium LB-IPAM (CiliumLoadBalancerIPPool, CiliumL2AnnouncementPolicy)", planCilium))
	return cmd
}

// planSource reads one source's configuration (from files when objs is
// not nil, else from the cluster) and plans it.
type planSource func(ctx context.Context, c *clients, objs []*unstructured.Unstructured, fromFiles bool, svcs []*corev1.Service) (*migrate.Plan, error)

// newMigratePlanOnly is the command of a source that is planned, never applied.
func newMigratePlanOnly(c *clients, name, what string, plan planSource) *cobra.Command {
	o := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   name + " [-f FILE]",
		Short: "Plan the move from " + what + " (plan only)",
		Long: "migrate " + name + " reads the configuration of " + what + ` from the
cluster, or from files with -f, and the Services' annotations, and prints the plan:
the Herald resources it would create, every Service with its address now and after,
every setting not carried with the reason, and the problems that would change an
address. It applies nothing: review the plan, then print the objects with -o yaml
and apply them with kubectl apply --server-side (docs/migration.md).`,
		Args: cobraNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var objs []*unstructured.Unstructured
			var svcs []*corev1.Service
			if len(o.files) > 0 {
				var err error
				if objs, svcs, err = readFiles(o.files); err != nil {
					return err
				}
			} else if o.offline {
				return usageError{errors.New("--offline needs the configuration in files (-f)")}
			}
			ctx := cmd.Context()
			if !o.offline {
				if err := c.init(); err != nil {
					return err
				}
				cluster, err := listServices(ctx, c)
				if err != nil {
					return err
				}
				svcs = mergeServices(svcs, cluster)
			}
			p, err := plan(ctx, c, objs, len(o.files) > 0, svcs)
			if err != nil {
				return err
			}
			if o.output != "" {
				return writePlan(p, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if err := p.Write(cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nPlan only: review it, then print the objects with -o yaml and apply them yourself.")
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&o.files, "filename", "f", nil, "read the configuration (and any Services) from this file instead of the cluster (- for stdin); may be repeated")
	cmd.Flags().BoolVar(&o.offline, "offline", false, "with -f: contact no cluster, take the Services from the files only")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "yaml: print the Herald resources and Service annotations to apply (kubectl apply --server-side) instead of the plan")
	return cmd
}

func planKubeVIP(ctx context.Context, c *clients, objs []*unstructured.Unstructured, fromFiles bool, svcs []*corev1.Service) (*migrate.Plan, error) {
	var cm *corev1.ConfigMap
	if fromFiles {
		for _, o := range objs {
			if o.GetKind() == "ConfigMap" && o.GetName() == migrate.KubeVIPConfigMap {
				cm = &corev1.ConfigMap{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, cm); err != nil {
					return nil, fmt.Errorf("ConfigMap %s: %w", o.GetName(), err)
				}
			}
		}
	} else {
		got, err := c.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, migrate.KubeVIPConfigMap, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("reading ConfigMap kube-system/%s: %w", migrate.KubeVIPConfigMap, err)
		default:
			cm = got
		}
	}
	return migrate.KubeVIP(migrate.KubeVIPInput{ConfigMap: cm, Services: svcs}), nil
}

func planCilium(ctx context.Context, c *clients, objs []*unstructured.Unstructured, fromFiles bool, svcs []*corev1.Service) (*migrate.Plan, error) {
	if !fromFiles {
		var err error
		if objs, err = listGroup(ctx, c, migrate.CiliumGroup, migrate.CiliumKinds, "Cilium's CRDs"); err != nil {
			return nil, err
		}
	}
	return migrate.Cilium(migrate.CiliumInput{Objects: objs, Services: svcs}), nil
}

func runMigrateMetalLB(ctx context.Context, c *clients, o *migrateOptions, out, errOut io.Writer) error {
	switch {
	case o.offline && len(o.files) == 0:
		return usageError{errors.New("--offline needs the configuration in files (-f)")}
	case o.offline && o.apply:
		return usageError{errors.New("--apply writes to the cluster: it cannot be --offline")}
	}
	var in migrate.MetalLBInput
	if len(o.files) > 0 {
		objs, svcs, err := readFiles(o.files)
		if err != nil {
			return err
		}
		in.Objects, in.Services = objs, svcs
	}
	if !o.offline {
		if err := c.init(); err != nil {
			return err
		}
		if len(o.files) == 0 {
			objs, err := listMetalLB(ctx, c)
			if err != nil {
				return err
			}
			in.Objects = objs
		}
		svcs, err := listServices(ctx, c)
		if err != nil {
			return err
		}
		in.Services = mergeServices(in.Services, svcs)
	}
	plan := migrate.MetalLB(in)
	if o.output != "" {
		if o.apply {
			return usageError{errors.New("-o prints the objects instead of applying them: drop --apply")}
		}
		return writePlan(plan, o, out, errOut)
	}
	if err := plan.Write(out); err != nil {
		return err
	}
	if !o.apply {
		fmt.Fprintln(out, "\nNothing applied (plan only): run again with --apply to write it.")
		return nil
	}
	if plan.Blocked(o.dropUnsupported) {
		if len(plan.Dropped) > 0 && !o.dropUnsupported && !plan.Blocked(true) {
			fmt.Fprintf(errOut, "kubectl herald: nothing applied: the plan drops %d setting(s) Herald cannot carry (listed above); add --drop-unsupported to apply without them\n", len(plan.Dropped))
		} else {
			fmt.Fprintln(errOut, "kubectl herald: nothing applied: fix the problems listed above first")
		}
		return errReported
	}
	if err := applyPlan(ctx, c, plan, out); err != nil {
		return err
	}
	return nil
}

// mergeServices adds the cluster's Services to those of the files; a
// Service in both is taken from the cluster (its status is the truth).
func mergeServices(files, cluster []*corev1.Service) []*corev1.Service {
	out := slices.Clone(cluster)
	for _, f := range files {
		if !slices.ContainsFunc(cluster, func(s *corev1.Service) bool { return s.Namespace == f.Namespace && s.Name == f.Name }) {
			out = append(out, f)
		}
	}
	return out
}

// listMetalLB lists MetalLB's resources in every namespace, each kind in
// the version the API server prefers.
func listMetalLB(ctx context.Context, c *clients) ([]*unstructured.Unstructured, error) {
	objs, err := listGroup(ctx, c, migrate.MetalLBGroup, migrate.MetalLBKinds, "MetalLB's CRDs")
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == migrate.KindIPAddressPool }) && !served(ctx, c, migrate.MetalLBGroup, migrate.KindIPAddressPool) {
		return nil, fmt.Errorf("the API server serves %s but not its IPAddressPool (MetalLB before 0.13 kept its configuration in a ConfigMap: convert it with MetalLB's configmaptocrs first)", migrate.MetalLBGroup)
	}
	return objs, nil
}

// groupResources maps each kind of an API group to its resource, in the
// version the API server prefers, then the others.
func groupResources(c *clients, group string) (map[string]schema.GroupVersionResource, error) {
	groups, err := c.kube.Discovery().ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("discovering the API groups: %w", err)
	}
	var versions []string
	for _, g := range groups.Groups {
		if g.Name == group {
			versions = append(versions, g.PreferredVersion.Version)
			for _, v := range g.Versions {
				if v.Version != g.PreferredVersion.Version {
					versions = append(versions, v.Version)
				}
			}
		}
	}
	if len(versions) == 0 {
		return nil, nil
	}
	resources := map[string]schema.GroupVersionResource{}
	for _, v := range versions {
		list, err := c.kube.Discovery().ServerResourcesForGroupVersion(group + "/" + v)
		if err != nil {
			return nil, fmt.Errorf("discovering %s/%s: %w", group, v, err)
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			if _, seen := resources[r.Kind]; !seen {
				resources[r.Kind] = schema.GroupVersionResource{Group: group, Version: v, Resource: r.Name}
			}
		}
	}
	return resources, nil
}

func served(_ context.Context, c *clients, group, kind string) bool {
	rs, err := groupResources(c, group)
	_, ok := rs[kind]
	return err == nil && ok
}

// listGroup lists the given kinds of an API group in every namespace; a
// kind the API server does not serve is skipped, a group it does not
// serve at all is an error naming what (the CRDs) is missing.
func listGroup(ctx context.Context, c *clients, group string, kinds []string, what string) ([]*unstructured.Unstructured, error) {
	resources, err := groupResources(c, group)
	if err != nil {
		return nil, err
	}
	if len(resources) == 0 {
		return nil, fmt.Errorf("%s (API group %s) are not installed in this cluster: there is nothing to migrate from (to plan from configuration files, give them with -f)", what, group)
	}
	var out []*unstructured.Unstructured
	for _, kind := range kinds {
		gvr, ok := resources[kind]
		if !ok {
			continue
		}
		list, err := c.dynamic.Resource(gvr).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvr.Resource, err)
		}
		out = append(out, ptrs(list.Items)...)
	}
	return out, nil
}
