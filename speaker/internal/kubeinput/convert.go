package kubeinput

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// TaintToBeDeletedByClusterAutoscaler is the taint the cluster autoscaler
// puts on a node it is about to remove.
const TaintToBeDeletedByClusterAutoscaler = "ToBeDeletedByClusterAutoscaler"

// NodeStateFromNode summarises node for EligibleNodes. speakerAlive comes
// from speaker membership, not from the Node object. node must not be nil.
func NodeStateFromNode(node *corev1.Node, speakerAlive bool) decide.NodeState {
	_, excluded := node.Labels[corev1.LabelNodeExcludeBalancers]
	s := decide.NodeState{
		Name:                      node.Name,
		ExcludedFromLoadBalancers: excluded,
		Deleting:                  node.DeletionTimestamp != nil,
		SpeakerAlive:              speakerAlive,
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue {
			s.NetworkUnavailable = true
		}
	}
	for _, t := range node.Spec.Taints {
		if t.Key == TaintToBeDeletedByClusterAutoscaler {
			s.ToBeDeletedByClusterAutoscaler = true
		}
	}
	return s
}

// ServiceStateFromService summarises svc and its EndpointSlices for one
// address family (discoveryv1.AddressTypeIPv4 or AddressTypeIPv6): like
// kube-proxy, an IPv6 address is judged by the IPv6 slices only. An empty
// addressType takes every slice. svc must not be nil.
func ServiceStateFromService(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, addressType discoveryv1.AddressType) decide.ServiceState {
	policy := decide.TrafficPolicyCluster
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		policy = decide.TrafficPolicyLocal
	}
	return decide.ServiceState{TrafficPolicy: policy, Endpoints: EndpointsFromSlices(slices, addressType)}
}

// EndpointsFromSlices flattens the endpoints of slices of the given address
// type (all types when empty), reading the conditions the way kube-proxy
// does: a nil ready or serving counts as true, a nil terminating as false.
func EndpointsFromSlices(slices []*discoveryv1.EndpointSlice, addressType discoveryv1.AddressType) []decide.Endpoint {
	var out []decide.Endpoint
	for _, s := range slices {
		if s == nil || (addressType != "" && s.AddressType != addressType) {
			continue
		}
		for _, ep := range s.Endpoints {
			e := decide.Endpoint{
				Ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
				Serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
				Terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
			}
			if ep.NodeName != nil {
				e.NodeName = *ep.NodeName
			}
			out = append(out, e)
		}
	}
	return out
}
