package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// TestSessionsPasswordsAndBadPeers: sessions come up with and without a TCP
// MD5 password; a wrong password or a wrong AS number leaves that session
// down with a status saying why, and the node's other session keeps working;
// fixing the password brings the session up.
func TestSessionsPasswordsAndBadPeers(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 2, Routers: 2})
	r1, r2 := l.Routers[0], l.Routers[1]
	n1, n2 := l.Nodes[0], l.Nodes[1]
	r1.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, func(n *Node, c *netlab.BGPNeighborConfig) {
		if n == n1 {
			c.Password = "s3cret"
		}
	})})
	// Router 2 expects node 1 in another AS.
	r2.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: []netlab.BGPNeighborConfig{{Address: n1.Addr4(), ASN: 64999}}})

	route := speakerbgp.Route{Prefix: hostRoute}
	withPassword := func(pw string) speakerbgp.Desired {
		p := n1.Peer("r1", r1, false)
		p.Password, p.Routes = pw, []speakerbgp.Route{route}
		asn := n1.Peer("r2", r2, false)
		asn.Routes = []speakerbgp.Route{route}
		return speakerbgp.Desired{Peers: []speakerbgp.Peer{p, asn}}
	}
	noPassword := n2.Peer("r1", r1, false)
	noPassword.Routes = []speakerbgp.Route{route}

	n1.Start(t, withPassword("wrong"))
	n2.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{noPassword}})

	// Node 2 (no password) comes up despite node 1's problems.
	WaitEstablished(t, r1, 30*time.Second, n2.Addr4())
	WaitNextHops(t, r1, hostRoute, 20*time.Second, n2.Addr4())
	n2.WaitPeer(t, "r1", 10*time.Second, func(ps speakerbgp.PeerStatus) error {
		if err := Established(ps); err != nil {
			return err
		}
		if ps.AdvertisedPrefixes != 1 {
			return fmt.Errorf("advertised %d prefixes, want 1", ps.AdvertisedPrefixes)
		}
		return nil
	})

	// Node 1's wrong password: no session, and the status says a password
	// may be the cause.
	ps := n1.WaitPeer(t, "r1", 30*time.Second, func(ps speakerbgp.PeerStatus) error {
		if ps.State == speakerbgp.StateEstablished {
			return fmt.Errorf("Established with a wrong password")
		}
		if !strings.Contains(ps.LastError, "cannot connect to 198.51.100.1:179") || !strings.Contains(ps.LastError, "same TCP MD5 password") {
			return fmt.Errorf("last error %q does not point at the password", ps.LastError)
		}
		return nil
	})
	t.Logf("wrong password: state %s, last error %q", ps.State, ps.LastError)
	if nb, _, err := r1.Neighbor(t.Context(), n1.Addr4()); err != nil || nb.Established() {
		t.Errorf("router: neighbour %s = %+v, %v; want not Established", n1.Addr4(), nb, err)
	}

	// Node 1's wrong AS number towards router 2: the router rejects the
	// OPEN, and the status says to check the AS numbers.
	ps = n1.WaitPeer(t, "r2", 30*time.Second, func(ps speakerbgp.PeerStatus) error {
		if ps.State == speakerbgp.StateEstablished {
			return fmt.Errorf("Established with a wrong AS number")
		}
		if !strings.Contains(ps.LastError, "myASN") {
			return fmt.Errorf("last error %q does not point at the AS numbers", ps.LastError)
		}
		return nil
	})
	t.Logf("wrong AS number: state %s, last error %q", ps.State, ps.LastError)

	// The right password: the session is re-created and comes up.
	n1.Apply(t, withPassword("s3cret"))
	WaitEstablished(t, r1, 30*time.Second, n1.Addr4(), n2.Addr4())
	WaitNextHops(t, r1, hostRoute, 20*time.Second, n1.Addr4(), n2.Addr4())
	n1.WaitPeer(t, "r1", 10*time.Second, Established)
	if routes, err := r2.Routes(t.Context(), netlab.IPv4Unicast); err != nil || len(routes) != 0 {
		t.Errorf("router 2 learned %v (%v) from a peer in the wrong AS", routes, err)
	}
}

// TestAttributesInFRR: over iBGP, the local preference, communities and
// large communities of the routes RoutesByPeer computes show in FRR's JSON,
// and an aggregation length gives FRR the aggregate prefix.
func TestAttributesInFRR(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 1})
	r, n := l.Router(), l.Nodes[0]
	r.StartBGP(netlab.BGPConfig{ASN: NodeASN, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
		c.ASN = NodeASN
	})})
	ads := []speakerbgp.Advertisement{
		{Name: "pref", AllPeers: true, LocalPref: 150, HasLocalPref: true, Communities: []uint32{64512<<16 | 100}},
		{Name: "tagged", AllPeers: true, Communities: []uint32{64512<<16 | 200, 0xFFFFFF01}, // no-export
			LargeCommunities: []speakerbgp.LargeCommunity{{Global: 64512, Local1: 1, Local2: 2}}},
		{Name: "agg", AllPeers: true, AggregationLength: 28, AggregationLengthV6: 124},
	}
	anns := []speakerbgp.Announcement{
		{Addr: hostRoute.Addr(), Advertisements: []string{"pref", "tagged"}},
		{Addr: netip.MustParseAddr("203.0.113.140"), Advertisements: []string{"agg"}},
		{Addr: netip.MustParseAddr("203.0.113.141"), Advertisements: []string{"agg"}},
		{Addr: netip.MustParseAddr("2001:db8:200::17"), Advertisements: []string{"agg"}},
	}
	routes, err := speakerbgp.RoutesByPeer([]string{"r1"}, ads, anns)
	if err != nil {
		t.Fatal(err)
	}
	p := n.Peer("r1", r, false)
	p.PeerASN, p.Routes = NodeASN, routes["r1"]
	n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
	WaitEstablished(t, r, 30*time.Second, n.Addr4())

	agg4, agg6 := netip.MustParsePrefix("203.0.113.128/28"), netip.MustParsePrefix("2001:db8:200::10/124")
	WaitNextHops(t, r, agg4, 20*time.Second, n.Addr4())
	WaitNextHops(t, r, agg6, 20*time.Second, n.Addr6())
	route, ok, err := r.Route(t.Context(), hostRoute)
	if err != nil || !ok || len(route.Paths) != 1 {
		t.Fatalf("router: route %s = %+v, %v, %v", hostRoute, route, ok, err)
	}
	got := route.Paths[0]
	if got.LocalPref != 150 {
		t.Errorf("local preference %d, want 150", got.LocalPref)
	}
	if want := []string{"64512:100", "64512:200", "noExport"}; strings.Join(got.Communities, " ") != strings.Join(want, " ") {
		t.Errorf("communities %v, want %v", got.Communities, want)
	}
	if want := "64512:1:2"; strings.Join(got.LargeCommunities, " ") != want {
		t.Errorf("large communities %v, want %v", got.LargeCommunities, want)
	}
	// The aggregate carries no attributes and iBGP's default preference.
	aggRoute, _, err := r.Route(t.Context(), agg4)
	if err != nil || len(aggRoute.Paths) != 1 || aggRoute.Paths[0].LocalPref != 100 || len(aggRoute.Paths[0].Communities) != 0 {
		t.Errorf("aggregate %s: %+v, %v; want local preference 100 and no communities", agg4, aggRoute, err)
	}
	// No host route of an aggregated address leaks.
	for _, h := range []string{"203.0.113.140/32", "203.0.113.141/32"} {
		if rt, ok, _ := r.Route(t.Context(), netip.MustParsePrefix(h)); ok {
			t.Errorf("router has the host route %s: %+v", h, rt)
		}
	}
	n.WaitPeer(t, "r1", 10*time.Second, func(ps speakerbgp.PeerStatus) error {
		if ps.AdvertisedPrefixes != 3 {
			return fmt.Errorf("advertised %d prefixes, want 3", ps.AdvertisedPrefixes)
		}
		return nil
	})
	accepted, err := AcceptedPrefixes(t.Context(), r, n.Addr4())
	if err != nil || accepted["ipv4Unicast"] != 2 || accepted["ipv6Unicast"] != 1 {
		t.Errorf("router accepted %v (%v), want 2 IPv4 and 1 IPv6 prefixes", accepted, err)
	}
}

// TestIPv6 advertises IPv6 prefixes over an IPv6 session and over an IPv4
// session (multiprotocol), and an IPv4 prefix over the IPv6 session: the
// router uses both nodes' IPv6 addresses as next hops of the IPv6 prefix (the
// IPv4-session node's address found on its interface), and node 1's IPv4
// address for the IPv4 prefix.
func TestIPv6(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 2})
	r, n1, n2 := l.Router(), l.Nodes[0], l.Nodes[1]
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: []netlab.BGPNeighborConfig{
		{Address: n1.Addr6(), ASN: NodeASN},
		{Address: n2.Addr4(), ASN: NodeASN},
	}})
	p1 := n1.Peer("r1", r, true)
	p1.Routes = []speakerbgp.Route{{Prefix: hostRoute6}, {Prefix: hostRoute}}
	p2 := n2.Peer("r1", r, false)
	p2.Routes = []speakerbgp.Route{{Prefix: hostRoute6}}
	n1.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p1}})
	n2.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p2}})
	WaitEstablished(t, r, 30*time.Second, n1.Addr6(), n2.Addr4())
	WaitNextHops(t, r, hostRoute6, 20*time.Second, n1.Addr6(), n2.Addr6())
	WaitNextHops(t, r, hostRoute, 20*time.Second, n1.Addr4())
	for _, n := range []*Node{n1, n2} {
		if st, err := n.Status(); err != nil || len(st.Peers) != 1 || st.Peers[0].ConfigError != "" {
			t.Errorf("%s: status %+v, %v; want no configuration error", n.Name(), st, err)
		}
	}
}
