package netlab

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientLearnsWhichHostOwnsAnAddress(t *testing.T) {
	RequireCommands(t, "arping", "ndisc6", "tcpdump")
	c := NewCluster(t, ClusterOptions{Nodes: 2})
	node1, node2 := c.Node(1), c.Node(2)

	// The nodes' own addresses.
	for _, n := range []*Node{node1, node2} {
		mac, err := c.Client.ARP(t.Context(), n.Addr4())
		if err != nil {
			t.Fatal(err)
		}
		if mac.String() != n.LAN.MAC.String() {
			t.Errorf("ARP for %s = %s, want %s (%s)", n.Addr4(), mac, n.LAN.MAC, n.Name())
		}
		mac, err = c.Client.NDP(t.Context(), n.Addr6())
		if err != nil {
			t.Fatal(err)
		}
		if mac.String() != n.LAN.MAC.String() {
			t.Errorf("NDP for %s = %s, want %s (%s)", n.Addr6(), mac, n.LAN.MAC, n.Name())
		}
	}

	// An address from the layer-2 pool that nobody owns gets no answer; once node2
	// owns it, node2's MAC answers; when both claim it, both are seen.
	lb4 := netip.PrefixFrom(L2PoolV4.Addr().Next(), 32)
	lb6 := netip.PrefixFrom(L2PoolV6.Addr().Next(), 128)
	if mac, err := c.Client.ARP(t.Context(), lb4.Addr()); err == nil {
		t.Errorf("ARP for unowned %s answered by %s", lb4.Addr(), mac)
	}
	capture := c.Client.Capture("eth0", "arp")
	node2.AddAddr("eth0", lb4)
	node2.AddAddr("eth0", lb6)
	mac, err := c.Client.ARP(t.Context(), lb4.Addr())
	if err != nil || mac.String() != node2.LAN.MAC.String() {
		t.Errorf("ARP for %s = %v, %v; want %s", lb4.Addr(), mac, err, node2.LAN.MAC)
	}
	mac, err = c.Client.NDP(t.Context(), lb6.Addr())
	if err != nil || mac.String() != node2.LAN.MAC.String() {
		t.Errorf("NDP for %s = %v, %v; want %s", lb6.Addr(), mac, err, node2.LAN.MAC)
	}
	node1.AddAddr("eth0", lb4)
	macs, err := c.Client.ARPAll(t.Context(), lb4.Addr(), time.Second)
	if err != nil || len(macs) != 2 {
		t.Errorf("ARPAll for %s claimed twice = %v, %v; want both nodes' MACs", lb4.Addr(), macs, err)
	}

	// The capture saw the client's requests and node2's reply.
	pkts, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	var sawReply bool
	for _, p := range pkts {
		if p.Src.String() == node2.LAN.MAC.String() && strings.Contains(p.Line, "Reply "+lb4.Addr().String()) {
			sawReply = true
		}
	}
	if !sawReply {
		t.Errorf("no ARP reply from node2 for %s in the capture: %+v", lb4.Addr(), pkts)
	}
}
