package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
)

// kernelNeighbor finds an unnumbered peer's router in the kernel's IPv6
// neighbour table of ifname (see pickRouterNeighbor).
func kernelNeighbor(ifname string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: this node has no interface %s: %w", ErrNoRouterNeighbor, ifname, err)
	}
	neighs, err := netlink.NeighList(ifi.Index, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bgp: list the IPv6 neighbours of %s: %w", ifname, err)
	}
	entries := make([]neighborEntry, 0, len(neighs))
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		entries = append(entries, neighborEntry{addr: a, router: n.Flags&netlink.NTF_ROUTER != 0, failed: n.State&netlink.NUD_FAILED != 0})
	}
	var own []netip.Addr
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					own = append(own, ip.Unmap())
				}
			}
		}
	}
	return pickRouterNeighbor(ifname, entries, own)
}

// raInterval is how often the speaker sends a router advertisement on the
// interface of an unnumbered peer: FRR's interval for its own unnumbered
// interfaces.
const raInterval = 10 * time.Second

// advertiseRouter sends a router advertisement on ifname every raInterval
// until ctx is done, so that the router at the other end learns the node's
// link-local address: FRR accepts a session on "neighbor IFNAME interface"
// only from the address it learned so. The router lifetime is 0: the node
// offers itself as nobody's default router. An interface that cannot be
// opened (not there yet, no link-local address yet) is tried again at the
// next interval.
func advertiseRouter(ctx context.Context, ifname string) {
	t := time.NewTicker(raInterval)
	defer t.Stop()
	var conn *ndp.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		if conn == nil {
			conn = openRA(ifname)
		}
		if conn != nil {
			ifi, err := net.InterfaceByName(ifname)
			var opts []ndp.Option
			if err == nil && len(ifi.HardwareAddr) > 0 {
				opts = append(opts, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr})
			}
			ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64, Options: opts}
			if err := conn.WriteTo(ra, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
				conn.Close() // the interface may have been re-created: reopen
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openRA opens an ICMPv6 socket on ifname that only sends (its filter
// blocks every incoming message), or returns nil.
func openRA(ifname string) *ndp.Conn {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil
	}
	conn, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	if err := conn.SetICMPFilter(&f); err != nil {
		conn.Close()
		return nil
	}
	return conn
}
