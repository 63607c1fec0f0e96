package netlab

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
var prefixCmp = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "frr", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBGPTable(t *testing.T) {
	n1, n2 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
	tests := []struct {
		file string
		want []BGPRoute
	}{
		{"table-ipv4.json", []BGPRoute{{
			Prefix: netip.MustParsePrefix("203.0.113.130/32"),
			Paths: []BGPPath{
				{Peer: n1, NextHops: []netip.Addr{n1}, ASPath: "64513", Origin: "IGP", Valid: true, Multipath: true},
				{Peer: n2, NextHops: []netip.Addr{n2}, ASPath: "64513", Origin: "IGP", Valid: true, Best: true},
			},
		}}},
		{"table-ipv6.json", []BGPRoute{{
			Prefix: netip.MustParsePrefix("2001:db8:200::5/128"),
			Paths: []BGPPath{
				{Peer: n1, NextHops: []netip.Addr{netip.MustParseAddr("2001:db8:1::11")}, ASPath: "64513", Origin: "IGP", Valid: true, Multipath: true},
				{Peer: n2, NextHops: []netip.Addr{netip.MustParseAddr("2001:db8:1::12")}, ASPath: "64513", Origin: "IGP", Valid: true, Best: true},
			},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseBGPTable(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, addrCmp, prefixCmp); diff != "" {
				t.Errorf("parseBGPTable (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSelectedNextHops(t *testing.T) {
	a, b, c := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13")
	r := BGPRoute{Paths: []BGPPath{
		{NextHops: []netip.Addr{b}, Valid: true, Best: true},
		{NextHops: []netip.Addr{a}, Valid: true, Multipath: true},
		{NextHops: []netip.Addr{c}, Valid: true},                   // not selected
		{NextHops: []netip.Addr{c}, Valid: false, Multipath: true}, // invalid
		{NextHops: []netip.Addr{a}, Valid: true, Multipath: true},  // duplicate
	}}
	if diff := cmp.Diff([]netip.Addr{a, b}, r.SelectedNextHops(), addrCmp); diff != "" {
		t.Errorf("SelectedNextHops (-want +got):\n%s", diff)
	}
}

func TestParseBGPPrefix(t *testing.T) {
	got, ok, err := parseBGPPrefix(fixture(t, "prefix-ipv6.json"))
	if err != nil || !ok {
		t.Fatalf("parseBGPPrefix = %v, %v", ok, err)
	}
	n1, n2 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
	want := BGPRoute{
		Prefix: netip.MustParsePrefix("2001:db8:200::5/128"),
		Paths: []BGPPath{
			{Peer: n1, NextHops: []netip.Addr{netip.MustParseAddr("2001:db8:1::11")}, ASPath: "64513", Origin: "IGP",
				Valid: true, Multipath: true, Communities: []string{"64512:100"}, LargeCommunities: []string{"64512:1:2"}},
			{Peer: n2, NextHops: []netip.Addr{netip.MustParseAddr("2001:db8:1::12")}, ASPath: "64513", Origin: "IGP",
				Valid: true, Best: true, Multipath: true, Communities: []string{"64512:100"}, LargeCommunities: []string{"64512:1:2"}},
		},
	}
	if diff := cmp.Diff(want, got, addrCmp, prefixCmp); diff != "" {
		t.Errorf("parseBGPPrefix (-want +got):\n%s", diff)
	}
	if _, ok, err := parseBGPPrefix([]byte("{\n}\n")); ok || err != nil {
		t.Errorf("parseBGPPrefix({}) = %v, %v; want not found", ok, err)
	}
}

func TestParseNeighbors(t *testing.T) {
	got, err := parseNeighbors(fixture(t, "neighbors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("parseNeighbors: %d neighbours, want 2: %+v", len(got), got)
	}
	want := BGPNeighbor{
		Address: netip.MustParseAddr("198.51.100.11"), RemoteAS: 64513, LocalAS: 64512, State: "Established",
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
		AcceptedPrefixes: map[string]int{"ipv4Unicast": 1, "ipv6Unicast": 1},
	}
	got[0].Uptime = 0 // depends on when the fixture was taken
	got[0].LastResetReason = ""
	if diff := cmp.Diff(want, got[0], addrCmp); diff != "" {
		t.Errorf("first neighbour (-want +got):\n%s", diff)
	}
	if !got[0].Established() {
		t.Errorf("Established() = false for %+v", got[0])
	}
}

func TestParseBFDPeers(t *testing.T) {
	got, err := parseBFDPeers(fixture(t, "bfd-peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []BFDPeer{{
		Peer: netip.MustParseAddr("198.51.100.11"), Local: netip.MustParseAddr("198.51.100.1"), Interface: "eth0",
		Status: "up", Uptime: 37 * time.Second, DetectMultiplier: 3, RemoteDetectMultiplier: 3,
		ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond,
		RemoteReceiveInterval: 300 * time.Millisecond, RemoteTransmitInterval: 300 * time.Millisecond,
	}}
	if diff := cmp.Diff(want, got, addrCmp); diff != "" {
		t.Errorf("parseBFDPeers (-want +got):\n%s", diff)
	}
}

// The parsers read a daemon's output: whatever it prints, they return an error or a
// result, never panic.
func FuzzParseBGPTable(f *testing.F) {
	f.Add(fixture(f, "table-ipv4.json"))
	f.Add(fixture(f, "table-ipv6.json"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseBGPTable(b) })
}

func FuzzParseBGPPrefix(f *testing.F) {
	f.Add(fixture(f, "prefix-ipv4.json"))
	f.Add(fixture(f, "prefix-ipv6.json"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = parseBGPPrefix(b) })
}

func FuzzParseNeighbors(f *testing.F) {
	f.Add(fixture(f, "neighbors.json"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseNeighbors(b) })
}

func FuzzParseBFDPeers(f *testing.F) {
	f.Add(fixture(f, "bfd-peers.json"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseBFDPeers(b) })
}
