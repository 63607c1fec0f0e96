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

// The VRF test's link, outside the LAN's addresses and the advertised routes.
var (
	vrfRouter4 = netip.MustParsePrefix("203.0.113.249/29")
	vrfNode4   = netip.MustParsePrefix("203.0.113.250/29")
	vrfRouter6 = netip.MustParsePrefix("2001:db8:f0::1/64")
	vrfNode6   = netip.MustParsePrefix("2001:db8:f0::2/64")
)

// TestVRF: the node's link to the router is enslaved to a Linux VRF
// (vrf-blue, table 10), so the router is reachable only through that VRF's
// table. A peer with VRF vrf-blue is Established, and the router has the
// IPv4 route via the node's IPv4 address in the VRF (the session's local
// address) and the IPv6 route via the node's IPv6 address in the VRF (found
// through the VRF), not via the node's LAN addresses. The same peer without
// the VRF cannot connect, which shows that the VRF is what reaches the
// router.
func TestVRF(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 1})
	r, n := l.Router(), l.Nodes[0]
	const ifname, vrf = "blue0", "vrf-blue"
	l.Veth(r.Host, ifname, n.Host, ifname)
	r.AddAddr(ifname, vrfRouter4)
	r.AddAddr(ifname, vrfRouter6)
	if out, err := n.Run(t.Context(), "ip", "link", "add", vrf, "type", "vrf", "table", "10"); err != nil {
		if strings.Contains(out+err.Error(), "Unknown device type") {
			netlab.Missing(t, "the kernel has no VRF devices (CONFIG_NET_VRF is not set): "+strings.TrimSpace(out))
		}
		t.Fatalf("create %s: %v: %s", vrf, err, out)
	}
	n.MustRun("ip", "link", "set", vrf, "up")
	n.MustRun("ip", "link", "set", ifname, "master", vrf)
	n.AddAddr(ifname, vrfNode4) // after enslaving: that cycles the link, which drops IPv6 addresses
	n.AddAddr(ifname, vrfNode6)
	if out, err := n.Run(t.Context(), "ip", "route", "get", vrfRouter4.Addr().String()); err == nil {
		t.Fatalf("the node's default VRF reaches %v (%s): the test would not show the VRF at work", vrfRouter4.Addr(), strings.TrimSpace(out))
	}
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: []netlab.BGPNeighborConfig{{Address: vrfNode4.Addr(), ASN: NodeASN, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second}}})

	peer := speakerbgp.Peer{Name: "blue", Address: vrfRouter4.Addr(), VRF: vrf, PeerASN: RouterASN, MyASN: NodeASN, HoldTime: 9 * time.Second,
		Routes: []speakerbgp.Route{{Prefix: hostRoute}, {Prefix: hostRoute6}}}
	n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{peer}})
	n.WaitPeer(t, "blue", 60*time.Second, func(ps speakerbgp.PeerStatus) error {
		if err := Established(ps); err != nil {
			return err
		}
		if ps.AdvertisedPrefixes != 2 {
			return fmt.Errorf("advertised %d prefixes, want 2", ps.AdvertisedPrefixes)
		}
		return nil
	})
	WaitEstablished(t, r, 20*time.Second, vrfNode4.Addr())
	WaitNextHops(t, r, hostRoute, 20*time.Second, vrfNode4.Addr())
	WaitNextHops(t, r, hostRoute6, 20*time.Second, vrfNode6.Addr())

	// Without the VRF the node's default table has no route to the router.
	noVRF := peer
	noVRF.VRF = ""
	n.Apply(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{noVRF}})
	ps := n.WaitPeer(t, "blue", 30*time.Second, func(ps speakerbgp.PeerStatus) error {
		if ps.State == speakerbgp.StateEstablished || !strings.Contains(ps.LastError, "cannot connect to 203.0.113.249:179") {
			return fmt.Errorf("state %s, last error %q: want a failed connection", ps.State, ps.LastError)
		}
		return nil
	})
	t.Logf("without the VRF: state %s, config error %q, last error %q", ps.State, ps.ConfigError, ps.LastError)
	WaitNextHops(t, r, hostRoute, 30*time.Second)
}
