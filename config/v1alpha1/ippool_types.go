package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPPool is a set of addresses that Herald hands out to Services of type
// LoadBalancer, and optionally accepts or allocates as spec.externalIPs.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipp;pool,categories=herald
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=".spec.addresses",description="The pool's CIDRs and ranges."
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=".spec.autoAssign",description="Whether Services that name no pool can get addresses from it."
// +kubebuilder:printcolumn:name="IPv4 Used",type=string,JSONPath=".status.ipv4.used",description="IPv4 addresses allocated."
// +kubebuilder:printcolumn:name="IPv4 Free",type=string,JSONPath=".status.ipv4.free",description="IPv4 addresses still free."
// +kubebuilder:printcolumn:name="IPv6 Used",type=string,JSONPath=".status.ipv6.used",description="IPv6 addresses allocated."
// +kubebuilder:printcolumn:name="IPv6 Free",type=string,JSONPath=".status.ipv6.free",description="IPv6 addresses still free."
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Whether the pool is valid and serving."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which addresses the pool holds and who may use them.
	Spec IPPoolSpec `json:"spec"`
	// Status reports the pool's conditions and how many addresses are in use.
	// +optional
	Status IPPoolStatus `json:"status,omitempty"`
}

// The CEL rules on IPPoolSpec.Addresses, in order: the entry is a CIDR or a
// range of two IP addresses; a CIDR has no host bits set; a range does not mix
// families; a range does not run backwards. CEL has no ordering on IP
// addresses, so the last rule looks for the first bit where the two ends
// differ: for n in 0..bits-1, if both ends share their first n bits but not
// n+1, the range runs backwards when the last address has a 0 there (its /n+1
// prefix contains the first address's /n network address). The prefix
// suffixes are spelled with list lookups ('/' + tens + units) rather than
// string(n), whose size the apiserver's cost estimator cannot bound; the
// whole rule is estimated at about 137,000 per entry, 64 entries stay under the
// per-rule limit of 10,000,000.

// IPPoolSpec says which addresses an IPPool holds and who may use them.
type IPPoolSpec struct {
	// Addresses are the pool's addresses: CIDRs (198.51.100.0/24,
	// 2001:db8:1::/64) and inclusive ranges written first-last without spaces
	// (198.51.100.10-198.51.100.20, 2001:db8::10-2001:db8::ff). IPv4 and IPv6
	// entries may be mixed in one pool, but one range never mixes families and
	// never runs backwards. Entries of one pool must not overlap each other, and
	// should not overlap other pools: when two pools overlap, the older one keeps
	// the shared addresses.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=91
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]))",messageExpression="self + ' is neither a CIDR (198.51.100.0/24, 2001:db8::/64) nor a range first-last of two IP addresses (198.51.100.10-198.51.100.20), written without spaces'",reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="a CIDR must have no address bits set beyond its prefix length: write 198.51.100.0/24, not 198.51.100.7/24",reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule="!(self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1])) || ip(self.split('-')[0]).family() == ip(self.split('-')[1]).family()",messageExpression="'range ' + self + ' mixes IPv4 and IPv6: both ends must be of the same family'",reason=FieldValueInvalid
	// +kubebuilder:validation:items:XValidation:rule="!(self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]) && ip(self.split('-')[0]).family() == ip(self.split('-')[1]).family()) || !lists.range(128).exists(n, n < (ip(self.split('-')[0]).family() == 4 ? 32 : 128) && cidr(self.split('-')[0] + ('/' + ['', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'][n / 10] + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'][n % 10])).containsIP(self.split('-')[1]) && !cidr(self.split('-')[0] + ('/' + ['', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'][(n + 1) / 10] + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'][(n + 1) % 10])).containsIP(self.split('-')[1]) && cidr(self.split('-')[1] + ('/' + ['', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'][(n + 1) / 10] + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'][(n + 1) % 10])).containsIP(cidr(self.split('-')[0] + ('/' + ['', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'][n / 10] + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'][n % 10])).masked().ip()))",messageExpression="'range ' + self + ' runs backwards: its first address is greater than its last'",reason=FieldValueInvalid
	// +listType=set
	Addresses []string `json:"addresses"`

	// AutoAssign lets the pool serve Services that name neither a pool nor an
	// address. With false, the pool only serves Services that ask for it by
	// name (annotation herald.dev/pool) or ask for one of its addresses.
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255, which some old
	// clients and routers treat as network or broadcast addresses.
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// ServiceAllocation restricts which Services may get load-balancer
	// addresses from the pool, and orders the pool among the others. Unset, the
	// pool serves every Service, after the pools that set a priority.
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`

	// AllowExternalIPs says which namespaces may use the pool's addresses in a
	// Service's spec.externalIPs, either written by the user (then Herald
	// claims and announces them) or allocated on request (annotation
	// herald.dev/allocate-external-ip). Unset, the pool never serves
	// spec.externalIPs, and an external IP that no pool allows is neither
	// claimed nor announced.
	// +optional
	AllowExternalIPs *ExternalIPAllowance `json:"allowExternalIPs,omitempty"`
}

// ServiceAllocation restricts which Services may get load-balancer addresses
// from a pool. A Service qualifies when its namespace qualifies (listed in
// namespaces or matched by namespaceSelector, or both are unset) and its
// labels match serviceSelector (when set).
type ServiceAllocation struct {
	// Namespaces lists the namespaces whose Services may use the pool, in
	// addition to those namespaceSelector matches.
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector selects, by their labels, namespaces whose Services may
	// use the pool, in addition to those listed in namespaces.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ServiceSelector, when set, admits only Services whose labels it matches.
	// +optional
	ServiceSelector *metav1.LabelSelector `json:"serviceSelector,omitempty"`

	// Priority orders automatic pool choice: lower values are tried first, then
	// pools are taken by name. Pools without a priority come after every pool
	// that has one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Priority *int32 `json:"priority,omitempty"`
}

// ExternalIPAllowance says which namespaces may use a pool's addresses in
// spec.externalIPs. A namespace qualifies when it is listed in namespaces or
// matched by namespaceSelector. Use namespaceSelector: {} to allow every
// namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaces) || has(self.namespaceSelector)",message="set namespaces or namespaceSelector (namespaceSelector: {} allows every namespace)",reason=FieldValueRequired
type ExternalIPAllowance struct {
	// Namespaces lists the namespaces whose Services may use the pool's
	// addresses in spec.externalIPs.
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector selects, by their labels, namespaces whose Services may
	// use the pool's addresses in spec.externalIPs. An empty selector ({})
	// selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// IPPoolStatus reports an IPPool's conditions and address usage.
type IPPoolStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions describe the pool's state. Types: Ready (valid and serving),
	// Overlapping (shares addresses with another pool), AddressesOutsidePool
	// (Services hold addresses an edit removed from the pool), DeletionBlocked
	// (the pool is being deleted and still has allocations).
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// IPv4 counts the pool's IPv4 addresses. Unset when the pool has none.
	// +optional
	IPv4 *AddressCounts `json:"ipv4,omitempty"`

	// IPv6 counts the pool's IPv6 addresses. Unset when the pool has none.
	// +optional
	IPv6 *AddressCounts `json:"ipv6,omitempty"`
}

// AddressCounts are exact address counts for one family of a pool, written as
// decimal strings because IPv6 pools hold more addresses than an int64 counts.
type AddressCounts struct {
	// Total is the number of addresses in the pool for this family, less those
	// that avoidBuggyIPs excludes.
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)$`
	Total string `json:"total"`
	// Used is the number of those addresses allocated to Services.
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)$`
	Used string `json:"used"`
	// Free is Total minus Used.
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)$`
	Free string `json:"free"`
}

// IPPoolList is a list of IPPools.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the IPPools.
	Items []IPPool `json:"items"`
}
