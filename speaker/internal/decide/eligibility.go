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
	// Serving is the EndpointSlice serving condition (nil in the API counts as true).
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
	sorted := slices.Clone(nodes)
	slices.SortStableFunc(sorted, func(a, b NodeState) int { return cmp.Compare(a.Name, b.Name) })
	sorted = slices.CompactFunc(sorted, func(a, b NodeState) bool { return a.Name == b.Name })
	set := newNodeSet(sorted, nil)

	var out Eligibility
	out.Nodes, out.ServingTerminating = set.eligible(svc.TrafficPolicy, svc.Endpoints)
	// Why each usable node left out is: a Local node whose ready
	// endpoints all settle waits for them; any other has no endpoint that
	// counts.
	settlingOnly := map[string]bool{}
	if svc.TrafficPolicy == TrafficPolicyLocal {
		ready := map[string]bool{}
		for _, ep := range svc.Endpoints {
			if ep.Ready && !ep.Settling {
				ready[ep.NodeName] = true
			}
		}
		for _, ep := range svc.Endpoints {
			if ep.Ready && ep.Settling && !ready[ep.NodeName] {
				settlingOnly[ep.NodeName] = true
			}
		}
	}
	for _, n := range sorted {
		r := nodeReason(n)
		switch {
		case r != "":
		case slices.Contains(out.Nodes, n.Name):
			continue
		case svc.TrafficPolicy != TrafficPolicyLocal:
			r = ReasonNoServingEndpoint
		case settlingOnly[n.Name]:
			r = ReasonEndpointSettling
		default:
			r = ReasonNoLocalEndpoint
		}
		out.Ineligible = append(out.Ineligible, NodeVerdict{Node: n.Name, Reason: r})
	}
	return out
}

// nodeSet is the nodes an advertisement of one pool selects, with the
// usable ones (nothing about the node rules it out, its data plane is up)
// precomputed, so that eligibility costs O(endpoints) per Service instead
// of a sort of every node.
type nodeSet struct {
	states     []NodeState
	usable     []string // sorted; shared, never modified
	usableKeys []uint64 // nodeKey of each usable node, in the same order
	isUsable   map[string]bool
}

func newNodeSet(states []NodeState, down map[string]bool) nodeSet {
	set := nodeSet{states: states, isUsable: make(map[string]bool, len(states))}
	for _, n := range states {
		if nodeReason(n) == "" && !down[n.Name] {
			set.usable = append(set.usable, n.Name)
			set.isUsable[n.Name] = true
		}
	}
	slices.Sort(set.usable)
	set.usable = slices.Compact(set.usable)
	set.usableKeys = make([]uint64, len(set.usable))
	for i, n := range set.usable {
		set.usableKeys[i] = nodeKey(n)
	}
	return set
}

// keysFor returns the node keys of nodes when nodes is set's usable slice
// itself (what eligible returns for a Cluster Service), else nil.
func (set nodeSet) keysFor(nodes []string) []uint64 {
	if len(nodes) == 0 || len(nodes) != len(set.usable) || &nodes[0] != &set.usable[0] {
		return nil
	}
	return set.usableKeys
}

// without returns set without node.
func (set nodeSet) without(node string, down map[string]bool) nodeSet {
	states := make([]NodeState, 0, len(set.states))
	for _, n := range set.states {
		if n.Name != node {
			states = append(states, n)
		}
	}
	return newNodeSet(states, down)
}

// eligible applies EligibleNodes' rules (see there) to the usable nodes
// of set: it returns the eligible ones, sorted, and whether
// serving-terminating endpoints were used because no ready one could be.
// Cost: O(len(eps)), plus sorting the Local nodes found.
func (set nodeSet) eligible(policy TrafficPolicy, eps []Endpoint) (nodes []string, servingTerminating bool) {
	if policy != TrafficPolicyLocal {
		anyServingTerminating := false
		for _, ep := range eps {
			if ep.Ready {
				return set.usable, false
			}
			anyServingTerminating = anyServingTerminating || (ep.Serving && ep.Terminating)
		}
		if anyServingTerminating && len(set.usable) > 0 {
			return set.usable, true
		}
		return nil, false
	}
	var ready, draining, settling []string
	for _, ep := range eps {
		if !set.isUsable[ep.NodeName] {
			continue
		}
		switch {
		case ep.Ready && ep.Settling:
			settling = append(settling, ep.NodeName)
		case ep.Ready:
			ready = append(ready, ep.NodeName)
		case ep.Serving && ep.Terminating:
			draining = append(draining, ep.NodeName)
		}
	}
	if len(ready) > 0 {
		slices.Sort(ready)
		return slices.Compact(ready), false
	}
	// No settled ready endpoint: a node whose ready endpoints all settle
	// is not a candidate while a draining node can forward (see
	// EligibleNodes); draining and settling lists rarely hold more than a
	// few nodes.
	if len(draining) > 0 {
		slices.Sort(draining)
		return slices.Compact(draining), true
	}
	slices.Sort(settling)
	return slices.Compact(settling), false
}
