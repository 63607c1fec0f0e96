package netlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// The address plan. Every lab uses the same numbers (labs are separate layer-2 domains in
// separate namespaces, so two labs never see each other's addresses), and only the
// documentation ranges: 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32.
var (
	// LANv4 and LANv6 are the subnets of the LAN bridge that joins the router, the
	// control-plane host, the client and the nodes.
	LANv4 = netip.MustParsePrefix("198.51.100.0/24")
	LANv6 = netip.MustParsePrefix("2001:db8:1::/64")

	// L2PoolV4 and L2PoolV6 are on the LAN but owned by no host: load-balancer addresses
	// for layer-2 announcement come from here.
	L2PoolV4 = netip.MustParsePrefix("198.51.100.128/26")
	L2PoolV6 = netip.MustParsePrefix("2001:db8:1::1:0/112")

	// RoutedPoolV4 and RoutedPoolV6 are on no link: load-balancer addresses for BGP
	// announcement come from here. The client routes them through the router.
	RoutedPoolV4 = netip.MustParsePrefix("203.0.113.128/25")
	RoutedPoolV6 = netip.MustParsePrefix("2001:db8:200::/64")

	// PodsV4 and PodsV6 hold the pod subnets: node n (1-based) gets the n-th /28 of
	// PodsV4 (the n-th /29 in a lab of more than RoomyNodes nodes) and
	// 2001:db8:100:n::/64. See NodePodCIDRs.
	PodsV4 = netip.MustParsePrefix("203.0.113.0/25")
	PodsV6 = netip.MustParsePrefix("2001:db8:100::/56")

	// The control-plane harness allocates ClusterIPs from 198.51.100.192/26 and
	// 2001:db8:ffff:ffff::/112 by default: this plan keeps hosts and pools clear of them.

	// DocumentationRanges are the only ranges a lab uses. New refuses to build a lab when
	// a route of the machine overlaps one of them.
	DocumentationRanges = []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
)

// Well-known host numbers on the LAN: the last byte of the IPv4 address, and the last
// group of the IPv6 address written with the same digits (198.51.100.11 and
// 2001:db8:1::11).
const (
	RouterHostNumber       = 1
	ControlPlaneHostNumber = 2
	ClientHostNumber       = 3
	// FirstNodeHostNumber is node 1's number; node n has FirstNodeHostNumber+n-1.
	FirstNodeHostNumber = 11
	// MaxNodes is how many nodes the pod ranges have room for: sixteen /29s of
	// PodsV4. Node hosts 11 to 26 stay below L2PoolV4 and the ClusterIPs.
	MaxNodes = 16
	// RoomyNodes is the largest lab whose nodes get a /28 of PodsV4 each (room for 13
	// pods); in a larger lab each gets a /29 (room for 5).
	RoomyNodes = 8
)

// ErrRangeInUse reports that a route of the machine overlaps the address plan.
var ErrRangeInUse = errors.New("netlab: address range already routed on this machine")

// LANAddrs returns the LAN addresses of host number n as /24 and /64 prefixes.
func LANAddrs(n int) (v4, v6 netip.Prefix) {
	a4 := LANv4.Addr().As4()
	a4[3] = byte(n)
	v4 = netip.PrefixFrom(netip.AddrFrom4(a4), LANv4.Bits())
	v6 = netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%d", n)), LANv6.Bits())
	return v4, v6
}

// NodePodCIDRs returns the pod subnets of node n (1-based) in a lab of nodes nodes
// (1 to MaxNodes): a /28 of PodsV4 when nodes is at most RoomyNodes, else a /29, and
// a /64 of PodsV6. Labs are separate, so the same node number may have other subnets
// in a lab of another size; labs of up to RoomyNodes nodes all share one plan.
func NodePodCIDRs(n, nodes int) (v4, v6 netip.Prefix) {
	bits := 28
	if nodes > RoomyNodes {
		bits = 29
	}
	a4 := PodsV4.Addr().As4()
	a4[3] = byte((n - 1) << (32 - bits))
	v4 = netip.PrefixFrom(netip.AddrFrom4(a4), bits)
	v6 = netip.MustParsePrefix(fmt.Sprintf("2001:db8:100:%x::/64", n))
	return v4, v6
}

// podRoom returns how many pods a node's IPv4 pod subnet p holds: all its addresses
// but the subnet's own, the node's (cni0's, the first) and the broadcast address.
func podRoom(p netip.Prefix) int { return 1<<(p.Addr().BitLen()-p.Bits()) - 3 }

// route is one line of `ip -j route show table all`.
type route struct {
	Dst string `json:"dst"`
	Dev string `json:"dev"`
}

// overlappingRoutes returns the routes (as "dst dev") that overlap one of ranges. The
// default route and routes whose destination does not parse are ignored: a default
// route claims no range.
func overlappingRoutes(routes []route, ranges []netip.Prefix) []string {
	var out []string
	for _, r := range routes {
		if r.Dst == "" || r.Dst == "default" {
			continue
		}
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, aerr := netip.ParseAddr(r.Dst)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			continue
		}
		for _, want := range ranges {
			if p.Overlaps(want) {
				out = append(out, strings.TrimSpace(r.Dst+" dev "+r.Dev))
				break
			}
		}
	}
	return out
}

// CheckAddressPlan returns an error wrapping ErrRangeInUse, naming the routes, when a
// route in any table of the machine's own network namespace overlaps
// DocumentationRanges.
func CheckAddressPlan() error {
	bad, err := OverlappingRoutes()
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: routes %s overlap the lab's ranges %v; remove them or run the lab on another machine",
			ErrRangeInUse, strings.Join(bad, ", "), DocumentationRanges)
	}
	return nil
}

// OverlappingRoutes returns the routes (as "dst dev"), in any table of the calling
// process's network namespace, that overlap DocumentationRanges.
func OverlappingRoutes() ([]string, error) {
	var routes []route
	for _, family := range []string{"-4", "-6"} {
		out, err := exec.Command("ip", "-j", family, "route", "show", "table", "all").Output()
		if err != nil {
			return nil, fmt.Errorf("netlab: list the machine's routes: %w", err)
		}
		var rs []route
		if err := json.Unmarshal(out, &rs); err != nil {
			return nil, fmt.Errorf("netlab: parse the machine's routes: %w", err)
		}
		routes = append(routes, rs...)
	}
	return overlappingRoutes(routes, DocumentationRanges), nil
}
