package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SpeakerStatus records what the speaker on one node announces: one object
// per node, named after the node and written only by that node's speaker
// (and, once the speaker is gone, by a surviving speaker that marks it not
// ready). It lists the node's layer-2 announcements (address, Service,
// interfaces, since when) and its BGP sessions, so `kubectl get
// speakerstatuses` tells which node announces each address without the
// object count growing as Services x Nodes.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=spst,categories=herald
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Whether the node's speaker runs and announces."
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=".status.members",description="The live speakers this speaker saw, itself included, when it last wrote its record."
// +kubebuilder:printcolumn:name="Layer2",type=integer,JSONPath=".status.layer2Addresses",description="How many addresses this node answers ARP/NDP for (kubectl describe lists them)."
// +kubebuilder:printcolumn:name="BGP Up",type=integer,JSONPath=".status.bgpSessionsEstablished",description="How many of this node's BGP sessions are Established."
// +kubebuilder:printcolumn:name="BGP Sessions",type=integer,JSONPath=".status.bgpSessionCount",description="How many BGP sessions this node is configured with."
// +kubebuilder:printcolumn:name="Gossip Key",type=string,JSONPath=".status.gossipKeys.primary",description="Fingerprint of the gossip key this speaker encrypts with."
// +kubebuilder:printcolumn:name="Gossip Keys",type=string,priority=1,JSONPath=".status.gossipKeys.installed",description="Fingerprints of the gossip keys this speaker decrypts with."
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type SpeakerStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Status is what the node's speaker announces.
	// +optional
	Status SpeakerStatusStatus `json:"status,omitempty"`
}

// Condition types and reasons of a SpeakerStatus.
const (
	// SpeakerReasonRunning: the speaker runs and its record is current.
	SpeakerReasonRunning = "Running"
	// SpeakerReasonStopped: the speaker shut down cleanly and handed its
	// addresses over.
	SpeakerReasonStopped = "Stopped"
	// SpeakerReasonNotAlive: the other speakers lost contact with this one
	// (crash, node failure, network partition); its announcements were
	// cleared by a surviving speaker.
	SpeakerReasonNotAlive = "SpeakerNotAlive"

	// SpeakerConditionBFDUp is present, False with reason SpeakerReasonBFDNotUp,
	// while a BGP session of this node is established with BFD on but its BFD
	// has not come up: the router does not answer BFD, so a failure of this
	// node is detected by the hold time only. Absent otherwise.
	SpeakerConditionBFDUp = "BFDUp"
	// SpeakerReasonBFDNotUp: see SpeakerConditionBFDUp.
	SpeakerReasonBFDNotUp = "BFDNotUp"
)

// SpeakerStatusStatus is what one node's speaker announces.
type SpeakerStatusStatus struct {
	// Conditions describe the speaker. Type Ready is True (reason Running)
	// while the speaker runs, and False when it stopped (Stopped) or the
	// other speakers lost contact with it (SpeakerNotAlive).
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Members is the number of live speakers this speaker saw, itself
	// included, when it last wrote this record: a change of the count alone
	// does not rewrite it (one node's death would make every node write), so
	// read the herald_speaker_members metric (state alive) for the live count.
	// +optional
	Members int32 `json:"members,omitempty"`

	// Layer2 lists the addresses this node answers ARP (IPv4) or NDP (IPv6)
	// for, one entry per address and Service (an address shared by several
	// Services has one entry per Service), sorted by address then Service.
	// +listType=atomic
	// +optional
	Layer2 []Layer2Announcement `json:"layer2,omitempty"`

	// Layer2Addresses is the number of distinct addresses in Layer2. It backs
	// a printer column, since a column can show only one element of a list.
	// +optional
	Layer2Addresses int32 `json:"layer2Addresses,omitempty"`

	// BGPSessions lists this node's BGP sessions, one per BGPPeer that
	// selects the node, sorted by peer name.
	// +listType=atomic
	// +optional
	BGPSessions []BGPSessionStatus `json:"bgpSessions,omitempty"`

	// BGPSessionCount is the number of entries in BGPSessions.
	// +optional
	BGPSessionCount int32 `json:"bgpSessionCount,omitempty"`

	// BGPSessionsEstablished is the number of BGPSessions in state Established.
	// +optional
	BGPSessionsEstablished int32 `json:"bgpSessionsEstablished,omitempty"`

	// GossipKeys is this speaker's gossip keyring, by fingerprint (the first
	// 8 hex digits of the SHA-256 of a key's bytes, never the key), so a
	// key rotation's progress shows on every node (docs/security.md).
	// Absent when gossip is not encrypted.
	// +optional
	GossipKeys *GossipKeyStatus `json:"gossipKeys,omitempty"`
}

// GossipKeyStatus is one speaker's gossip keyring.
type GossipKeyStatus struct {
	// Primary is the fingerprint of the key the speaker encrypts with.
	// +kubebuilder:validation:MaxLength=16
	Primary string `json:"primary"`
	// Installed are the fingerprints of the keys the speaker decrypts with,
	// sorted.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=16
	// +optional
	Installed []string `json:"installed,omitempty"`
	// Waiting lists the rotation steps that wait for other speakers: a key
	// becomes primary only once every live speaker has it installed, and a
	// key is removed only once no live speaker encrypts with it.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Waiting []string `json:"waiting,omitempty"`
	// SecretProblem says why the gossip key Secret's current content is not
	// applied (the speaker keeps the keys it has); empty when it is.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SecretProblem string `json:"secretProblem,omitempty"`
}

// Layer2Announcement is one address this node announces at layer 2, for one
// Service.
type Layer2Announcement struct {
	// Address is the announced IPv4 or IPv6 address.
	// +kubebuilder:validation:MaxLength=45
	Address string `json:"address"`
	// Service is the Service the address belongs to, as namespace/name.
	// +kubebuilder:validation:MaxLength=317
	Service string `json:"service"`
	// Interfaces are the network interfaces the address is announced on.
	// +listType=atomic
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`
	// Since is when this node started announcing the address.
	Since metav1.Time `json:"since"`
}

// BGPSessionStatus is the state of one BGP session of a node.
type BGPSessionStatus struct {
	// Peer is the BGPPeer's name.
	// +kubebuilder:validation:MaxLength=253
	Peer string `json:"peer"`
	// PeerAddress is the router's address.
	// +kubebuilder:validation:MaxLength=45
	// +optional
	PeerAddress string `json:"peerAddress,omitempty"`
	// State is the BGP finite-state-machine state: Idle, Connect, Active,
	// OpenSent, OpenConfirm or Established.
	// +kubebuilder:validation:MaxLength=32
	State string `json:"state"`
	// BFDState is the BFD session state (Up, Down, Init, AdminDown), empty
	// when BFD is off.
	// +kubebuilder:validation:MaxLength=32
	// +optional
	BFDState string `json:"bfdState,omitempty"`
	// LastError is the last error of the session (for example, the peer
	// rejected the password), empty when there was none.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`
	// PrefixesAdvertised is the number of prefixes advertised to the peer.
	// +optional
	PrefixesAdvertised int32 `json:"prefixesAdvertised,omitempty"`
	// Since is when the session entered State.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// SpeakerStatusList is a list of SpeakerStatuses.
//
// +kubebuilder:object:root=true
type SpeakerStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the SpeakerStatuses.
	Items []SpeakerStatus `json:"items"`
}
