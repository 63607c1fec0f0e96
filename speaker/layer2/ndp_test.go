package layer2

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

func solicitedNode(t testing.TB, a netip.Addr) netip.Addr {
	t.Helper()
	g, err := ndp.SolicitedNodeMulticast(a)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func ns(target netip.Addr, slla net.HardwareAddr) *ndp.NeighborSolicitation {
	m := &ndp.NeighborSolicitation{TargetAddress: target}
	if slla != nil {
		m.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: slla}}
	}
	return m
}

func na(target netip.Addr, tlla net.HardwareAddr) *ndp.NeighborAdvertisement {
	m := &ndp.NeighborAdvertisement{Override: true, TargetAddress: target}
	if tlla != nil {
		m.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: tlla}}
	}
	return m
}

func TestDecideNDP(t *testing.T) {
	answer := func(target netip.Addr, solicited bool) *ndp.NeighborAdvertisement {
		return &ndp.NeighborAdvertisement{
			Override: true, Solicited: solicited, TargetAddress: target,
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: macEth0}},
		}
	}
	multicastNS := func(target netip.Addr) ndpPacket {
		return ndpPacket{
			msg: ns(target, macClient), src: v6Client, dst: solicitedNode(t, target),
			hopLimit: 255, srcMAC: macClient,
		}
	}
	tests := []struct {
		name string
		p    ndpPacket
		want ndpDecision
	}{
		{
			name: "multicast solicitation for an owned address",
			p:    multicastNS(v6Eth0),
			want: ndpDecision{request: true, reply: answer(v6Eth0, true), replyTo: v6Client, replyMAC: macClient},
		},
		{
			name: "unicast solicitation (neighbour unreachability detection) without source option",
			p:    ndpPacket{msg: ns(v6Eth0, nil), src: v6ClientLL, dst: v6Eth0, hopLimit: 255, srcMAC: macClient},
			want: ndpDecision{request: true, reply: answer(v6Eth0, true), replyTo: v6ClientLL, replyMAC: macClient},
		},
		{
			name: "the source option wins over the frame's source",
			p:    ndpPacket{msg: ns(v6Eth0, macClient), src: v6Client, dst: v6Eth0, hopLimit: 255, srcMAC: macOther},
			want: ndpDecision{request: true, reply: answer(v6Eth0, true), replyTo: v6Client, replyMAC: macClient},
		},
		{
			name: "no link-layer address to answer to",
			p:    ndpPacket{msg: ns(v6Eth0, nil), src: v6ClientLL, dst: v6Eth0, hopLimit: 255},
			want: ndpDecision{request: true, drop: DropMalformed},
		},
		{
			name: "duplicate address detection for an owned address is defended to all nodes",
			p:    ndpPacket{msg: ns(v6Eth0, nil), src: netip.IPv6Unspecified(), dst: solicitedNode(t, v6Eth0), hopLimit: 255, srcMAC: macClient},
			want: ndpDecision{request: true, reply: answer(v6Eth0, false), replyTo: allNodes, replyMAC: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}},
		},
		{
			name: "duplicate address detection must go to the solicited-node group",
			p:    ndpPacket{msg: ns(v6Eth0, nil), src: netip.IPv6Unspecified(), dst: v6Eth0, hopLimit: 255, srcMAC: macClient},
			want: ndpDecision{request: true, drop: DropMalformed},
		},
		{
			name: "duplicate address detection must not carry a source address option",
			p:    ndpPacket{msg: ns(v6Eth0, macClient), src: netip.IPv6Unspecified(), dst: solicitedNode(t, v6Eth0), hopLimit: 255},
			want: ndpDecision{request: true, drop: DropMalformed},
		},
		{
			name: "solicitation for a multicast target",
			p:    multicastNS(allNodes),
			want: ndpDecision{request: true, drop: DropMalformed},
		},
		{name: "not owned", p: multicastNS(v6Free), want: ndpDecision{request: true, drop: DropNotOwned}},
		{name: "owned on another interface", p: multicastNS(v6Eth1), want: ndpDecision{request: true, drop: DropWrongInterface}},
		{
			name: "hop limit below 255: forwarded from another link",
			p:    ndpPacket{msg: ns(v6Eth0, macClient), src: v6Client, dst: solicitedNode(t, v6Eth0), hopLimit: 254, srcMAC: macClient},
			want: ndpDecision{request: true, drop: DropBadHopLimit},
		},
		{
			name: "our own advertisement looping back",
			p:    ndpPacket{msg: na(v6Eth0, macEth0), src: v6ClientLL, dst: allNodes, hopLimit: 255, srcMAC: macEth0},
			want: ndpDecision{drop: DropFromSelf},
		},
		{
			name: "our other interface's advertisement",
			p:    ndpPacket{msg: na(v6Eth1, macEth1), src: v6ClientLL, dst: allNodes, hopLimit: 255},
			want: ndpDecision{drop: DropFromSelf},
		},
		{
			name: "our own solicitation",
			p:    ndpPacket{msg: ns(v6Client, macEth0), src: v6Eth0, dst: solicitedNode(t, v6Client), hopLimit: 255},
			want: ndpDecision{request: true, drop: DropFromSelf},
		},
		{
			name: "another MAC advertising an owned address is a conflict",
			p:    ndpPacket{msg: na(v6Eth0, macOther), src: netip.MustParseAddr("fe80::99"), dst: allNodes, hopLimit: 255, srcMAC: macOther},
			want: ndpDecision{drop: DropNotNeighborSolicitation, conflict: &Conflict{
				Addr: v6Eth0, Interface: "eth0", OtherMAC: macOther, OtherIP: netip.MustParseAddr("fe80::99"),
				Evidence: EvidenceNeighborAdvertisement,
			}},
		},
		{
			name: "an advertisement without target option: the Ethernet source is the claimant",
			p:    ndpPacket{msg: na(v6Eth0, nil), src: netip.MustParseAddr("fe80::99"), dst: v6Client, hopLimit: 255, srcMAC: macOther},
			want: ndpDecision{drop: DropNotNeighborSolicitation, conflict: &Conflict{
				Addr: v6Eth0, Interface: "eth0", OtherMAC: macOther, OtherIP: netip.MustParseAddr("fe80::99"),
				Evidence: EvidenceNeighborAdvertisement,
			}},
		},
		{
			name: "an advertisement for an address announced on another interface is not a conflict here",
			p:    ndpPacket{msg: na(v6Eth1, macOther), src: netip.MustParseAddr("fe80::99"), dst: allNodes, hopLimit: 255, srcMAC: macOther},
			want: ndpDecision{drop: DropNotNeighborSolicitation},
		},
		{
			name: "another MAC soliciting from an owned address is a conflict",
			p:    ndpPacket{msg: ns(v6Client, macOther), src: v6Eth0, dst: solicitedNode(t, v6Client), hopLimit: 255, srcMAC: macOther},
			want: ndpDecision{request: true, drop: DropNotOwned, conflict: &Conflict{
				Addr: v6Eth0, Interface: "eth0", OtherMAC: macOther, OtherIP: v6Eth0,
				Evidence: EvidenceNeighborSolicitation,
			}},
		},
		{
			name: "router solicitation",
			p:    ndpPacket{msg: &ndp.RouterSolicitation{}, src: v6ClientLL, dst: netip.MustParseAddr("ff02::2"), hopLimit: 255},
			want: ndpDecision{drop: DropNotNeighborSolicitation},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideNDP(tt.p, "eth0", macEth0, testOwnership())
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("decideNDP() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// testNDPFrame builds an Ethernet frame carrying m from src to dst with the
// given hop limit and a correct ICMPv6 checksum.
func testNDPFrame(t testing.TB, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, hopLimit uint8, m ndp.Message) []byte {
	t.Helper()
	b, err := ndpFrameHopLimit(srcMAC, ndpOut{msg: m, src: src, dst: dst, dstMAC: dstMAC}, hopLimit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNDPFrame(t *testing.T) {
	snm := solicitedNode(t, v6Eth0)
	good := testNDPFrame(t, macClient, macEth0, v6Client, snm, 255, ns(v6Eth0, macClient))
	got, err := parseNDPFrame(good)
	if err != nil {
		t.Fatalf("parseNDPFrame() error = %v", err)
	}
	want := ndpPacket{msg: ns(v6Eth0, macClient), src: v6Client, dst: snm, hopLimit: 255, srcMAC: macClient}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("parseNDPFrame() mismatch (-want +got):\n%s", diff)
	}

	badSum := append([]byte(nil), good...)
	badSum[len(badSum)-1] ^= 0xff
	notICMP := append([]byte(nil), good...)
	notICMP[14+6] = 17 // UDP
	short := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(short[14+4:], 400)
	for name, frame := range map[string][]byte{
		"bad checksum": badSum, "not ICMPv6": notICMP, "payload length beyond frame": short,
		"truncated": good[:30], "empty": nil,
	} {
		if _, err := parseNDPFrame(frame); err == nil {
			t.Errorf("parseNDPFrame(%s) succeeded", name)
		}
	}
	if _, err := parseNDPFrame(notICMP); !errors.Is(err, errNotNDP) {
		t.Errorf("parseNDPFrame(not ICMPv6) error = %v, want errNotNDP", err)
	}
}

func TestNDPFilter(t *testing.T) {
	vm, err := bpf.NewVM(ndpFilterProgram)
	if err != nil {
		t.Fatal(err)
	}
	snm := solicitedNode(t, v6Eth0)
	echo := testNDPFrame(t, macClient, macEth0, v6Client, v6Eth0, 64, &ndp.RouterSolicitation{})
	echo[14+ipv6HeaderLen] = 128 // echo request
	udp := testNDPFrame(t, macClient, macEth0, v6Client, v6Eth0, 64, ns(v6Eth0, nil))
	udp[14+6] = 17
	for name, tc := range map[string]struct {
		frame []byte
		pass  bool
	}{
		"neighbour solicitation":  {testNDPFrame(t, macClient, macEth0, v6Client, snm, 255, ns(v6Eth0, macClient)), true},
		"neighbour advertisement": {testNDPFrame(t, macOther, macEth0, v6ClientLL, allNodes, 255, na(v6Eth0, macOther)), true},
		"router solicitation":     {testNDPFrame(t, macClient, macEth0, v6ClientLL, allNodes, 255, &ndp.RouterSolicitation{}), false},
		"echo request":            {echo, false},
		"UDP":                     {udp, false},
	} {
		n, err := vm.Run(tc.frame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if (n > 0) != tc.pass {
			t.Errorf("%s: filter returned %d, want pass=%v", name, n, tc.pass)
		}
	}
}

func TestUnsolicitedNA(t *testing.T) {
	m := unsolicitedNA(macEth0, v6Eth0)
	want := &ndp.NeighborAdvertisement{
		Override: true, TargetAddress: v6Eth0,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: macEth0}},
	}
	if diff := cmp.Diff(want, m, cmpOpts); diff != "" {
		t.Errorf("unsolicitedNA() mismatch (-want +got):\n%s", diff)
	}
	// Another speaker announcing the address must see it as a conflict.
	d := decideNDP(ndpPacket{msg: m, src: v6ClientLL, dst: allNodes, hopLimit: 255, srcMAC: macEth0}, "eth0", macOther, &ownership{
		byIface: map[string]map[netip.Addr]struct{}{"eth0": {v6Eth0: {}}},
		all:     map[netip.Addr]struct{}{v6Eth0: {}},
		macs:    map[string]struct{}{string(macOther): {}},
	})
	if d.conflict == nil || d.conflict.OtherMAC.String() != macEth0.String() {
		t.Errorf("another node's decideNDP conflict = %+v, want one naming %s", d.conflict, macEth0)
	}
}

func FuzzParseNDPFrame(f *testing.F) {
	f.Add(testNDPFrame(f, macClient, macEth0, v6Client, solicitedNode(f, v6Eth0), 255, ns(v6Eth0, macClient)))
	f.Add(testNDPFrame(f, macOther, macEth0, v6ClientLL, allNodes, 255, na(v6Eth0, macOther)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := parseNDPFrame(frame)
		if err != nil {
			return
		}
		d := decideNDP(p, "eth0", macEth0, testOwnership())
		if (d.drop == answered) != (d.reply != nil) {
			t.Fatalf("decision %+v: answered without reply or reply while dropping", d)
		}
		if d.reply != nil && d.reply.TargetAddress != v6Eth0 {
			t.Fatalf("answered for %s", d.reply.TargetAddress)
		}
	})
}
