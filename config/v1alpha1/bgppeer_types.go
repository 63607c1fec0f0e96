package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeer is a BGP router that the speakers on the selected nodes open a
// session with, to advertise Service addresses as routes.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpp;peer,categories=herald
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Peer Address",type=string,JSONPath=".spec.peerAddress",description="The router's address."
// +kubebuilder:printcolumn:name="Interface",type=string,JSONPath=".spec.interface",description="The interface of an unnumbered session.",priority=1
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=".spec.peerASN",description="The router's AS number."
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=".spec.myASN",description="The speakers' AS number."
// +kubebuilder:printcolumn:name="BFD",type=boolean,JSONPath=".spec.bfd.enabled",description="Whether BFD watches the session."
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Whether the peer's configuration is usable."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the router and the session.
	Spec BGPPeerSpec `json:"spec"`
	// Status reports whether the peer's configuration is usable. Per-node
	// session state is reported elsewhere, one record per node.
	// +optional
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerSpec describes a BGP router and the session the speakers open with it.
// +kubebuilder:validation:XValidation:rule="has(self.peerAddress) != has(self.interface)",message="set exactly one of peerAddress (a numbered session) and interface (an unnumbered session over the interface's IPv6 link-local address)",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || !has(self.sourceAddress)",message="sourceAddress cannot be used with interface: an unnumbered session runs from the interface's IPv6 link-local address",reason=FieldValueForbidden,fieldPath=".sourceAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || !has(self.ebgpMultihop) || !self.ebgpMultihop",message="ebgpMultihop cannot be used with interface: an unnumbered router is directly connected",reason=FieldValueForbidden,fieldPath=".ebgpMultihop"
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || !has(self.bfd) || (has(self.bfd.enabled) && !self.bfd.enabled)",message="bfd cannot be used with interface: the speaker's BFD (GoBGP v4.9.0) is not run over link-local addresses",reason=FieldValueForbidden,fieldPath=".bfd"
// +kubebuilder:validation:XValidation:rule="!(has(self.password) && has(self.passwordSecretRef))",message="set either password or passwordSecretRef, not both",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultihop) || !self.ebgpMultihop || self.peerASN != self.myASN",message="ebgpMultihop applies only to eBGP sessions: peerASN must differ from myASN",reason=FieldValueForbidden,fieldPath=".ebgpMultihop"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultihop) || !self.ebgpMultihop || !has(self.bfd) || (has(self.bfd.enabled) && !self.bfd.enabled)",message="bfd cannot be used with ebgpMultihop: the speaker's BFD is single-hop only (no RFC 5883 multihop BFD in GoBGP v4.9.0)",reason=FieldValueForbidden,fieldPath=".bfd"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || !has(self.peerAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()",message="sourceAddress must be of the same IP family as peerAddress",reason=FieldValueInvalid,fieldPath=".sourceAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.keepaliveTime) || !self.keepaliveTime.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || [has(self.holdTime) ? self.holdTime : '90s'].all(h, !h.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(h) == duration('0s') ? duration(self.keepaliveTime) == duration('0s') : duration(self.keepaliveTime) < duration(h)))",message="keepaliveTime must be shorter than holdTime (90s when unset), typically a third of it; with holdTime 0s it must be 0s or unset",reason=FieldValueInvalid,fieldPath=".keepaliveTime"
type BGPPeerSpec struct {
	// PeerAddress is the router's IPv4 or IPv6 address. Set either it or
	// interface.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && !ip(self).isUnspecified()",messageExpression="self + ' is not a usable IP address (write it without brackets, zone or prefix length)'",reason=FieldValueInvalid
	// +optional
	PeerAddress string `json:"peerAddress,omitempty"`

	// Interface makes the session unnumbered (RFC 5549): it runs over the
	// IPv6 link-local addresses of this node interface and of the one router
	// on its other end, and IPv4 routes carry the node's IPv6 link-local
	// address as next hop (the extended next hop capability, RFC 8950). The
	// speaker finds the router's address among the interface's IPv6
	// neighbours that are routers (learned from its router advertisements),
	// and sends router advertisements (router lifetime 0) on the interface
	// so that the router learns the node's. A node without the interface
	// opens no session. Set either it or peerAddress; not with sourceAddress,
	// ebgpMultihop or bfd.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[^/%:\s]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="interface must be a Linux interface name",reason=FieldValueInvalid
	// +optional
	Interface string `json:"interface,omitempty"`

	// PeerASN is the router's autonomous system number, 1 to 4294967295.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	PeerASN int64 `json:"peerASN"`

	// MyASN is the autonomous system number the speakers use, 1 to
	// 4294967295. Equal to peerASN makes an iBGP session, different an eBGP one.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	MyASN int64 `json:"myASN"`

	// Port is the router's TCP port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=179
	// +optional
	Port *int32 `json:"port,omitempty"`

	// HoldTime is how long a session stays up without hearing from the router,
	// in whole seconds from 3s to 65535s. Unset: 90s. 0s (no keepalives) is
	// refused: the embedded GoBGP (v4.9.0) takes 0 for its 90s default.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",messageExpression="self + ' is not a duration such as 90s or 1m30s'",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s') && duration(self).getMilliseconds() % 1000 == 0)",messageExpression="'holdTime ' + self + ' is out of range: use whole seconds from 3s to 65535s (0s, no keepalives, is not supported)'",reason=FieldValueInvalid
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the interval between keepalive messages, in whole
	// seconds, shorter than holdTime. Unset: a third of holdTime.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",messageExpression="self + ' is not a duration such as 30s'",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) <= duration('65535s') && duration(self).getMilliseconds() % 1000 == 0)",messageExpression="'keepaliveTime ' + self + ' is out of range: use whole seconds up to 65535s'",reason=FieldValueInvalid
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// Password is the TCP MD5 password of the session, written inline.
	// Deprecated: anyone who can read BGPPeers can read it, and it ends up in
	// audit logs and backups; use passwordSecretRef. Writing it draws an API
	// warning (deploy/controller/bgppeer-password-policy.yaml). Mutually
	// exclusive with passwordSecretRef.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecretRef names the Secret key that holds the session's TCP MD5
	// password. The Secret lives in the namespace Herald runs in: the speakers
	// read Secrets nowhere else. Mutually exclusive with password.
	// +kubebuilder:validation:XValidation:rule="!has(self.namespace)",message="passwordSecretRef.namespace is not supported: Herald reads BGP password Secrets only in the namespace it runs in (herald-system unless installed elsewhere); create the Secret there and leave namespace unset",reason=FieldValueForbidden,fieldPath=".namespace"
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// EBGPMultihop allows an eBGP router that is more than one hop away (the
	// session's IP TTL is raised to 255). Only for eBGP sessions, and not
	// with bfd (single-hop only).
	// +optional
	EBGPMultihop bool `json:"ebgpMultihop,omitempty"`

	// SourceAddress is the local address the session is opened from. It must
	// be of the same family as peerAddress, and the speaker only peers from
	// nodes that have it. Unset: the kernel chooses.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && !ip(self).isUnspecified()",messageExpression="self + ' is not a usable IP address'",reason=FieldValueInvalid
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`

	// NodeSelectors restrict which nodes peer with this router: a node
	// qualifies when any selector matches its labels. Empty, every node peers.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// BFD runs Bidirectional Forwarding Detection alongside the session, so a
	// dead node's routes are withdrawn within the BFD detection time instead
	// of the hold time.
	// +optional
	BFD *BFDSettings `json:"bfd,omitempty"`

	// GracefulRestart lets the router keep this node's routes while the
	// speaker restarts (RFC 4724).
	// +optional
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`
}

// SecretKeyReference names one key of a Secret.
type SecretKeyReference struct {
	// Name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Namespace must be unset: the Secret is read in the namespace Herald
	// runs in, the only one whose Secrets the speakers may read. The field
	// stays so that records written before it was refused still decode.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Key is the key in the Secret's data that holds the password.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:default=password
	// +optional
	Key string `json:"key,omitempty"`
}

// BFDSettings are the BFD timers of a session. Detection time is
// multiplier x the slower of the two ends' intervals.
type BFDSettings struct {
	// Enabled turns BFD on. Setting bfd at all turns it on unless this is false.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// MinRx is the shortest interval between BFD packets this node is willing
	// to receive, from 10ms to 60s. Unset: 300ms.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('10ms') && duration(self) <= duration('60s')",messageExpression="'minRx ' + self + ' must be a duration from 10ms to 60s, such as 300ms'",reason=FieldValueInvalid
	// +optional
	MinRx *metav1.Duration `json:"minRx,omitempty"`
	// MinTx is the shortest interval at which this node wants to send BFD
	// packets, from 10ms to 60s. Unset: 300ms.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('10ms') && duration(self) <= duration('60s')",messageExpression="'minTx ' + self + ' must be a duration from 10ms to 60s, such as 300ms'",reason=FieldValueInvalid
	// +optional
	MinTx *metav1.Duration `json:"minTx,omitempty"`
	// Multiplier is how many packets in a row may be lost before the session
	// is declared down, 2 to 255. Unset: 3.
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	// +optional
	Multiplier *int32 `json:"multiplier,omitempty"`
}

// GracefulRestart configures BGP graceful restart (RFC 4724).
type GracefulRestart struct {
	// Enabled turns graceful restart on. Setting gracefulRestart at all turns
	// it on unless this is false.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// RestartTime is how long the router keeps this node's routes while the
	// speaker restarts, in whole seconds from 1s to 4095s. Unset: 120s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('4095s') && duration(self).getMilliseconds() % 1000 == 0",messageExpression="'restartTime ' + self + ' must be whole seconds from 1s to 4095s'",reason=FieldValueInvalid
	// +optional
	RestartTime *metav1.Duration `json:"restartTime,omitempty"`
}

// BGPPeerStatus reports whether a BGPPeer's configuration is usable.
type BGPPeerStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions describe the peer's configuration. Type Ready is False when
	// the password Secret or key is missing, or another BGPPeer has the same
	// address on a node; the message says which.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPPeerList is a list of BGPPeers.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the BGPPeers.
	Items []BGPPeer `json:"items"`
}
