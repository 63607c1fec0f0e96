package layer2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// allNodes is the link-scope all-nodes multicast group, where unsolicited
// neighbour advertisements go.
var allNodes = netip.MustParseAddr("ff02::1")

// ndpPacket is one received NDP message with what the IPv6 and Ethernet
// headers said about it.
type ndpPacket struct {
	msg      ndp.Message
	src, dst netip.Addr
	hopLimit int
	// srcMAC is the Ethernet source address; nil when unknown.
	srcMAC net.HardwareAddr
}

// ndpDecision is what to do with one received NDP message.
type ndpDecision struct {
	// drop is why the message is not answered; answered (zero) when reply is set.
	drop DropReason
	// request is true when the message was a neighbour solicitation.
	request bool
	// reply is the neighbour advertisement to send to replyTo at the
	// Ethernet address replyMAC, from reply.TargetAddress.
	reply    *ndp.NeighborAdvertisement
	replyTo  netip.Addr
	replyMAC net.HardwareAddr
	// conflict is set when the message shows another MAC claiming an
	// address this interface announces.
	conflict *Conflict
}

// linkLayerAddr returns the link-layer address option of direction dir in
// opts, or nil.
func linkLayerAddr(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == dir {
			return lla.Addr
		}
	}
	return nil
}

// decideNDP decides how the responder on iface, whose MAC is mac, handles p.
// It is pure: own is the ownership snapshot at the time of reading.
func decideNDP(p ndpPacket, iface string, mac net.HardwareAddr, own *ownership) ndpDecision {
	ns, isNS := p.msg.(*ndp.NeighborSolicitation)
	d := ndpDecision{request: isNS}
	if p.hopLimit != ndp.HopLimit {
		d.drop = DropBadHopLimit
		return d
	}
	if own.isSelf(p.srcMAC) {
		d.drop = DropFromSelf
		return d
	}
	conflict := func(addr netip.Addr, other net.HardwareAddr, ev Evidence) *Conflict {
		if other == nil {
			other = p.srcMAC
		}
		return &Conflict{Addr: addr, Interface: iface, OtherMAC: bytes.Clone(other), OtherIP: p.src, Evidence: ev}
	}

	if na, ok := p.msg.(*ndp.NeighborAdvertisement); ok {
		tlla := linkLayerAddr(na.Options, ndp.Target)
		if own.isSelf(tlla) {
			d.drop = DropFromSelf
			return d
		}
		if own.ownedOn(iface, na.TargetAddress) {
			d.conflict = conflict(na.TargetAddress, tlla, EvidenceNeighborAdvertisement)
		}
	}
	if !isNS {
		d.drop = DropNotNeighborSolicitation
		return d
	}

	slla := linkLayerAddr(ns.Options, ndp.Source)
	if own.isSelf(slla) {
		d.drop = DropFromSelf
		return d
	}
	if own.ownedOn(iface, p.src) {
		d.conflict = conflict(p.src, slla, EvidenceNeighborSolicitation)
	}
	dad := p.src.IsUnspecified()
	if ns.TargetAddress.IsMulticast() || (dad && (slla != nil || !isSolicitedNode(p.dst))) {
		// RFC 4861 section 7.1.1 validity checks.
		d.drop = DropMalformed
		return d
	}
	if d.drop = own.targetReason(iface, ns.TargetAddress); d.drop != answered {
		return d
	}
	d.reply = &ndp.NeighborAdvertisement{
		// The override flag makes neighbours replace a cached address at
		// once: an announced address is never anycast.
		Override:      true,
		Solicited:     !dad,
		TargetAddress: ns.TargetAddress,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	d.replyTo, d.replyMAC = p.src, bytes.Clone(slla)
	if d.replyMAC == nil {
		// Unicast solicitations may omit the option; the frame's source is
		// the solicitor.
		d.replyMAC = bytes.Clone(p.srcMAC)
	}
	if dad {
		// Someone runs duplicate address detection on our address: defend it
		// to all nodes (RFC 4861 section 7.2.4).
		d.replyTo, d.replyMAC = allNodes, multicastMAC(allNodes)
	}
	if d.replyMAC == nil {
		return ndpDecision{request: true, drop: DropMalformed, conflict: d.conflict}
	}
	return d
}

// multicastMAC returns the Ethernet address an IPv6 multicast group maps
// to (RFC 2464 section 7).
func multicastMAC(group netip.Addr) net.HardwareAddr {
	b := group.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// ndpOut is an NDP message to send, with its IPv6 and Ethernet addressing.
// Advertisements are sent from the announced address itself, like the
// kernel does for its own addresses: some tools (ndisc6) ignore an answer
// for a global target that comes from a link-local source.
type ndpOut struct {
	msg      ndp.Message
	src, dst netip.Addr
	dstMAC   net.HardwareAddr
}

// ndpFrame returns o as an Ethernet frame from srcMAC, with hop limit 255
// and its ICMPv6 checksum.
func ndpFrame(srcMAC net.HardwareAddr, o ndpOut) ([]byte, error) {
	return ndpFrameHopLimit(srcMAC, o, ndp.HopLimit)
}

func ndpFrameHopLimit(srcMAC net.HardwareAddr, o ndpOut, hopLimit uint8) ([]byte, error) {
	icmp, err := ndp.MarshalMessageChecksum(o.msg, o.src, o.dst)
	if err != nil {
		return nil, fmt.Errorf("layer2: marshal NDP message: %w", err)
	}
	ip := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(icmp))
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(icmp)))
	ip[6] = protoICMPv6
	ip[7] = hopLimit
	s, d := o.src.As16(), o.dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	f := ethernet.Frame{Destination: o.dstMAC, Source: srcMAC, EtherType: ethernet.EtherTypeIPv6, Payload: append(ip, icmp...)}
	return f.MarshalBinary()
}

// unsolicitedNA returns the advertisement announcing that addr is at mac,
// with the override flag set so neighbours update an existing entry.
func unsolicitedNA(mac net.HardwareAddr, addr netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
}

func isSolicitedNode(a netip.Addr) bool {
	return netip.MustParsePrefix("ff02::1:ff00:0/104").Contains(a)
}

// errNotNDP is returned by parseNDPFrame for frames that carry no NDP
// message the responder handles.
var errNotNDP = errors.New("layer2: not an NDP message")

const (
	ipv6HeaderLen = 40
	protoICMPv6   = 58
)

// parseNDPFrame decodes an Ethernet frame carrying an ICMPv6 NDP message
// directly after the IPv6 header, checking the ICMPv6 checksum (an AF_PACKET
// socket sees frames before the kernel validates them).
func parseNDPFrame(frame []byte) (ndpPacket, error) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		return ndpPacket{}, fmt.Errorf("layer2: decode Ethernet frame: %w", err)
	}
	b := f.Payload
	if f.EtherType != ethernet.EtherTypeIPv6 || len(b) < ipv6HeaderLen || b[0]>>4 != 6 || b[6] != protoICMPv6 {
		return ndpPacket{}, errNotNDP
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if len(b) < ipv6HeaderLen+plen {
		return ndpPacket{}, fmt.Errorf("layer2: IPv6 payload length %d exceeds frame: %w", plen, errNotNDP)
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	icmp := b[ipv6HeaderLen : ipv6HeaderLen+plen]
	if icmpv6Checksum(src, dst, icmp) != 0 {
		return ndpPacket{}, fmt.Errorf("layer2: bad ICMPv6 checksum: %w", errNotNDP)
	}
	m, err := ndp.ParseMessage(icmp)
	if err != nil {
		return ndpPacket{}, fmt.Errorf("layer2: parse NDP message: %w", err)
	}
	return ndpPacket{msg: m, src: src, dst: dst, hopLimit: int(b[7]), srcMAC: f.Source}, nil
}

// icmpv6Checksum returns the one's complement sum over the IPv6 pseudo-header
// and msg, folded and complemented: 0 when msg's checksum field is right.
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[:4], uint32(len(msg)))
	l[7] = protoICMPv6
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
