package layer2

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// arpDecision is what to do with one received ARP frame.
type arpDecision struct {
	// drop is why the frame is not answered; answered (zero) when reply is set.
	drop DropReason
	// request is true when the frame was an ARP request, answered or not.
	request bool
	// reply is the ARP reply to send, to the Ethernet address replyTo.
	reply   *arp.Packet
	replyTo net.HardwareAddr
	// conflict is set when the frame shows another MAC claiming an address
	// this interface announces.
	conflict *Conflict
}

// decideARP decides how the responder on iface, whose MAC is mac, handles
// frame. It is pure: own is the ownership snapshot at the time of reading.
func decideARP(frame []byte, iface string, mac net.HardwareAddr, own *ownership) arpDecision {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return arpDecision{drop: DropMalformed}
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil ||
		p.HardwareType != 1 || p.ProtocolType != uint16(ethernet.EtherTypeIPv4) ||
		p.HardwareAddrLength != 6 || p.IPLength != 4 {
		return arpDecision{drop: DropMalformed}
	}
	d := arpDecision{request: p.Operation == arp.OperationRequest}
	if own.isSelf(p.SenderHardwareAddr) || own.isSelf(f.Source) {
		d.drop = DropFromSelf
		return d
	}
	if own.ownedOn(iface, p.SenderIP) {
		ev := EvidenceARPRequest
		if p.Operation == arp.OperationReply {
			ev = EvidenceARPReply
		}
		d.conflict = &Conflict{
			Addr: p.SenderIP, Interface: iface, Evidence: ev,
			OtherMAC: bytes.Clone(p.SenderHardwareAddr),
		}
	}
	switch {
	case p.Operation != arp.OperationRequest:
		d.drop = DropNotARPRequest
	case p.SenderIP == p.TargetIP:
		// A gratuitous request announces the sender's binding; answering it
		// would tell every host that we own the sender's address.
		d.drop = DropGratuitous
	default:
		d.drop = own.targetReason(iface, p.TargetIP)
	}
	if d.drop != answered {
		return d
	}
	// Reply to the requester, including an address-conflict probe (sender
	// 0.0.0.0, RFC 5227), which this defends the address against.
	reply, err := arp.NewPacket(arp.OperationReply, mac, p.TargetIP, p.SenderHardwareAddr, p.SenderIP)
	if err != nil {
		return arpDecision{drop: DropMalformed, request: true, conflict: d.conflict}
	}
	d.reply, d.replyTo = reply, bytes.Clone(p.SenderHardwareAddr)
	return d
}

// arpFrame returns p in an Ethernet frame from p's sender to dst.
func arpFrame(p *arp.Packet, dst net.HardwareAddr) ([]byte, error) {
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := ethernet.Frame{Destination: dst, Source: p.SenderHardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

// gratuitousARP returns the frames announcing that addr is at mac: a
// gratuitous request and a gratuitous reply, both broadcast, because hosts
// and switches differ in which one they heed (MetalLB and keepalived send
// both too).
func gratuitousARP(mac net.HardwareAddr, addr netip.Addr) ([][]byte, error) {
	var out [][]byte
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		p, err := arp.NewPacket(op, mac, addr, ethernet.Broadcast, addr)
		if err != nil {
			return nil, err
		}
		b, err := arpFrame(p, ethernet.Broadcast)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
