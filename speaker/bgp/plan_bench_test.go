package bgp

import (
	"net/netip"
	"testing"
	"time"
)

// benchDesired is n IPv6 host routes to each of two peers, one of which
// carries a community.
func benchDesired(n int) Desired {
	base := netip.MustParseAddr("2001:db8:300::").As16()
	routes := make([]Route, n)
	for i := range n {
		a := base
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		routes[i] = Route{Prefix: netip.PrefixFrom(netip.AddrFrom16(a), 128)}
	}
	tagged := make([]Route, n)
	for i, r := range routes {
		r.Communities = []uint32{64512<<16 | 100}
		tagged[i] = r
	}
	peer := func(name, addr string, rs []Route) Peer {
		return Peer{Name: name, Address: netip.MustParseAddr(addr), PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second, Routes: rs}
	}
	return Desired{Peers: []Peer{peer("r1", "2001:db8:1::1", routes), peer("r2", "2001:db8:1::4", tagged)}}
}

// BenchmarkSetUnchanged is the pure work of a Set that changes nothing, for
// 10,000 routes to each of two peers: resolving the desired state and
// planning against the applied state.
func BenchmarkSetUnchanged(b *testing.B) {
	d := benchDesired(10000)
	noHop := func(netip.Addr, netip.Addr, bool) (netip.Addr, error) { return netip.Addr{}, nil }
	want, _ := resolveDesired(d, false, noHop, nil)
	p, _ := makePlan(newApplied(), want, nil)
	cur := simulate(newApplied(), p)
	b.ReportAllocs()
	for b.Loop() {
		want, _ := resolveDesired(d, false, noHop, nil)
		if p, _ := makePlan(cur, want, nil); !p.empty() {
			b.Fatal("plan not empty")
		}
	}
}

// BenchmarkRoutesByPeer computes the routes of 10,000 addresses under one
// advertisement for two peers.
func BenchmarkRoutesByPeer(b *testing.B) {
	base := netip.MustParseAddr("2001:db8:300::").As16()
	anns := make([]Announcement, 10000)
	for i := range anns {
		a := base
		a[14], a[15] = byte(i>>8), byte(i)
		anns[i] = Announcement{Addr: netip.AddrFrom16(a), Advertisements: []string{"all"}}
	}
	ads := []Advertisement{{Name: "all", AllPeers: true, Communities: []uint32{1}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RoutesByPeer([]string{"r1", "r2"}, ads, anns); err != nil {
			b.Fatal(err)
		}
	}
}
