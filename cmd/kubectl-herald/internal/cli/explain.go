package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/explain"
)

func newExplain(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "explain svc NAME [-n NAMESPACE]",
		Short: "Explain a Service: its address or why it has none, who announces it and why not the other nodes",
		Long: `explain says, in words, for one Service:

  - its address and the IPPool it came from, or exactly why it has none (the
    reason Herald's controller recorded, its recent warnings, the pools' usage);
  - which nodes may announce it, in layer-2 takeover order, and why each other
    node may not: no L2Advertisement/BGPAdvertisement of its pool selects it,
    the exclude-from-external-load-balancers label, NetworkUnavailable, no
    running speaker, no ready local endpoint (externalTrafficPolicy Local);
  - which node announces it now, on which interfaces, and the BGP sessions it
    is advertised over, with their state;
  - node-side prerequisites: kube-proxy's mode (IPVS needs strictARP), the
    excluded nodes, the speakers and their membership port.

It reads the Service, its EndpointSlices and Events, Nodes, Herald's resources
(IPPools, advertisements, BGPPeers, AddressClaims, SpeakerStatuses) and, when
readable, the ConfigMap kube-system/kube-proxy. It changes nothing.`,
		Example: "  kubectl herald explain svc web -n shop",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 || (args[0] != "svc" && args[0] != "service" && args[0] != "services") {
				return usageError{fmt.Errorf("want: explain svc NAME")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.init(); err != nil {
				return err
			}
			ns, err := c.namespace()
			if err != nil {
				return err
			}
			return runExplain(cmd, c, ns, args[1], cmd.OutOrStdout())
		},
	}
}

func runExplain(cmd *cobra.Command, c *clients, ns, name string, out io.Writer) error {
	ctx := cmd.Context()
	svc, err := c.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("Service %s/%s does not exist", ns, name)
	}
	if err != nil {
		return fmt.Errorf("reading Service %s/%s: %w", ns, name, err)
	}
	cl, err := gatherCluster(ctx, c)
	if err != nil {
		return err
	}
	in := explain.ServiceInput{Service: svc}
	slices, err := c.kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		cl.Unreadable = append(cl.Unreadable, "the Service's EndpointSlices: "+reasonOf(err)+" (its endpoints count as none)")
	} else {
		in.EndpointSlices = ptrs(slices.Items)
	}
	sel := fields.AndSelectors(fields.OneTermEqualSelector("involvedObject.kind", "Service"),
		fields.OneTermEqualSelector("involvedObject.name", name), fields.OneTermEqualSelector("involvedObject.uid", string(svc.UID)))
	if evs, err := c.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel.String()}); err == nil {
		in.Events = evs.Items
	}
	_, err = io.WriteString(out, explain.Service(cl, in))
	return err
}
