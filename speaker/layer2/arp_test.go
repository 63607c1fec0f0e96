package layer2

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

func TestDecideARP(t *testing.T) {
	zero := netip.IPv4Unspecified()
	replyTo := func(target netip.Addr, to net.HardwareAddr, toIP netip.Addr) *arp.Packet {
		p, err := arp.NewPacket(arp.OperationReply, macEth0, target, to, toIP)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	notIPv4 := arpRequest(t, macClient, v4Client, v4Eth0)
	notIPv4[14+3] = 0xdd // protocol type 0x08dd
	rarp := arpRequest(t, macClient, v4Client, v4Eth0)
	rarp[14+7] = 3

	tests := []struct {
		name  string
		frame []byte
		iface string
		want  arpDecision
	}{
		{
			name:  "request for an owned address is answered",
			frame: arpRequest(t, macClient, v4Client, v4Eth0),
			want:  arpDecision{request: true, reply: replyTo(v4Eth0, macClient, v4Client), replyTo: macClient},
		},
		{
			name:  "unicast request (ARP reachability probe) is answered",
			frame: arpFrameT(t, arp.OperationRequest, macClient, v4Client, macEth0, v4Eth0, macEth0),
			want:  arpDecision{request: true, reply: replyTo(v4Eth0, macClient, v4Client), replyTo: macClient},
		},
		{
			name:  "RFC 5227 probe for an owned address is answered, defending it",
			frame: arpFrameT(t, arp.OperationRequest, macClient, zero, net.HardwareAddr{0, 0, 0, 0, 0, 0}, v4Eth0, ethernet.Broadcast),
			want:  arpDecision{request: true, reply: replyTo(v4Eth0, macClient, zero), replyTo: macClient},
		},
		{
			name:  "owned, but on another interface",
			frame: arpRequest(t, macClient, v4Client, v4Eth1),
			want:  arpDecision{request: true, drop: DropWrongInterface},
		},
		{
			name:  "not owned",
			frame: arpRequest(t, macClient, v4Client, v4Free),
			want:  arpDecision{request: true, drop: DropNotOwned},
		},
		{
			name:  "not owned, asked on another interface",
			frame: arpRequest(t, macClient, v4Client, v4Free),
			iface: "eth1",
			want:  arpDecision{request: true, drop: DropNotOwned},
		},
		{
			name:  "our own gratuitous request",
			frame: arpRequest(t, macEth0, v4Eth0, v4Eth0),
			want:  arpDecision{request: true, drop: DropFromSelf},
		},
		{
			name:  "our other interface's frame seen on this segment",
			frame: arpRequest(t, macEth1, v4Eth1, v4Eth0),
			want:  arpDecision{request: true, drop: DropFromSelf},
		},
		{
			name:  "a reply is not answered",
			frame: arpFrameT(t, arp.OperationReply, macClient, v4Client, macEth0, v4Free, macEth0),
			want:  arpDecision{drop: DropNotARPRequest},
		},
		{
			name:  "another MAC replying for an owned address is a conflict",
			frame: arpFrameT(t, arp.OperationReply, macOther, v4Eth0, ethernet.Broadcast, v4Eth0, ethernet.Broadcast),
			want: arpDecision{drop: DropNotARPRequest, conflict: &Conflict{
				Addr: v4Eth0, Interface: "eth0", OtherMAC: macOther, Evidence: EvidenceARPReply,
			}},
		},
		{
			name:  "another MAC's gratuitous request for an owned address is a conflict",
			frame: arpRequest(t, macOther, v4Eth0, v4Eth0),
			want: arpDecision{request: true, drop: DropGratuitous, conflict: &Conflict{
				Addr: v4Eth0, Interface: "eth0", OtherMAC: macOther, Evidence: EvidenceARPRequest,
			}},
		},
		{
			name:  "another MAC asking from an owned address is a conflict",
			frame: arpRequest(t, macOther, v4Eth0, v4Client),
			want: arpDecision{request: true, drop: DropNotOwned, conflict: &Conflict{
				Addr: v4Eth0, Interface: "eth0", OtherMAC: macOther, Evidence: EvidenceARPRequest,
			}},
		},
		{
			name:  "a claim seen on an interface that does not announce the address is not a conflict",
			frame: arpRequest(t, macOther, v4Eth1, v4Eth1),
			want:  arpDecision{request: true, drop: DropGratuitous},
		},
		{
			name:  "someone else's gratuitous ARP",
			frame: arpRequest(t, macClient, v4Client, v4Client),
			want:  arpDecision{request: true, drop: DropGratuitous},
		},
		{name: "truncated", frame: arpRequest(t, macClient, v4Client, v4Eth0)[:20], want: arpDecision{drop: DropMalformed}},
		{name: "not ARP", frame: append([]byte{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 0x86, 0xdd}, make([]byte, 46)...), want: arpDecision{drop: DropMalformed}},
		{name: "not IPv4 over Ethernet", frame: notIPv4, want: arpDecision{drop: DropMalformed}},
		{name: "neither request nor reply", frame: rarp, want: arpDecision{drop: DropNotARPRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iface := tt.iface
			if iface == "" {
				iface = "eth0"
			}
			got := decideARP(tt.frame, iface, macEth0, testOwnership())
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("decideARP() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGratuitousARP(t *testing.T) {
	frames, err := gratuitousARP(macEth0, v4Eth0)
	if err != nil {
		t.Fatal(err)
	}
	var ops []arp.Operation
	for _, b := range frames {
		var f ethernet.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			t.Fatal(err)
		}
		if f.Destination.String() != ethernet.Broadcast.String() || f.Source.String() != macEth0.String() {
			t.Errorf("frame %s -> %s, want %s -> broadcast", f.Source, f.Destination, macEth0)
		}
		if p.SenderIP != v4Eth0 || p.TargetIP != v4Eth0 || p.SenderHardwareAddr.String() != macEth0.String() {
			t.Errorf("packet %+v does not announce %s at %s", p, v4Eth0, macEth0)
		}
		ops = append(ops, p.Operation)
	}
	if diff := cmp.Diff([]arp.Operation{arp.OperationRequest, arp.OperationReply}, ops); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	// A gratuitous ARP from another speaker is exactly what decideARP flags.
	d := decideARP(frames[0], "eth0", macOther, &ownership{
		byIface: map[string]map[netip.Addr]struct{}{"eth0": {v4Eth0: {}}},
		all:     map[netip.Addr]struct{}{v4Eth0: {}},
		macs:    map[string]struct{}{string(macOther): {}},
	})
	if d.conflict == nil {
		t.Error("another node's decideARP does not see our gratuitous ARP as a conflict")
	}
}

func FuzzDecideARP(f *testing.F) {
	f.Add(arpRequest(f, macClient, v4Client, v4Eth0))
	f.Add(arpRequest(f, macOther, v4Eth0, v4Eth0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		d := decideARP(frame, "eth0", macEth0, testOwnership())
		if (d.drop == answered) != (d.reply != nil) {
			t.Fatalf("decision %+v: answered without reply or reply while dropping", d)
		}
		if d.reply != nil {
			if d.reply.SenderIP != v4Eth0 || d.reply.SenderHardwareAddr.String() != macEth0.String() {
				t.Fatalf("answered for %s at %s", d.reply.SenderIP, d.reply.SenderHardwareAddr)
			}
		}
	})
}
