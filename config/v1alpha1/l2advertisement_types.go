package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// L2Advertisement tells the speakers to announce addresses of some pools on
// the local network with ARP (IPv4) and NDP (IPv6), from one elected node per
// address.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=l2adv,categories=herald
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=".spec.ipPools",description="The pools announced, by name."
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=".spec.interfaces",description="The interfaces announced on."
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Whether every pool it names exists."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which pools are announced, from which nodes, on which interfaces.
	// +optional
	Spec L2AdvertisementSpec `json:"spec,omitempty"`
	// Status reports whether the advertisement resolves.
	// +optional
	Status AdvertisementStatus `json:"status,omitempty"`
}

// L2AdvertisementSpec says which pools are announced at layer 2, from which
// nodes and on which interfaces.
// +kubebuilder:validation:XValidation:rule="!(has(self.ipPools) && has(self.ipPoolSelector))",message="set either ipPools or ipPoolSelector, not both",reason=FieldValueForbidden
type L2AdvertisementSpec struct {
	// IPPools names the pools to announce. Leave both ipPools and
	// ipPoolSelector unset to announce every pool.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:MinLength=1
	// +listType=set
	// +optional
	IPPools []string `json:"ipPools,omitempty"`

	// IPPoolSelector selects the pools to announce by their labels.
	// +optional
	IPPoolSelector *metav1.LabelSelector `json:"ipPoolSelector,omitempty"`

	// NodeSelectors restrict which nodes may announce: a node qualifies when
	// any selector matches its labels. Empty, every node qualifies.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Interfaces restricts announcements to these network interfaces (names
	// as `ip link` shows them). Empty, a speaker answers on the interfaces
	// whose subnet contains the address, else on every interface that is not
	// a bridge port, loopback, or a container interface.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:Pattern=`^[^\s/:]+$`
	// +listType=set
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`
}

// AdvertisementStatus reports whether an advertisement resolves.
type AdvertisementStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions describe the advertisement's state. Type Ready is False when
	// it names a pool (or, for BGP, a peer) that does not exist or cannot be
	// used; the message says which.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisements.
//
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the L2Advertisements.
	Items []L2Advertisement `json:"items"`
}
