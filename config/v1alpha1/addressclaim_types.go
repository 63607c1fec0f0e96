package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AddressClaim records one allocated address: who holds it and which IPPool
// granted it. There is one object per address, named by the address (see
// config.ClaimName: an IPv6 address has its colons written as dashes, since
// an object name may not hold a colon), so the API server itself refuses a
// second owner, as upstream's networking.k8s.io IPAddress does for
// ClusterIPs (KEP-1880).
//
// AddressClaims are the contract between Herald's allocators and its
// speakers: an allocator creates (or extends) the claim before a Service's
// status names the address and removes its holder only after no status or
// spec.externalIPs of that Service names it; a speaker announces an address
// for a Service only while a claim lists the Service's UID and the Service
// still asks for the address, with the advertisements of the claim's pool.
// Only Herald's controller writes them.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=aclaim,categories=herald
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=".spec.address",description="The claimed address."
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=".spec.pool",description="The IPPool that granted the address (empty: imported from a Service status, in no pool)."
// +kubebuilder:printcolumn:name="Holders",type=integer,JSONPath=".spec.holderCount",description="How many Services hold the address (more than one when they share it)."
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=".spec.holders[0].namespace",description="The first holder's namespace."
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=".spec.holders[0].name",description="The first holder (kubectl describe lists them all)."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:validation:XValidation:rule="self.metadata.name == ((self.spec.address.startsWith(':') ? '0' + self.spec.address : self.spec.address).endsWith(':') ? (self.spec.address.startsWith(':') ? '0' + self.spec.address : self.spec.address) + '0' : (self.spec.address.startsWith(':') ? '0' + self.spec.address : self.spec.address)).replace(':', '-')",message="an AddressClaim is named by its address, with colons written as dashes (2001:db8::7 is named 2001-db8--7; a leading or trailing :: gets a 0: 2001:db8:: is named 2001-db8--0)",reason=FieldValueInvalid
type AddressClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the claimed address, its pool and its holders.
	Spec AddressClaimSpec `json:"spec"`
}

// AddressClaimSpec is one claimed address.
// +kubebuilder:validation:XValidation:rule="self.holderCount == size(self.holders)",message="holderCount must equal the number of holders",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="(self.family == 'IPv4') == (ip(self.address).family() == 4)",message="family must be the address's family",reason=FieldValueInvalid
type AddressClaimSpec struct {
	// Address is the claimed IP address in canonical form (198.51.100.7,
	// 2001:db8::7). It never changes.
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="address must be an IP address in canonical form (198.51.100.7, 2001:db8::7)",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="address is immutable",reason=FieldValueForbidden
	Address string `json:"address"`

	// Family is the address's family.
	// +kubebuilder:validation:Enum=IPv4;IPv6
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="family is immutable",reason=FieldValueForbidden
	Family string `json:"family"`

	// Pool is the IPPool that granted the address; speakers announce the
	// address with that pool's advertisements, even after an edit leaves
	// the address outside the pool. Empty for an address imported from a
	// Service status that lies in no pool. It never changes: an IPPool is
	// not deleted while a claim names it.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="pool is immutable",reason=FieldValueForbidden
	// +optional
	Pool string `json:"pool,omitempty"`

	// Holders are the Services that hold the address: one, or several that
	// share it.
	// +listType=map
	// +listMapKey=uid
	// +listMapKey=as
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	Holders []AddressHolder `json:"holders"`

	// HolderCount is the number of holders, for the printer column.
	// +kubebuilder:validation:Minimum=1
	HolderCount int32 `json:"holderCount"`
}

// How a Service holds an address.
const (
	// HolderLoadBalancer: the address is in the Service's
	// status.loadBalancer.ingress.
	HolderLoadBalancer = "LoadBalancer"
	// HolderExternalIP: the address is in the Service's spec.externalIPs,
	// claimed in a pool that allows it (or allocated there).
	HolderExternalIP = "ExternalIP"
)

// AddressHolder is one Service holding a claimed address.
type AddressHolder struct {
	// Namespace is the Service's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// Name is the Service's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// UID is the Service's UID: a Service deleted and created again under
	// the same name is another holder.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`
	// As says how the Service holds the address: LoadBalancer (its
	// status.loadBalancer.ingress) or ExternalIP (its spec.externalIPs).
	// +kubebuilder:validation:Enum=LoadBalancer;ExternalIP
	As string `json:"as"`
	// SharingKey is the Service's herald.dev/sharing-key when it holds the
	// address under sharing terms.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SharingKey string `json:"sharingKey,omitempty"`
	// SharingNamespaces are the other namespaces the Service lets share
	// the address (its herald.dev/sharing-cross-namespace, sorted; "*" for
	// every namespace). Services of different namespaces share only when
	// each lists the other's.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	SharingNamespaces []string `json:"sharingNamespaces,omitempty"`
	// BackendKey identifies the Service's selector under
	// externalTrafficPolicy Local, where sharers that both use Local must
	// select the same backends: the same selector in the same namespace.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	BackendKey string `json:"backendKey,omitempty"`
	// Ports are the Service's ports under its sharing terms.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=512
	// +optional
	Ports []HolderPort `json:"ports,omitempty"`
}

// HolderPort is one protocol and port of a sharing holder.
type HolderPort struct {
	// Protocol is TCP, UDP or SCTP.
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol string `json:"protocol"`
	// Port is the port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// AddressClaimList is a list of AddressClaims.
//
// +kubebuilder:object:root=true
type AddressClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AddressClaim `json:"items"`
}
