package layer2

import (
	"net"
	"net/netip"
)

// Evidence says which packet showed another machine claiming an address.
type Evidence string

// The packets that reveal a conflict. On a switched network only broadcast
// and multicast packets of the other claimant reach this node: its
// gratuitous ARP and unsolicited advertisements, sent when it takes over.
const (
	// EvidenceARPReply: an ARP reply (or gratuitous reply) from another MAC
	// with the address as sender.
	EvidenceARPReply Evidence = "arpReply"
	// EvidenceARPRequest: an ARP request (gratuitous or not) from another MAC
	// with the address as sender.
	EvidenceARPRequest Evidence = "arpRequest"
	// EvidenceNeighborAdvertisement: a neighbour advertisement for the
	// address carrying another MAC.
	EvidenceNeighborAdvertisement Evidence = "neighborAdvertisement"
	// EvidenceNeighborSolicitation: a neighbour solicitation sent from the
	// address by another MAC.
	EvidenceNeighborSolicitation Evidence = "neighborSolicitation"
)

// Conflict reports that another machine answers for an address this node
// announces. The caller resolves it with speaker.Outranks: the lower-ranked
// node stops announcing, and the higher-ranked one calls
// Announcer.Reannounce so clients that learnt the other MAC come back.
type Conflict struct {
	// Addr is the owned address.
	Addr netip.Addr
	// Interface is where the other claimant was seen.
	Interface string
	// OtherMAC is the other claimant's link-layer address; empty when an
	// advertisement carried none.
	OtherMAC net.HardwareAddr
	// OtherIP is the IPv6 source address of the other claimant's NDP
	// message (usually its link-local address); invalid for ARP.
	OtherIP netip.Addr
	// Evidence is the kind of packet that revealed the conflict.
	Evidence Evidence
}
