package v1alpha1

// Condition types used in the status of Herald's resources. Every resource has
// Ready; the others belong to IPPool.
const (
	// ConditionReady is True when the object is valid and fully in use, and
	// False with a reason (see the Reason constants) when something keeps all
	// or part of it out of service.
	ConditionReady = "Ready"
	// ConditionOverlapping is True when an IPPool shares addresses with another
	// IPPool. The older pool (creation time, then name) keeps the shared
	// addresses; the newer one serves only the rest.
	ConditionOverlapping = "Overlapping"
	// ConditionAddressesOutsidePool is True when Services hold addresses that an
	// edit moved out of the IPPool. They keep them; nothing new is allocated there.
	ConditionAddressesOutsidePool = "AddressesOutsidePool"
	// ConditionDeletionBlocked is True while a deleted IPPool waits for its last
	// allocated address to be released before its finalizer is removed.
	ConditionDeletionBlocked = "DeletionBlocked"
)

// Condition reasons. They are stable, CamelCase, and safe to match on.
const (
	// ReasonValid: the object passed every check.
	ReasonValid = "Valid"
	// ReasonInvalidAddresses: an IPPool address entry cannot be parsed, runs
	// backwards, mixes families, or overlaps another entry of the same pool.
	ReasonInvalidAddresses = "InvalidAddresses"
	// ReasonInvalidSelector: a label selector cannot be parsed.
	ReasonInvalidSelector = "InvalidSelector"
	// ReasonInvalidField: a field holds a value the schema should have refused.
	ReasonInvalidField = "InvalidField"
	// ReasonNoOverlap: the IPPool shares no address with another IPPool.
	ReasonNoOverlap = "NoOverlap"
	// ReasonOverlapsOtherPool: the IPPool shares addresses with another IPPool.
	ReasonOverlapsOtherPool = "OverlapsOtherPool"
	// ReasonPoolNotFound: an advertisement names an IPPool that does not exist.
	ReasonPoolNotFound = "PoolNotFound"
	// ReasonPeerNotFound: a BGPAdvertisement names a BGPPeer that does not exist
	// or is not usable.
	ReasonPeerNotFound = "PeerNotFound"
	// ReasonSecretNotFound: a BGPPeer's password Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyNotFound: a BGPPeer's password Secret lacks the key.
	ReasonSecretKeyNotFound = "SecretKeyNotFound"
	// ReasonDuplicatePeer: two BGPPeers peer with the same address from one node.
	ReasonDuplicatePeer = "DuplicatePeer"
	// ReasonAggregationTooShort: an aggregation length would advertise
	// addresses outside the IPPool.
	ReasonAggregationTooShort = "AggregationTooShort"
	// ReasonAddressesInUse: allocated addresses are outside the pool, or keep a
	// deleted pool alive.
	ReasonAddressesInUse = "AddressesInUse"
)
