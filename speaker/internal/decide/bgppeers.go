package decide

import (
	"net/netip"
	"slices"

	"github.com/herald-dev/herald/config"
)

// peersForNode splits the BGPPeers a node with these labels opens sessions
// with (config.Model.BGPPeersForNode) into those it can open and those whose
// sourceAddress none of the node's interfaces has, or whose interface (an
// unnumbered peer) the node does not have: such a session could never
// connect, so the node does not try, and reports why. A peer with neither is
// always usable. Both lists keep the model's order (by name). Cost:
// O(P x A) for P peers and A node addresses.
func peersForNode(m *config.Model, selfLabels map[string]string, ifaces []NodeInterface) (usable, withoutSource []config.BGPPeer) {
	for _, p := range m.BGPPeersForNode(selfLabels) {
		if p.SourceAddress.IsValid() && !hasAddress(ifaces, p.SourceAddress) ||
			p.Unnumbered() && !slices.ContainsFunc(ifaces, func(i NodeInterface) bool { return i.Name == p.Interface }) {
			withoutSource = append(withoutSource, p)
			continue
		}
		usable = append(usable, p)
	}
	return usable, withoutSource
}

// hasAddress reports whether one of the interfaces has address a (any
// interface, up or not, loopback included: a session may be sourced from a
// loopback address).
func hasAddress(ifaces []NodeInterface, a netip.Addr) bool {
	a = a.Unmap()
	for _, i := range ifaces {
		for _, p := range i.Prefixes {
			if p.Addr().Unmap().WithZone("") == a {
				return true
			}
		}
	}
	return false
}
