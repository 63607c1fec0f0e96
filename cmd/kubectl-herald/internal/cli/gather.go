package cli

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/explain"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// heraldObjects are Herald's resources as listed.
type heraldObjects struct {
	pools    []*v1alpha1.IPPool
	l2       []*v1alpha1.L2Advertisement
	bgp      []*v1alpha1.BGPAdvertisement
	peers    []*v1alpha1.BGPPeer
	claims   []*v1alpha1.AddressClaim
	speakers []*v1alpha1.SpeakerStatus
}

// notInstalled turns the NotFound of listing a Herald kind into a message
// that says what is missing.
func notInstalled(kind string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the API server does not serve Herald's %s (herald.dev/v1alpha1): Herald's CRDs are not installed (docs/install.md)", kind)
	}
	return fmt.Errorf("listing %s: %w", kind, err)
}

func listHerald(ctx context.Context, c *clients) (heraldObjects, error) {
	var o heraldObjects
	h := c.herald.HeraldV1alpha1()
	opts := metav1.ListOptions{}
	pools, err := h.IPPools().List(ctx, opts)
	if err != nil {
		return o, notInstalled("IPPools", err)
	}
	o.pools = ptrs(pools.Items)
	l2, err := h.L2Advertisements().List(ctx, opts)
	if err != nil {
		return o, notInstalled("L2Advertisements", err)
	}
	o.l2 = ptrs(l2.Items)
	bgp, err := h.BGPAdvertisements().List(ctx, opts)
	if err != nil {
		return o, notInstalled("BGPAdvertisements", err)
	}
	o.bgp = ptrs(bgp.Items)
	peers, err := h.BGPPeers().List(ctx, opts)
	if err != nil {
		return o, notInstalled("BGPPeers", err)
	}
	o.peers = ptrs(peers.Items)
	claims, err := h.AddressClaims().List(ctx, opts)
	if err != nil {
		return o, notInstalled("AddressClaims", err)
	}
	o.claims = ptrs(claims.Items)
	speakers, err := h.SpeakerStatuses().List(ctx, opts)
	if err != nil {
		return o, notInstalled("SpeakerStatuses", err)
	}
	o.speakers = ptrs(speakers.Items)
	return o, nil
}

// ptrs points at each item of a listed slice.
func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// gatherCluster reads what explain and status need. Namespaces and
// kube-proxy's ConfigMap are optional (a user may not read them).
func gatherCluster(ctx context.Context, c *clients) (explain.Cluster, error) {
	o, err := listHerald(ctx, c)
	if err != nil {
		return explain.Cluster{}, err
	}
	cl := explain.Cluster{Pools: o.pools, L2Advertisements: o.l2, BGPAdvertisements: o.bgp, BGPPeers: o.peers, Claims: o.claims, Speakers: o.speakers}
	// Nodes are optional: a namespaced user may not list them, and the rest
	// of the explanation still holds.
	if nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		cl.Unreadable = append(cl.Unreadable, "Nodes: "+reasonOf(err)+" (which nodes may announce is unknown)")
	} else {
		cl.Nodes = ptrs(nodes.Items)
	}
	if nss, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		cl.Namespaces = ptrs(nss.Items)
	}
	if cm, err := c.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err == nil {
		if kp, err := explain.ParseKubeProxyConfig(cm.Data["config.conf"]); err == nil {
			cl.KubeProxy = kp
		}
	}
	return cl, nil
}

// reasonOf is the API's reason for err (Forbidden, NotFound...), or its text.
func reasonOf(err error) string {
	if r := apierrors.ReasonForError(err); r != metav1.StatusReasonUnknown {
		return string(r)
	}
	return err.Error()
}

func listServices(ctx context.Context, c *clients) ([]*corev1.Service, error) {
	list, err := c.kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	return ptrs(list.Items), nil
}
