package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/poolplan"
	"github.com/herald-dev/herald/config/v1alpha1"
)

func newPlan(c *clients) *cobra.Command {
	var files []string
	var class string
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "What applying changed IPPools or advertisements would do to the Services in use",
		Long: `plan reads IPPools, L2Advertisements, BGPAdvertisements and BGPPeers from
the files (YAML, several documents allowed), and says what applying them would
do, before anything is applied:

  - which Services would keep an address outside its pool (Herald never moves
    an address in use: it keeps it and reports it on the pool);
  - which pending Services would get an address, and which one, and which
    would stay pending and why;
  - which addresses would be announced from other nodes, or from none;
  - the configuration problems Herald would report about them.

It runs the controller's own allocation core over the cluster's AddressClaims
and Services, once with the pools as they are and once with the changes. It
changes nothing. Deleting an object is not planned (Herald keeps a pool that
has allocations until they are released).`,
		Example: "  kubectl herald plan -f pool.yaml",
		Args:    cobraNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageError{fmt.Errorf("give the changed objects with -f FILE")}
			}
			objs, _, err := readFiles(files)
			if err != nil {
				return err
			}
			changes, err := heraldResources(objs)
			if err != nil {
				return err
			}
			if err := c.init(); err != nil {
				return err
			}
			ctx := cmd.Context()
			cl, err := gatherCluster(ctx, c)
			if err != nil {
				return err
			}
			svcs, err := listServices(ctx, c)
			if err != nil {
				return err
			}
			res := poolplan.Plan(poolplan.Input{
				Current: poolplan.Resources{Pools: cl.Pools, L2Advertisements: cl.L2Advertisements, BGPAdvertisements: cl.BGPAdvertisements, BGPPeers: cl.BGPPeers},
				Changes: changes, Claims: cl.Claims, Services: svcs, Nodes: cl.Nodes, Namespaces: cl.Namespaces, Class: class,
			})
			return res.Write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "file with the changed objects (- for stdin); may be repeated")
	cmd.Flags().StringVar(&class, "load-balancer-class", "", "the loadBalancerClass Herald's controller serves (its --load-balancer-class)")
	return cmd
}

// heraldResources converts decoded objects into Herald's typed resources.
func heraldResources(objs []*unstructured.Unstructured) (poolplan.Resources, error) {
	var r poolplan.Resources
	for _, o := range objs {
		if o.GroupVersionKind().GroupVersion() != v1alpha1.SchemeGroupVersion {
			return r, fmt.Errorf("%s %s: plan reads Herald's resources (apiVersion %s) only", o.GetKind(), o.GetName(), v1alpha1.SchemeGroupVersion)
		}
		var err error
		conv := runtime.DefaultUnstructuredConverter
		switch o.GetKind() {
		case "IPPool":
			p := &v1alpha1.IPPool{}
			err = conv.FromUnstructuredWithValidation(o.Object, p, true)
			r.Pools = append(r.Pools, p)
		case "L2Advertisement":
			a := &v1alpha1.L2Advertisement{}
			err = conv.FromUnstructuredWithValidation(o.Object, a, true)
			r.L2Advertisements = append(r.L2Advertisements, a)
		case "BGPAdvertisement":
			a := &v1alpha1.BGPAdvertisement{}
			err = conv.FromUnstructuredWithValidation(o.Object, a, true)
			r.BGPAdvertisements = append(r.BGPAdvertisements, a)
		case "BGPPeer":
			p := &v1alpha1.BGPPeer{}
			err = conv.FromUnstructuredWithValidation(o.Object, p, true)
			r.BGPPeers = append(r.BGPPeers, p)
		default:
			return r, fmt.Errorf("%s %s: plan reads IPPools, L2Advertisements, BGPAdvertisements and BGPPeers", o.GetKind(), o.GetName())
		}
		if err != nil {
			return r, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return r, nil
}
