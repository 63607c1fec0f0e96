package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrNoRouterNeighbor is wrapped by the error of an unnumbered peer whose
// router the speaker cannot find on its interface.
var ErrNoRouterNeighbor = errors.New("bgp: no single router on the interface")

// neighborEntry is one IPv6 neighbour of an interface, as the kernel's
// neighbour table holds it.
type neighborEntry struct {
	addr netip.Addr
	// router says the neighbour announced itself as a router (a router
	// advertisement, or a neighbour advertisement with the R flag).
	router bool
	// failed says address resolution failed (NUD_FAILED): the neighbour is
	// gone.
	failed bool
}

// neighborFunc returns the link-local address, zoned with ifname, of the one
// router at the other end of interface ifname.
type neighborFunc func(ifname string) (netip.Addr, error)

// pickRouterNeighbor chooses an unnumbered peer's router among the
// interface's IPv6 neighbours: the one link-local neighbour that is a router
// and has not failed, ignoring the node's own addresses. On a point-to-point
// link it is the router; on a shared link, hosts that send no router
// advertisements are not counted (but other speakers with unnumbered peers
// on the link send them, and count). None, or several, is an error: the
// speaker cannot tell which router the BGPPeer means.
func pickRouterNeighbor(ifname string, neighbors []neighborEntry, own []netip.Addr) (netip.Addr, error) {
	var routers []netip.Addr
	for _, n := range neighbors {
		a := n.addr.WithZone("")
		if !n.router || n.failed || !a.Is6() || !a.IsLinkLocalUnicast() || slices.Contains(own, a) || slices.Contains(routers, a) {
			continue
		}
		routers = append(routers, a)
	}
	switch len(routers) {
	case 0:
		return netip.Addr{}, fmt.Errorf("%w: interface %s has no IPv6 link-local neighbour that is a router (the router must send router advertisements on it, as FRR does for \"neighbor %s interface\")", ErrNoRouterNeighbor, ifname, ifname)
	case 1:
		return routers[0].WithZone(ifname), nil
	}
	slices.SortFunc(routers, netip.Addr.Compare)
	return netip.Addr{}, fmt.Errorf("%w: interface %s has %d routers (%v): unnumbered peering needs a link with one router", ErrNoRouterNeighbor, ifname, len(routers), routers)
}

// resolveInterfaces returns peers with the Address of each unnumbered peer
// (Interface set, no Address) set to its router's zoned link-local address,
// and, by peer name, why the others could not be resolved. neighbor is
// asked once per interface.
func resolveInterfaces(peers []Peer, neighbor neighborFunc) ([]Peer, map[string]error) {
	out := slices.Clone(peers)
	errs := map[string]error{}
	type result struct {
		addr netip.Addr
		err  error
	}
	cache := map[string]result{}
	for i, p := range out {
		if p.Interface == "" || p.Address.IsValid() {
			continue
		}
		r, ok := cache[p.Interface]
		if !ok {
			r.addr, r.err = neighbor(p.Interface)
			cache[p.Interface] = r
		}
		if r.err != nil {
			errs[p.Name] = fmt.Errorf("%w %q: %w", ErrInvalidPeer, p.Name, r.err)
			continue
		}
		out[i].Address = r.addr
	}
	return out, errs
}

// unnumberedInterfaces returns the sorted interfaces of the unnumbered peers.
func unnumberedInterfaces(peers []Peer) []string {
	var out []string
	for _, p := range peers {
		if p.Interface != "" {
			out = append(out, p.Interface)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
