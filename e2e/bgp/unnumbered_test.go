package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// unnumberedIf is the name, at both ends, of the point-to-point link of the
// unnumbered tests: the lab's LAN stays as it is for the other tests.
const unnumberedIf = "unn0"

// linkLocal returns h's IPv6 link-local address on ifname.
func linkLocal(ctx context.Context, h *netlab.Host, ifname string) (netip.Addr, error) {
	out, err := h.Run(ctx, "ip", "-j", "-6", "addr", "show", "dev", ifname, "scope", "link")
	if err != nil {
		return netip.Addr{}, err
	}
	var links []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return netip.Addr{}, fmt.Errorf("parse %s's addresses on %s: %w: %q", h.Name(), ifname, err, out)
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if ip, err := netip.ParseAddr(a.Local); err == nil && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv6 link-local address on %s yet", h.Name(), ifname)
}

// unnumberedNeighbor is what FRR says of its neighbour on an interface.
type unnumberedNeighbor struct {
	State   string `json:"bgpState"`
	Address string `json:"bgpNeighborAddr"`
}

func routerNeighborOn(ctx context.Context, r *netlab.Router, ifname string) (unnumberedNeighbor, error) {
	out, err := r.Vtysh(ctx, "show bgp neighbors "+ifname+" json")
	if err != nil {
		return unnumberedNeighbor{}, err
	}
	var d map[string]unnumberedNeighbor
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return unnumberedNeighbor{}, fmt.Errorf("parse neighbour %s: %w: %s", ifname, err, out)
	}
	n, ok := d[ifname]
	if !ok {
		return unnumberedNeighbor{}, fmt.Errorf("router %s has no neighbour %s: %s", r.Name(), ifname, out)
	}
	return n, nil
}

// routeNextHops returns every next hop FRR's BGP table holds for exactly
// prefix, link-local ones included, as "address" strings.
func routeNextHops(ctx context.Context, r *netlab.Router, prefix netip.Prefix) ([]netip.Addr, error) {
	out, err := r.Vtysh(ctx, fmt.Sprintf("show bgp %s unicast %s json", netlab.FamilyOf(prefix.Addr()), prefix))
	if err != nil {
		return nil, err
	}
	var d struct {
		Paths []struct {
			Valid    bool `json:"valid"`
			NextHops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return nil, fmt.Errorf("parse the paths of %s: %w: %s", prefix, err, out)
	}
	var hops []netip.Addr
	for _, p := range d.Paths {
		for _, nh := range p.NextHops {
			if a, err := netip.ParseAddr(nh.IP); err == nil && p.Valid {
				hops = append(hops, a)
			}
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return slices.Compact(hops), nil
}

// TestUnnumbered: a node peers with FRR by interface ("neighbor unn0
// interface" on the router, Peer.Interface on the node) over a
// point-to-point link that has no addresses but the kernel's IPv6
// link-local ones. The speaker finds the router's link-local address from
// FRR's router advertisements, FRR finds the node's from the speaker's, the
// session comes up, and FRR has the IPv4 route with the node's IPv6
// link-local next hop (RFC 5549), in its BGP table and in its kernel table
// (an IPv4 route via inet6), and the IPv6 route with the same next hop.
// Changing the peer to an interface the node lacks reports why.
func TestUnnumbered(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 1})
	r, n := l.Router(), l.Nodes[0]
	l.Veth(r.Host, unnumberedIf, n.Host, unnumberedIf)
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: []netlab.BGPNeighborConfig{{Interface: unnumberedIf, ASN: NodeASN}}})

	peer := speakerbgp.Peer{Name: "unnumbered", Interface: unnumberedIf, PeerASN: RouterASN, MyASN: NodeASN, HoldTime: 9 * time.Second,
		Routes: []speakerbgp.Route{{Prefix: hostRoute}, {Prefix: hostRoute6}}}
	start := time.Now()
	n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{peer}})

	var nodeLL, routerLL netip.Addr
	netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
		var err error
		if nodeLL, err = linkLocal(ctx, n.Host, unnumberedIf); err != nil {
			return err
		}
		routerLL, err = linkLocal(ctx, r.Host, unnumberedIf)
		return err
	})
	ps := n.WaitPeer(t, "unnumbered", 90*time.Second, func(ps speakerbgp.PeerStatus) error {
		if err := Established(ps); err != nil {
			return err
		}
		if ps.AdvertisedPrefixes != 2 {
			return fmt.Errorf("advertised %d prefixes, want 2", ps.AdvertisedPrefixes)
		}
		return nil
	})
	t.Logf("unnumbered session Established %v after the speaker started", time.Since(start).Round(100*time.Millisecond))
	if want := routerLL.WithZone(unnumberedIf); ps.Address != want {
		t.Errorf("the speaker's status names the router %v, want %v", ps.Address, want)
	}

	netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
		nb, err := routerNeighborOn(ctx, r, unnumberedIf)
		if err != nil {
			return err
		}
		if nb.State != "Established" {
			return fmt.Errorf("router: neighbour %s is %s", unnumberedIf, nb.State)
		}
		if a, err := netip.ParseAddr(nb.Address); err != nil || a != nodeLL {
			return fmt.Errorf("router: neighbour %s has address %q, want the node's %v", unnumberedIf, nb.Address, nodeLL)
		}
		return nil
	})
	for _, prefix := range []netip.Prefix{hostRoute, hostRoute6} {
		netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
			hops, err := routeNextHops(ctx, r, prefix)
			if err != nil {
				return err
			}
			if !slices.Contains(hops, nodeLL) {
				return fmt.Errorf("router: next hops of %s are %v, want the node's link-local %v", prefix, hops, nodeLL)
			}
			kernel, err := r.KernelNextHops(ctx, prefix)
			if err != nil {
				return err
			}
			if !slices.Equal(kernel, []netip.Addr{nodeLL}) {
				return fmt.Errorf("router's kernel: next hops of %s are %v, want [%v]", prefix, kernel, nodeLL)
			}
			return nil
		})
	}
	out, _ := r.Run(t.Context(), "ip", "-4", "route", "show", "exact", hostRoute.String())
	t.Logf("router's kernel route: %s", strings.TrimSpace(out))

	// A peer on an interface the node lacks: no session, and the status
	// says the router cannot be found there.
	missing := peer
	missing.Interface = "nosuch0"
	n.Apply(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{missing}})
	ps = n.WaitPeer(t, "unnumbered", 10*time.Second, func(ps speakerbgp.PeerStatus) error {
		if ps.State != speakerbgp.StateNotConfigured || !strings.Contains(ps.ConfigError, "nosuch0") {
			return fmt.Errorf("state %s, config error %q: want NotConfigured naming nosuch0", ps.State, ps.ConfigError)
		}
		return nil
	})
	t.Logf("interface missing: %s", ps.ConfigError)
	netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		hops, err := routeNextHops(ctx, r, hostRoute)
		if err != nil {
			return err
		}
		if len(hops) != 0 {
			return fmt.Errorf("router still has %s via %v", hostRoute, hops)
		}
		return nil
	})
}
