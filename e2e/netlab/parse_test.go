package netlab

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOverlappingRoutes(t *testing.T) {
	tests := []struct {
		name   string
		routes []route
		want   []string
	}{
		{"the machine's own uplink", []route{{Dst: "default", Dev: "eth0"}, {Dst: "192.0.2.0/24", Dev: "eth0"},
			{Dst: "fd00::/64", Dev: "eth0"}, {Dst: "192.0.2.2", Dev: "eth0"}, {Dst: "ff00::/8", Dev: "eth0"}}, nil},
		{"a documentation subnet", []route{{Dst: "198.51.100.0/25", Dev: "br0"}}, []string{"198.51.100.0/25 dev br0"}},
		{"a wider route", []route{{Dst: "203.0.0.0/8", Dev: "tun0"}}, []string{"203.0.0.0/8 dev tun0"}},
		{"a host address", []route{{Dst: "2001:db8::5", Dev: "lo"}}, []string{"2001:db8::5 dev lo"}},
		{"IPv6 default ignored", []route{{Dst: "::/0", Dev: "eth0"}}, nil},
		{"garbage ignored", []route{{Dst: "not-a-route"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, overlappingRoutes(tt.routes, DocumentationRanges)); diff != "" {
				t.Errorf("overlappingRoutes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddressPlan(t *testing.T) {
	v4, v6 := LANAddrs(FirstNodeHostNumber)
	if v4.String() != "198.51.100.11/24" || v6.String() != "2001:db8:1::11/64" {
		t.Errorf("LANAddrs(11) = %v, %v", v4, v6)
	}
	for _, tc := range []struct {
		n, nodes int
		v4, v6   string
	}{
		{2, 3, "203.0.113.16/28", "2001:db8:100:2::/64"},
		{RoomyNodes, RoomyNodes, "203.0.113.112/28", "2001:db8:100:8::/64"},
		{2, RoomyNodes + 1, "203.0.113.8/29", "2001:db8:100:2::/64"},
		{MaxNodes, MaxNodes, "203.0.113.120/29", "2001:db8:100:10::/64"},
	} {
		p4, p6 := NodePodCIDRs(tc.n, tc.nodes)
		if p4.String() != tc.v4 || p6.String() != tc.v6 {
			t.Errorf("NodePodCIDRs(%d, %d) = %v, %v, want %s, %s", tc.n, tc.nodes, p4, p6, tc.v4, tc.v6)
		}
	}
	// Every range of the plan lies in the documentation ranges, and the pools, pods and
	// hosts do not overlap each other or the control plane's ClusterIP ranges.
	clusterIPs := []netip.Prefix{netip.MustParsePrefix("198.51.100.192/26"), netip.MustParsePrefix("2001:db8:ffff:ffff::/112")}
	hosts := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/26")}
	plan := []netip.Prefix{L2PoolV4, L2PoolV6, RoutedPoolV4, RoutedPoolV6, PodsV4, PodsV6}
	for i, p := range plan {
		if len(overlappingRoutes([]route{{Dst: p.String()}}, DocumentationRanges)) != 1 {
			t.Errorf("%v is outside the documentation ranges", p)
		}
		for _, q := range append(append(plan[i+1:], clusterIPs...), hosts...) {
			if p.Overlaps(q) {
				t.Errorf("%v overlaps %v", p, q)
			}
		}
	}
	// In a lab of every size, each node's LAN addresses are in the hosts' range and its
	// pod subnets are inside the pod ranges, clear of every other node's, with room
	// for 13 pods up to RoomyNodes nodes and 5 beyond.
	for nodes := 1; nodes <= MaxNodes; nodes++ {
		wantRoom := 13
		if nodes > RoomyNodes {
			wantRoom = 5
		}
		var pods []netip.Prefix
		for n := 1; n <= nodes; n++ {
			lan4, lan6 := LANAddrs(FirstNodeHostNumber + n - 1)
			if !hosts[0].Contains(lan4.Addr()) || L2PoolV6.Contains(lan6.Addr()) || !LANv6.Contains(lan6.Addr()) {
				t.Errorf("node %d of %d: LAN addresses %v, %v outside the hosts' ranges", n, nodes, lan4, lan6)
			}
			p4, p6 := NodePodCIDRs(n, nodes)
			if !PodsV4.Contains(p4.Addr()) || p4.Bits() < PodsV4.Bits() || !PodsV6.Contains(p6.Addr()) {
				t.Errorf("node %d of %d: pods %v, %v are outside %v, %v", n, nodes, p4, p6, PodsV4, PodsV6)
			}
			if room := podRoom(p4); room != wantRoom {
				t.Errorf("node %d of %d: pods %v have room for %d, want %d", n, nodes, p4, room, wantRoom)
			}
			for _, q := range pods {
				if q.Overlaps(p4) || q.Overlaps(p6) {
					t.Errorf("node %d of %d: pods %v, %v overlap %v", n, nodes, p4, p6, q)
				}
			}
			pods = append(pods, p4, p6)
		}
	}
}

func TestParseArping(t *testing.T) {
	out := `ARPING 198.51.100.130
60 bytes from 02:68:6c:00:00:05 (198.51.100.130): index=0 time=1.103 msec
60 bytes from 02:68:6c:00:00:06 (198.51.100.130): index=1 time=1.201 msec
60 bytes from 02:68:6c:00:00:05 (198.51.100.130): index=2 time=2.001 msec
60 bytes from 02:68:6c:00:00:07 (198.51.100.131): index=3 time=2.001 msec

--- 198.51.100.130 statistics ---
1 packets transmitted, 3 packets received,   0% unanswered (0 extra)
`
	got := parseArping(out, netip.MustParseAddr("198.51.100.130"))
	want := []net.HardwareAddr{{0x02, 0x68, 0x6c, 0, 0, 5}, {0x02, 0x68, 0x6c, 0, 0, 6}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseArping (-want +got):\n%s", diff)
	}
}

func TestParseTcpdumpLine(t *testing.T) {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	arp := "Request who-has 198.51.100.130 tell 198.51.100.130, length 28"
	syn := "198.51.100.251.44110 > 198.51.100.252.80: Flags [S], seq 4239668903, win 64240, length 0"
	rst := "198.51.100.252.80 > 198.51.100.251.44110: Flags [R.], seq 0, ack 4239668904, win 0, length 0"
	// On "any", tcpdump 4.99.3 (link type LINUX_SLL2) pads the interface
	// and the direction.
	for _, tc := range []struct {
		name, line string
		want       Packet
	}{
		{"one Ethernet interface", "1795304166.043730 02:68:6c:00:00:05 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: " + arp,
			Packet{Time: time.Unix(1795304166, 43730000), Src: mac("02:68:6c:00:00:05"), Dst: mac("ff:ff:ff:ff:ff:ff"), Line: arp}},
		{"any, in", "1796633045.111526 nctvb In  ifindex 2 02:75:87:7d:ba:a5 ethertype IPv4 (0x0800), length 80: " + syn,
			Packet{Time: time.Unix(1796633045, 111526000), Src: mac("02:75:87:7d:ba:a5"), Iface: "nctvb", Dir: "In", Line: syn}},
		{"any, out", "1796633045.111581 nctvb Out ifindex 2 52:2d:39:c1:7c:1d ethertype IPv4 (0x0800), length 60: " + rst,
			Packet{Time: time.Unix(1796633045, 111581000), Src: mac("52:2d:39:c1:7c:1d"), Iface: "nctvb", Dir: "Out", Line: rst}},
		{"any, loopback", "1796633054.401108 lo    In  ifindex 1 00:00:00:00:00:00 ethertype IPv4 (0x0800), length 80: " + syn,
			Packet{Time: time.Unix(1796633054, 401108000), Src: mac("00:00:00:00:00:00"), Iface: "lo", Dir: "In", Line: syn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseTcpdumpLine(tc.line)
			if !ok {
				t.Fatalf("parseTcpdumpLine(%q) failed", tc.line)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseTcpdumpLine (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"", "tcpdump: listening on eth0", "x y > z, w: v",
		"listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes",
		"1796633054.401108 lo In index 1: x"} {
		if _, ok := parseTcpdumpLine(bad); ok {
			t.Errorf("parseTcpdumpLine(%q) accepted it", bad)
		}
	}
}

func TestParseDropped(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      int
		ok        bool
	}{
		{"dropped", "1796635655.905974 eth0  Out ifindex 2 ...\n5451 packets captured\n7159 packets received by filter\n1708 packets dropped by kernel\n", 1708, true},
		{"none dropped", "6026 packets captured\n6026 packets received by filter\n0 packets dropped by kernel\n", 0, true},
		{"still running", "listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := parseDropped(tc.out); got != tc.want || ok != tc.ok {
				t.Errorf("parseDropped = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParsePodReply(t *testing.T) {
	got, err := ParsePodReply("web-1 [::ffff:198.51.100.3]:40000\n")
	if err != nil {
		t.Fatal(err)
	}
	want := PodReply{Pod: "web-1", Client: netip.MustParseAddrPort("198.51.100.3:40000")}
	if got != want {
		t.Errorf("ParsePodReply = %+v, want %+v", got, want)
	}
	if _, err := ParsePodReply("garbage"); err == nil {
		t.Errorf("ParsePodReply accepted garbage")
	}
}

func FuzzParseTcpdumpLine(f *testing.F) {
	f.Add("1795304166.043730 02:68:6c:00:00:05 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request")
	f.Add("1796633045.111526 eth0  In  ifindex 2 02:75:87:7d:ba:a5 ethertype IPv4 (0x0800), length 80: x")
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseTcpdumpLine(s) })
}

func FuzzParsePodReply(f *testing.F) {
	f.Add("web-1 198.51.100.3:40000\n")
	f.Fuzz(func(t *testing.T, s string) { _, _ = ParsePodReply(s) })
}
