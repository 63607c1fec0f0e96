package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bgpLab is a router and two nodes on one LAN.
type bgpLab struct {
	lab    *Lab
	router *Router
	nodes  []*Host
}

func newBGPLab(t *testing.T) *bgpLab {
	RequireCommands(t, BGPDPath, "vtysh")
	lab := New(t, Options{})
	lan := lab.AddBridge("lan")
	r4, r6 := LANAddrs(RouterHostNumber)
	rh := lab.AddHost("router")
	rh.Attach(lan, "eth0", r4, r6)
	b := &bgpLab{lab: lab, router: NewRouter(rh)}
	for i := range 2 {
		v4, v6 := LANAddrs(FirstNodeHostNumber + i)
		h := lab.AddHost(fmt.Sprintf("node%d", i+1))
		h.Attach(lan, "eth0", v4, v6)
		b.nodes = append(b.nodes, h)
	}
	return b
}

// startPeer runs the GoBGP test peer in node, peering with the router.
func (b *bgpLab) startPeer(t *testing.T, node *Host, password string, extra ...string) *Process {
	bin := BuildGo(t, BGPPeerPackage)
	peer := b.router.Addr4().String() + ",64512"
	if password != "" {
		peer += "," + password
	}
	args := append([]string{bin, "-asn", "64513", "-router-id", node.Addr4().String(), "-peer", peer,
		"-nexthop4", node.Addr4().String(), "-nexthop6", node.Addr6().String()}, extra...)
	return node.Start("bgppeer", args...)
}

func waitEstablished(t *testing.T, r *Router, addrs ...netip.Addr) {
	t.Helper()
	Eventually(t, 20*time.Second, func(ctx context.Context) error {
		for _, a := range addrs {
			n, ok, err := r.Neighbor(ctx, a)
			if err != nil {
				return err
			}
			if !ok || !n.Established() {
				return fmt.Errorf("neighbour %s: %+v", a, n)
			}
		}
		return nil
	})
}

func waitNextHops(t *testing.T, r *Router, prefix netip.Prefix, want []netip.Addr) {
	t.Helper()
	Eventually(t, 20*time.Second, func(ctx context.Context) error {
		routes, err := r.Routes(ctx, FamilyOf(prefix.Addr()))
		if err != nil {
			return err
		}
		var got []netip.Addr
		for _, rt := range routes {
			if rt.Prefix == prefix {
				got = rt.SelectedNextHops()
			}
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			return fmt.Errorf("next hops of %s (-want +got):\n%s", prefix, diff)
		}
		return nil
	})
}

func TestRouterLearnsHostRoutesFromGoBGP(t *testing.T) {
	b := newBGPLab(t)
	n1, n2 := b.nodes[0], b.nodes[1]
	b.router.StartBGP(BGPConfig{ASN: 64512, Neighbors: []BGPNeighborConfig{
		{Address: n1.Addr4(), ASN: 64513, Password: "s3cret"},
		{Address: n2.Addr4(), ASN: 64513},
	}})
	v4 := netip.MustParsePrefix("203.0.113.130/32")
	v6 := netip.MustParsePrefix("2001:db8:200::5/128")
	announce := []string{"-prefix", v4.String(), "-prefix", v6.String(),
		"-community", "64512:100", "-large-community", "64512:1:2"}
	b.startPeer(t, n1, "s3cret", announce...)
	p2 := b.startPeer(t, n2, "", announce...)
	waitEstablished(t, b.router, n1.Addr4(), n2.Addr4())

	// Both nodes' paths are used: ECMP over the two next hops, per family.
	waitNextHops(t, b.router, v4, []netip.Addr{n1.Addr4(), n2.Addr4()})
	waitNextHops(t, b.router, v6, []netip.Addr{n1.Addr6(), n2.Addr6()})

	saveFixtures(t, b.router, map[string]string{
		"neighbors.json":   "show bgp neighbors json",
		"table-ipv4.json":  "show bgp ipv4 unicast json",
		"table-ipv6.json":  "show bgp ipv6 unicast json",
		"prefix-ipv4.json": "show bgp ipv4 unicast " + v4.String() + " json",
		"prefix-ipv6.json": "show bgp ipv6 unicast " + v6.String() + " json",
	})
	route, ok, err := b.router.Route(t.Context(), v6)
	if err != nil || !ok {
		t.Fatalf("Route(%s) = %v, %v", v6, ok, err)
	}
	for _, p := range route.Paths {
		if diff := cmp.Diff([]string{"64512:100"}, p.Communities); diff != "" {
			t.Errorf("communities of the path from %s (-want +got):\n%s", p.Peer, diff)
		}
		if diff := cmp.Diff([]string{"64512:1:2"}, p.LargeCommunities); diff != "" {
			t.Errorf("large communities of the path from %s (-want +got):\n%s", p.Peer, diff)
		}
		if p.ASPath != "64513" {
			t.Errorf("AS path from %s = %q, want 64513", p.Peer, p.ASPath)
		}
	}
	neighbors, err := b.router.Neighbors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighbors {
		if n.AcceptedPrefixes["ipv4Unicast"] != 1 || n.AcceptedPrefixes["ipv6Unicast"] != 1 {
			t.Errorf("neighbour %s accepted %v, want one prefix per family", n.Address, n.AcceptedPrefixes)
		}
	}

	// A node that stops advertising leaves only the other next hop.
	if err := p2.Stop(5 * time.Second); err != nil {
		t.Logf("bgppeer on node2: %v", err)
	}
	waitNextHops(t, b.router, v4, []netip.Addr{n1.Addr4()})
	waitNextHops(t, b.router, v6, []netip.Addr{n1.Addr6()})
}

func TestRouterRefusesWrongPassword(t *testing.T) {
	b := newBGPLab(t)
	n1 := b.nodes[0]
	b.router.StartBGP(BGPConfig{ASN: 64512, Neighbors: []BGPNeighborConfig{
		{Address: n1.Addr4(), ASN: 64513, Password: "right"},
	}})
	b.startPeer(t, n1, "wrong", "-prefix", "203.0.113.131/32")
	// TCP MD5 drops every segment of the session: it never gets past Connect/Active.
	time.Sleep(3 * time.Second)
	n, ok, err := b.router.Neighbor(t.Context(), n1.Addr4())
	if err != nil || !ok {
		t.Fatalf("Neighbor = %v, %v", ok, err)
	}
	if n.Established() {
		t.Errorf("session established with a wrong password: %+v", n)
	}
	routes, err := b.router.Routes(t.Context(), IPv4Unicast)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 0 {
		t.Errorf("routes learned with a wrong password: %+v", routes)
	}
}

func TestRouterBFDWithGoBGP(t *testing.T) {
	RequireCommands(t, ZebraPath, BFDDPath)
	b := newBGPLab(t)
	n1 := b.nodes[0]
	b.router.StartBGP(BGPConfig{ASN: 64512, Neighbors: []BGPNeighborConfig{
		{Address: n1.Addr4(), ASN: 64513, BFD: true, HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second},
	}})
	v4 := netip.MustParsePrefix("203.0.113.132/32")
	start := time.Now()
	b.startPeer(t, n1, "", "-prefix", v4.String(), "-bfd")
	// GoBGP v4.8.0 and FRR 8.4 reset the first sessions as BFD comes up (see
	// bfdSession), and GoBGP waits 30 s before it dials again: allow for that.
	Eventually(t, 150*time.Second, func(ctx context.Context) error {
		peers, err := b.router.BFDPeers(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(peers, func(p BFDPeer) bool { return p.Peer == n1.Addr4() && p.Status == "up" }) {
			return fmt.Errorf("no BFD session up with %s: %+v", n1.Addr4(), peers)
		}
		n, _, err := b.router.Neighbor(ctx, n1.Addr4())
		if err != nil {
			return err
		}
		if !n.Established() || n.BFDStatus != "Up" || n.Uptime < 5*time.Second {
			return fmt.Errorf("neighbour %s not established with BFD up for 5 s: %+v", n1.Addr4(), n)
		}
		return nil
	})
	t.Logf("BGP with BFD stable after %v", time.Since(start).Round(time.Second))
	waitNextHops(t, b.router, v4, []netip.Addr{n1.Addr4()})
	saveFixtures(t, b.router, map[string]string{"bfd-peers.json": "show bfd peers json"})
	// With zebra running, the learned route is in the router's kernel table.
	Eventually(t, 10*time.Second, func(ctx context.Context) error {
		out, err := b.router.Run(ctx, "ip", "route", "show", v4.String())
		if err != nil {
			return err
		}
		if want := "via " + n1.Addr4().String(); !strings.Contains(out, want) {
			return fmt.Errorf("kernel route %q lacks %q", out, want)
		}
		return nil
	})

	// Cutting the node off: BFD, not the 90 s hold time, takes the session and the
	// route down.
	cut := time.Now()
	if err := n1.Links()[0].Detach(); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, b.router, v4, nil)
	t.Logf("route withdrawn %v after the node's link was cut (BFD 300 ms x 3)", time.Since(cut).Round(10*time.Millisecond))
}

// saveFixtures writes vtysh's answers to testdata/frr when NETLAB_UPDATE_FIXTURES=1,
// to refresh the parsers' test inputs from a real FRR.
func saveFixtures(t *testing.T, r *Router, files map[string]string) {
	if os.Getenv("NETLAB_UPDATE_FIXTURES") != "1" {
		return
	}
	for name, cmd := range files {
		out, err := r.Vtysh(t.Context(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "frr", name), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
