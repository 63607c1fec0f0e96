package explain

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// Cluster is what the explanations read: Herald's resources and the
// Kubernetes objects around them. Any list may be empty; a nil KubeProxy
// means its configuration could not be read.
type Cluster struct {
	Pools             []*v1alpha1.IPPool
	L2Advertisements  []*v1alpha1.L2Advertisement
	BGPAdvertisements []*v1alpha1.BGPAdvertisement
	BGPPeers          []*v1alpha1.BGPPeer
	Claims            []*v1alpha1.AddressClaim
	Speakers          []*v1alpha1.SpeakerStatus
	Nodes             []*corev1.Node
	Namespaces        []*corev1.Namespace
	KubeProxy         *KubeProxy
	// MembershipPort is the speakers' --memberlist-port (7946 when unknown).
	MembershipPort int
	// Unreadable says what could not be read and why ("Nodes: forbidden"),
	// so that the explanation says what it is missing.
	Unreadable []string
}

// ServiceInput is one Service with its EndpointSlices and Events.
type ServiceInput struct {
	Service        *corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	// Events are the Service's events, in any order.
	Events []corev1.Event
}

// KubeProxy is what kube-proxy's ConfigMap (kube-system/kube-proxy, key
// config.conf, as kubeadm writes it) says.
type KubeProxy struct {
	// Mode is the proxy mode; empty means the default (iptables on Linux).
	Mode string
	// StrictARP is ipvs.strictARP.
	StrictARP bool
}

// model builds Herald's configuration model from c. Password Secrets are
// not read (a user who explains may not read Secrets): a peer is taken as
// usable whatever its password, and the sessions' real state comes from
// the SpeakerStatuses.
func (c Cluster) model() *config.Model {
	peers := make([]*v1alpha1.BGPPeer, 0, len(c.BGPPeers))
	for _, p := range c.BGPPeers {
		p = p.DeepCopy()
		p.Spec.PasswordSecretRef = nil
		peers = append(peers, p)
	}
	return config.Build(config.Snapshot{
		IPPools: c.Pools, L2Advertisements: c.L2Advertisements, BGPPeers: peers,
		BGPAdvertisements: c.BGPAdvertisements, Namespaces: c.Namespaces, Nodes: c.Nodes,
	})
}

func (c Cluster) speaker(node string) *v1alpha1.SpeakerStatus {
	for _, s := range c.Speakers {
		if s.Name == node {
			return s
		}
	}
	return nil
}

func (c Cluster) membershipPort() int {
	if c.MembershipPort == 0 {
		return 7946
	}
	return c.MembershipPort
}
