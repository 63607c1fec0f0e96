package bgp

import (
	"fmt"
	"net/netip"
	"slices"
)

// nextHopFunc returns the address of family 6 (or 4 when v6 is false) to use
// as next hop towards the router at peer, on the interface holding source
// (the session's source address; the zero Addr when the kernel chooses it).
type nextHopFunc func(peer, source netip.Addr, v6 bool) (netip.Addr, error)

// peerProblem is what is wrong with one desired peer.
type peerProblem struct {
	// session is why the session cannot be configured (nil if it can).
	session error
	// routes is why some routes cannot be advertised (nil if all can).
	routes error
}

// resolveDesired validates the desired peers and resolves their routes' next
// hops. Peers are taken in order of name: a peer whose name or address an
// earlier one already uses is rejected. Unnumbered peers come with their
// router's address already found (resolveInterfaces), or with the reason it
// was not in unresolved, by name. Duplicate prefixes for one peer are
// merged like RoutesByPeer merges them. The result holds only the peers that
// can be configured; problems holds, by peer name, every peer with a problem.
func resolveDesired(d Desired, listening bool, nextHop nextHopFunc, unresolved map[string]error) (desiredState, map[string]peerProblem) {
	want := desiredState{sessions: map[netip.Addr]sessionConfig{}, routes: map[netip.Addr][]desiredRoute{}}
	problems := map[string]peerProblem{}
	names := map[string]bool{}
	for _, p := range sortedPeers(d.Peers) {
		if names[p.Name] {
			problems[p.Name] = peerProblem{session: fmt.Errorf("%w %q: another peer has the same name", ErrInvalidPeer, p.Name)}
			continue
		}
		names[p.Name] = true
		if err := unresolved[p.Name]; err != nil {
			problems[p.Name] = peerProblem{session: err}
			continue
		}
		if err := p.validate(listening); err != nil {
			problems[p.Name] = peerProblem{session: err}
			continue
		}
		if _, ok := want.sessions[p.Address]; ok {
			problems[p.Name] = peerProblem{session: fmt.Errorf("%w %q: another peer has the address %v", ErrInvalidPeer, p.Name, p.Address)}
			continue
		}
		want.sessions[p.Address] = p.session()
		routes, err := resolveRoutes(p, nextHop)
		if err != nil {
			problems[p.Name] = peerProblem{routes: err}
		}
		want.routes[p.Address] = routes
	}
	return want, problems
}

// resolveRoutes returns p's routes with their next hops, merged by prefix and
// sorted. Routes whose next hop cannot be found are left out, and the error
// says why.
func resolveRoutes(p Peer, nextHop nextHopFunc) ([]desiredRoute, error) {
	routes := p.Routes
	if !sortedUnique(routes) {
		routes = mergeRoutes(routes)
	}
	var hops [2]struct {
		addr     netip.Addr
		err      error
		resolved bool
	}
	hopFor := func(v6 bool) (netip.Addr, error) {
		i := 0
		if v6 {
			i = 1
		}
		h := &hops[i]
		if !h.resolved {
			h.resolved = true
			switch {
			case !v6 && p.NextHopV4.IsValid():
				h.addr = p.NextHopV4
			case v6 && p.NextHopV6.IsValid():
				h.addr = p.NextHopV6
			case v6 == p.Address.Is6() || p.Interface != "":
				// The session's own family, or any family over an
				// unnumbered session (RFC 5549): GoBGP puts its local
				// address, the interface's IPv6 link-local one.
			default:
				h.addr, h.err = nextHop(p.Address, p.SourceAddress, v6)
				if h.err != nil {
					family := "IPv4"
					if v6 {
						family = "IPv6"
					}
					h.err = fmt.Errorf("bgp: no next hop for %s routes to %v: %w (set the peer's %s next hop)", family, p.Address, h.err, family)
				}
			}
		}
		return h.addr, h.err
	}
	out := make([]desiredRoute, 0, len(routes))
	var firstErr error
	for _, r := range routes {
		hop, err := hopFor(r.Prefix.Addr().Is6())
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, desiredRoute{prefix: r.Prefix, nextHop: hop, attrs: canonicalAttrs(r)})
	}
	return out, firstErr
}

// sortedUnique reports whether routes are valid, masked, strictly sorted by
// prefix (so without duplicates), as RoutesByPeer returns them: such routes
// need no merging.
func sortedUnique(routes []Route) bool {
	for i, r := range routes {
		if !r.Prefix.IsValid() || r.Prefix.Masked() != r.Prefix {
			return false
		}
		if i > 0 && comparePrefixes(routes[i-1].Prefix, r.Prefix) >= 0 {
			return false
		}
	}
	return true
}

// mergeRoutes masks the prefixes, drops invalid ones, merges duplicates
// (union of communities, highest local preference) and sorts by prefix.
func mergeRoutes(routes []Route) []Route {
	merged := make(map[netip.Prefix]Route, len(routes))
	for _, r := range routes {
		prefix := r.Prefix.Masked()
		if !prefix.IsValid() {
			continue
		}
		m, ok := merged[prefix]
		if !ok {
			m = Route{Prefix: prefix}
		}
		m.LocalPref = max(m.LocalPref, r.LocalPref)
		m.Communities = append(m.Communities, r.Communities...)
		m.LargeCommunities = append(m.LargeCommunities, r.LargeCommunities...)
		merged[prefix] = m
	}
	out := make([]Route, 0, len(merged))
	for _, prefix := range sortedPrefixes(merged) {
		out = append(out, merged[prefix])
	}
	return out
}

// pickNextHop returns the first usable address of the wanted family among an
// interface's addresses: a global unicast address (private IPv4 and unique
// local IPv6 addresses count; link-local and loopback ones do not).
func pickNextHop(addrs []netip.Addr, v6 bool) (netip.Addr, bool) {
	i := slices.IndexFunc(addrs, func(a netip.Addr) bool {
		a = a.Unmap()
		return a.Is6() == v6 && a.IsGlobalUnicast() && a.Zone() == ""
	})
	if i < 0 {
		return netip.Addr{}, false
	}
	return addrs[i].Unmap(), true
}
