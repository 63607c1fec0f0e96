package decide

import (
	"cmp"
	"slices"
)

// TrafficPolicy is a Service's spec.externalTrafficPolicy.
type TrafficPolicy string

// The two external traffic policies Kubernetes defines.
const (
	// TrafficPolicyCluster sends external traffic to any endpoint in the
	// cluster, so any node can take it in.
	TrafficPolicyCluster TrafficPolicy = "Cluster"
	// TrafficPolicyLocal sends external traffic only to endpoints on the
	// node that received it, so only nodes with local endpoints may announce.
	TrafficPolicyLocal TrafficPolicy = "Local"
)

// ServiceState is the part of a Service and its EndpointSlices that
// eligibility depends on.
type ServiceState struct {
	// TrafficPolicy is spec.externalTrafficPolicy; empty means Cluster, as
	// in Kubernetes.
	TrafficPolicy TrafficPolicy
	// Endpoints are the Service's endpoints from all of its EndpointSlices.
	Endpoints []Endpoint
}

// Endpoint is one endpoint of an EndpointSlice, reduced to what decides
// whether it can take traffic and where it runs.
type Endpoint struct {
	// NodeName is the node the endpoint runs on; empty when unknown.
	NodeName string
	// Ready is the EndpointSlice ready condition (nil in the API counts as true).
	Ready bool
	// Serving is the EndpointSlice serving condition (nil in the API counts as Ready).
	Serving bool
	// Terminating is the EndpointSlice terminating condition (nil counts as false).
	Terminating bool
	// Settling is true for a ready endpoint on a node whose first ready
	// endpoint of this Service (and address family) appeared less than the
	// speaker's takeover delay ago, while another node could forward:
	// kube-proxy on that node may not have programmed its rules for it yet.
	// See SettleTracker; EligibleNodes explains how it counts.
	Settling bool
}

// NodeState is the part of a Node, and of the speaker membership, that
// eligibility depends on.
type NodeState struct {
	// Name is the Node's name.
	Name string
	// ExcludedFromLoadBalancers is true when the Node carries the label
	// node.kubernetes.io/exclude-from-external-load-balancers (any value).
	ExcludedFromLoadBalancers bool
	// NetworkUnavailable is true when the Node's NetworkUnavailable
	// condition is True.
	NetworkUnavailable bool
	// ToBeDeletedByClusterAutoscaler is true when the Node has the cluster
	// autoscaler's ToBeDeletedByClusterAutoscaler taint.
	ToBeDeletedByClusterAutoscaler bool
	// Deleting is true when the Node has a deletionTimestamp.
	Deleting bool
	// SpeakerAlive is true while the node's speaker is a live member.
	SpeakerAlive bool
}

// Reason says why a node is not eligible to announce a Service. The values
// are stable CamelCase strings, fit for status conditions and metric labels.
type Reason string

// The reasons a node may be left out.
const (
	// ReasonExcludedFromLoadBalancers: the node has the
	// node.kubernetes.io/exclude-from-external-load-balancers label.
	ReasonExcludedFromLoadBalancers Reason = "ExcludedFromLoadBalancers"
	// ReasonNetworkUnavailable: the node's NetworkUnavailable condition is True.
	ReasonNetworkUnavailable Reason = "NetworkUnavailable"
	// ReasonToBeDeletedByClusterAutoscaler: the cluster autoscaler is
	// removing the node.
	ReasonToBeDeletedByClusterAutoscaler Reason = "ToBeDeletedByClusterAutoscaler"
	// ReasonNodeDeleting: the Node object is being deleted.
	ReasonNodeDeleting Reason = "NodeDeleting"
	// ReasonSpeakerNotAlive: no live speaker runs on the node.
	ReasonSpeakerNotAlive Reason = "SpeakerNotAlive"
	// ReasonNoLocalEndpoint: externalTrafficPolicy is Local and the node has
	// no endpoint that may take traffic (ready, or serving-terminating when
	// the fallback is in effect).
	ReasonNoLocalEndpoint Reason = "NoLocalEndpoint"
	// ReasonEndpointSettling: externalTrafficPolicy is Local and the node's
	// first ready endpoint became ready less than the takeover delay ago,
	// while another node that can forward already serves the Service: the
	// node becomes eligible when the delay ends.
	ReasonEndpointSettling Reason = "EndpointSettling"
	// ReasonNoServingEndpoint: the Service has no endpoint that may take
	// traffic anywhere (neither ready nor serving-terminating).
	ReasonNoServingEndpoint Reason = "NoServingEndpoint"
)

// NodeVerdict records why one node is not eligible.
type NodeVerdict struct {
	Node   string
	Reason Reason
}

// Eligibility is the outcome of EligibleNodes.
type Eligibility struct {
	// Nodes are the eligible node names, sorted.
	Nodes []string
	// ServingTerminating is true when no ready endpoint could be used (none,
	// or only Settling ones) and serving-but-terminating endpoints were used
	// instead (a draining rollout).
	ServingTerminating bool
	// Ineligible lists every other node with the first reason that ruled it
	// out, sorted by node name.
	Ineligible []NodeVerdict
}

// nodeReason returns why n can never announce, whatever the Service, or ""
// when nothing about the node itself rules it out.
func nodeReason(n NodeState) Reason {
	switch {
	case n.Deleting:
		return ReasonNodeDeleting
	case n.ToBeDeletedByClusterAutoscaler:
		return ReasonToBeDeletedByClusterAutoscaler
	case n.ExcludedFromLoadBalancers:
		return ReasonExcludedFromLoadBalancers
	case n.NetworkUnavailable:
		return ReasonNetworkUnavailable
	case !n.SpeakerAlive:
		return ReasonSpeakerNotAlive
	}
	return ""
}

// EligibleNodes returns the nodes that may announce svc, following
// kube-proxy's semantics (the ones its healthCheckNodePort reports):
//
//   - Local: a usable node is eligible while it runs at least one ready
//     endpoint of svc. When no usable node runs a ready endpoint, usable
//     nodes running a serving-but-terminating endpoint are eligible instead,
//     so a rollout drains rather than drops. Ready endpoints win: a
//     terminating endpoint never keeps a node announcing while another
//     usable node has a settled ready one.
//   - Local, settling: a node whose ready endpoints are all Settling (its
//     first one became ready less than the takeover delay ago, so its
//     kube-proxy may still drop the traffic) can forward only once it
//     settles. So the usable nodes are taken in this order, the first
//     non-empty group being eligible: nodes with a settled ready endpoint;
//     nodes with a serving-terminating endpoint (their kube-proxy forwards
//     to it while the node has no ready one, as it always has); nodes with
//     only settling ready endpoints (nothing better exists: an address is
//     never left unannounced to wait). A settling node left out has the
//     reason ReasonEndpointSettling. Without Settling endpoints (a takeover
//     delay of 0) this is the rule of the first point.
//   - Cluster (or empty): every usable node is eligible while svc has a
//     ready endpoint anywhere, or failing that a serving-terminating one
//     (kube-proxy's cluster fallback).
//
// A node is usable when it is not being deleted, not tainted
// ToBeDeletedByClusterAutoscaler, not labelled
// exclude-from-external-load-balancers, not NetworkUnavailable, and its
// speaker is alive. The Local fallback looks only at usable nodes: a ready
// endpoint on an excluded node cannot receive load-balancer traffic, so it
// must not keep the draining nodes from announcing.
//
// Endpoints on nodes absent from nodes are ignored for Local and count as
// the Service's endpoints for Cluster. The result does not depend on the
// order of the inputs. Cost: O(len(nodes) log len(nodes) + len(endpoints)).
func EligibleNodes(svc ServiceState, nodes []NodeState) Eligibility {
	type local struct{ ready, settling, servingTerminating bool }
	perNode := make(map[string]local, len(nodes))
	var anyReady, anyServingTerminating bool
	for _, ep := range svc.Endpoints {
		l := perNode[ep.NodeName]
		switch {
		case ep.Ready && ep.Settling:
			anyReady = true
			l.settling = true
		case ep.Ready:
			anyReady = true
			l.ready = true
		case ep.Serving && ep.Terminating:
			anyServingTerminating = true
			l.servingTerminating = true
		default:
			continue
		}
		if ep.NodeName != "" {
			perNode[ep.NodeName] = l
		}
	}

	sorted := slices.Clone(nodes)
	slices.SortStableFunc(sorted, func(a, b NodeState) int { return cmp.Compare(a.Name, b.Name) })
	sorted = slices.CompactFunc(sorted, func(a, b NodeState) bool { return a.Name == b.Name })

	var out Eligibility
	usable := make([]string, 0, len(sorted))
	for _, n := range sorted {
		if r := nodeReason(n); r != "" {
			out.Ineligible = append(out.Ineligible, NodeVerdict{Node: n.Name, Reason: r})
			continue
		}
		usable = append(usable, n.Name)
	}

	// reason returns "" for an eligible node, else why it is not.
	var reason func(node string) Reason
	if svc.TrafficPolicy == TrafficPolicyLocal {
		settledReady := func(l local) bool { return l.ready }
		servingTerminating := func(l local) bool { return !l.ready && l.servingTerminating }
		settlingOnly := func(l local) bool { return !l.ready && l.settling }
		has := func(group func(local) bool) bool {
			return slices.ContainsFunc(usable, func(n string) bool { return group(perNode[n]) })
		}
		var group func(local) bool
		switch {
		case has(settledReady):
			group = settledReady
		case has(servingTerminating):
			group = servingTerminating
			out.ServingTerminating = true
		default:
			group = settlingOnly
		}
		reason = func(n string) Reason {
			switch l := perNode[n]; {
			case group(l):
				return ""
			case settlingOnly(l):
				return ReasonEndpointSettling
			}
			return ReasonNoLocalEndpoint
		}
	} else {
		out.ServingTerminating = !anyReady && anyServingTerminating
		hasEndpoint := anyReady || anyServingTerminating
		reason = func(string) Reason {
			if hasEndpoint {
				return ""
			}
			return ReasonNoServingEndpoint
		}
	}

	for _, n := range usable {
		if r := reason(n); r == "" {
			out.Nodes = append(out.Nodes, n)
		} else {
			out.Ineligible = append(out.Ineligible, NodeVerdict{Node: n, Reason: r})
		}
	}
	slices.SortFunc(out.Ineligible, func(a, b NodeVerdict) int { return cmp.Compare(a.Node, b.Node) })
	if len(out.Nodes) == 0 {
		out.ServingTerminating = false
	}
	return out
}
