// Package eligibility exposes, for tools outside the speaker (kubectl
// herald explain), the speaker's own rule for which nodes may announce a
// Service, so that a tool explains the decision the speakers make instead
// of a copy of it. It only re-exports the pure decision of
// speaker/internal/decide and the summaries of speaker/internal/kubeinput:
// it adds no logic, talks to no API server and owns no state.
package eligibility

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// The inputs and outcome of EligibleNodes (see speaker/internal/decide).
type (
	NodeState     = decide.NodeState
	ServiceState  = decide.ServiceState
	Endpoint      = decide.Endpoint
	Eligibility   = decide.Eligibility
	NodeVerdict   = decide.NodeVerdict
	Reason        = decide.Reason
	TrafficPolicy = decide.TrafficPolicy
)

// The reasons a node may be left out.
const (
	ReasonExcludedFromLoadBalancers      = decide.ReasonExcludedFromLoadBalancers
	ReasonNetworkUnavailable             = decide.ReasonNetworkUnavailable
	ReasonToBeDeletedByClusterAutoscaler = decide.ReasonToBeDeletedByClusterAutoscaler
	ReasonNodeDeleting                   = decide.ReasonNodeDeleting
	ReasonSpeakerNotAlive                = decide.ReasonSpeakerNotAlive
	ReasonNoLocalEndpoint                = decide.ReasonNoLocalEndpoint
	ReasonEndpointSettling               = decide.ReasonEndpointSettling
	ReasonNoServingEndpoint              = decide.ReasonNoServingEndpoint
)

// EligibleNodes returns the nodes that may announce svc, and why each other
// node may not: the speakers' rule (kube-proxy's healthCheckNodePort
// semantics). Cost: O(n log n + endpoints).
func EligibleNodes(svc ServiceState, nodes []NodeState) Eligibility {
	return decide.EligibleNodes(svc, nodes)
}

// NodeStateFromNode summarises node as the speakers do; speakerAlive says
// whether a live speaker runs there.
func NodeStateFromNode(node *corev1.Node, speakerAlive bool) NodeState {
	return kubeinput.NodeStateFromNode(node, speakerAlive)
}

// ServiceStateFromService summarises svc and its EndpointSlices for one
// address family as the speakers do (an empty addressType takes every slice).
func ServiceStateFromService(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, addressType discoveryv1.AddressType) ServiceState {
	return kubeinput.ServiceStateFromService(svc, slices, addressType)
}

// Ranking lists candidates in the layer-2 takeover order for addr: the
// first announces it.
func Ranking(addr netip.Addr, candidates []string) []string {
	return decide.Ranking(addr, candidates)
}
