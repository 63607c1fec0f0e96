package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPAdvertisement tells the speakers to advertise addresses of some pools as
// routes to some BGP peers, from every eligible node, with the given route
// attributes.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpadv,categories=herald
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=".spec.ipPools",description="The pools advertised, by name."
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=".spec.peers",description="The peers advertised to (all when empty)."
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Whether every pool and peer it names exists."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which pools are advertised, to which peers, from which nodes,
	// with which attributes.
	// +optional
	Spec BGPAdvertisementSpec `json:"spec,omitempty"`
	// Status reports whether the advertisement resolves.
	// +optional
	Status AdvertisementStatus `json:"status,omitempty"`
}

// BGPAdvertisementSpec says which pools are advertised over BGP, to which
// peers, from which nodes, with which route attributes.
// +kubebuilder:validation:XValidation:rule="!(has(self.ipPools) && has(self.ipPoolSelector))",message="set either ipPools or ipPoolSelector, not both",reason=FieldValueForbidden
type BGPAdvertisementSpec struct {
	// IPPools names the pools to advertise. Leave both ipPools and
	// ipPoolSelector unset to advertise every pool.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	IPPools []string `json:"ipPools,omitempty"`

	// IPPoolSelector selects the pools to advertise by their labels.
	// +optional
	IPPoolSelector *metav1.LabelSelector `json:"ipPoolSelector,omitempty"`

	// Peers names the BGPPeers to advertise to. Empty, every peer.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	Peers []string `json:"peers,omitempty"`

	// NodeSelectors restrict which nodes advertise: a node qualifies when any
	// selector matches its labels. Empty, every eligible node advertises.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// AggregationLength is the prefix length IPv4 addresses are advertised
	// with, 0 to 32. 32 advertises each address as a host route; shorter
	// lengths advertise the covering prefix once (it must not reach outside
	// the pool's CIDRs and ranges).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default=32
	// +optional
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// AggregationLengthV6 is the prefix length IPv6 addresses are advertised
	// with, 0 to 128. 128 advertises each address as a host route.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default=128
	// +optional
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// LocalPref is the BGP LOCAL_PREF attribute, 1 to 4294967295. It is sent to
	// iBGP peers only (eBGP peers ignore it by definition). 0 is refused: the
	// speaker's BGP library takes a LOCAL_PREF of 0 in a policy for none, so it
	// could not be sent (docs/bgp.md).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	LocalPref *int64 `json:"localPref,omitempty"`

	// Communities are BGP communities (RFC 1997) attached to the routes,
	// written asn:value with both halves from 0 to 65535 (65000:100), or as a
	// well-known name: no-export, no-advertise, no-export-subconfed, no-peer,
	// blackhole, graceful-shutdown, accept-own, llgr-stale, no-llgr.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self in ['no-export', 'no-advertise', 'no-export-subconfed', 'no-peer', 'blackhole', 'graceful-shutdown', 'accept-own', 'llgr-stale', 'no-llgr'] || (self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535)",messageExpression="self + ' is not a community: write asn:value with both from 0 to 65535 (65000:100), or a well-known name such as no-export'",reason=FieldValueInvalid
	// +listType=set
	// +optional
	Communities []string `json:"communities,omitempty"`

	// LargeCommunities are BGP large communities (RFC 8092) attached to the
	// routes, written global:local1:local2 with each part from 0 to 4294967295
	// (65000:1:2).
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && self.split(':').all(p, int(p) <= 4294967295)",messageExpression="self + ' is not a large community: write global:local1:local2 with each part from 0 to 4294967295 (65000:1:2)'",reason=FieldValueInvalid
	// +listType=set
	// +optional
	LargeCommunities []string `json:"largeCommunities,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisements.
//
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the BGPAdvertisements.
	Items []BGPAdvertisement `json:"items"`
}
