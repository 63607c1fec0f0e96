package layer2

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

var (
	macEth0   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	macEth1   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	macClient = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xc1}
	macOther  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99} // another node's speaker

	v4Eth0   = netip.MustParseAddr("198.51.100.10")
	v4Eth1   = netip.MustParseAddr("198.51.100.11")
	v4Free   = netip.MustParseAddr("198.51.100.12")
	v4Client = netip.MustParseAddr("198.51.100.200")

	v6Eth0     = netip.MustParseAddr("2001:db8::10")
	v6Eth1     = netip.MustParseAddr("2001:db8::11")
	v6Free     = netip.MustParseAddr("2001:db8::12")
	v6Client   = netip.MustParseAddr("2001:db8::c1")
	v6ClientLL = netip.MustParseAddr("fe80::c1")
)

// testOwnership announces v4Eth0 and v6Eth0 on eth0, v4Eth1 and v6Eth1 on
// eth1.
func testOwnership() *ownership {
	return &ownership{
		byIface: map[string]map[netip.Addr]struct{}{
			"eth0": {v4Eth0: {}, v6Eth0: {}},
			"eth1": {v4Eth1: {}, v6Eth1: {}},
		},
		all:  map[netip.Addr]struct{}{v4Eth0: {}, v4Eth1: {}, v6Eth0: {}, v6Eth1: {}},
		macs: map[string]struct{}{string(macEth0): {}, string(macEth1): {}},
	}
}

var cmpOpts = cmp.Options{
	cmp.AllowUnexported(arpDecision{}, ndpDecision{}, ndpPacket{}),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

// arpFrameT builds an ARP frame from srcMAC/srcIP to dstMAC/dstIP inside an
// Ethernet frame to ethDst.
func arpFrameT(t testing.TB, op arp.Operation, srcMAC net.HardwareAddr, srcIP netip.Addr, dstMAC net.HardwareAddr, dstIP netip.Addr, ethDst net.HardwareAddr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, srcMAC, srcIP, dstMAC, dstIP)
	if err != nil {
		t.Fatal(err)
	}
	f, err := arpFrame(p, ethDst)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func arpRequest(t testing.TB, from net.HardwareAddr, fromIP, target netip.Addr) []byte {
	return arpFrameT(t, arp.OperationRequest, from, fromIP, ethernet.Broadcast, target, ethernet.Broadcast)
}

// eventually polls cond until it holds or a generous deadline passes. It
// synchronises with goroutines; it measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
