// Package layer2 announces load-balancer addresses on the local network
// segment: it answers ARP requests (IPv4) and neighbour solicitations (IPv6)
// for the addresses this node owns, sends gratuitous ARP and unsolicited
// neighbour advertisements when it takes an address over, and watches the wire
// for other machines answering for those addresses (split brain).
//
// Its entry point is the Announcer, which takes the whole desired state
// (address -> interfaces) and applies the difference. Which addresses this
// node owns is decided elsewhere (speaker's eligibility and election); this
// package only carries the decision out, on the interfaces ChooseInterfaces
// or the caller picked. It does not log and does not import Prometheus: it
// returns errors, sends Conflict events, and exposes Stats for the caller to
// export.
//
// Every decision to answer or drop a packet is a pure function returning a
// typed DropReason, tested without raw sockets. ARP frames are read from an
// AF_PACKET socket (github.com/mdlayher/packet) and decoded with
// github.com/mdlayher/arp's Packet; arp.Client is not used because it refuses
// interfaces without an IPv4 address, and an interface may carry
// load-balancer addresses without having one of its own. Neighbour
// solicitations are also read from an AF_PACKET socket, because a unicast
// solicitation (neighbour unreachability detection) is addressed to the
// load-balancer address itself, which is not configured on the node, so the
// kernel never delivers it to an ICMPv6 socket; replies, unsolicited
// advertisements and solicited-node group membership go through
// github.com/mdlayher/ndp's Conn.
package layer2
