package layer2

// DropReason says why a received packet was not answered. The String values
// are stable lowerCamel names, fit for metric labels.
type DropReason uint8

const (
	// answered is the zero DropReason: the packet was answered.
	answered DropReason = iota
	// DropMalformed: the frame or message could not be parsed, or is not
	// Ethernet/IPv4 ARP.
	DropMalformed
	// DropFromSelf: the packet came from one of this node's own interfaces
	// (packet sockets also see outgoing frames).
	DropFromSelf
	// DropNotARPRequest: an ARP packet that is not a request (a reply).
	DropNotARPRequest
	// DropGratuitous: a gratuitous ARP request, which announces a binding
	// and asks nothing.
	DropGratuitous
	// DropNotNeighborSolicitation: an NDP message that is not a neighbour
	// solicitation (an advertisement).
	DropNotNeighborSolicitation
	// DropBadHopLimit: an NDP message whose hop limit is not 255, so it may
	// have been forwarded from another link (RFC 4861 section 7.1.1).
	DropBadHopLimit
	// DropNotOwned: the target address is not owned by this node.
	DropNotOwned
	// DropWrongInterface: the target address is owned by this node, but is
	// not announced on the interface the request arrived on.
	DropWrongInterface

	numDropReasons
)

// DropReasons lists every DropReason, for callers that pre-register metrics.
var DropReasons = []DropReason{
	DropMalformed, DropFromSelf, DropNotARPRequest, DropGratuitous,
	DropNotNeighborSolicitation, DropBadHopLimit, DropNotOwned, DropWrongInterface,
}

// String returns the reason's stable lowerCamel name.
func (r DropReason) String() string {
	switch r {
	case answered:
		return "answered"
	case DropMalformed:
		return "malformed"
	case DropFromSelf:
		return "fromSelf"
	case DropNotARPRequest:
		return "notARPRequest"
	case DropGratuitous:
		return "gratuitous"
	case DropNotNeighborSolicitation:
		return "notNeighborSolicitation"
	case DropBadHopLimit:
		return "badHopLimit"
	case DropNotOwned:
		return "notOwned"
	case DropWrongInterface:
		return "wrongInterface"
	}
	return "unknown"
}
