package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Desired is the whole BGP state a node should have.
type Desired struct {
	// Peers are the sessions to run, each with its routes.
	Peers []Peer
}

// Route is a prefix advertised to a peer, with its attributes.
type Route struct {
	// Prefix is the advertised prefix; its address is masked.
	Prefix netip.Prefix
	// LocalPref is the LOCAL_PREF attribute, sent to iBGP peers only; 0
	// means none (GoBGP then sends 100 to iBGP peers).
	LocalPref uint32
	// Communities are standard communities (RFC 1997).
	Communities []uint32
	// LargeCommunities are large communities (RFC 8092).
	LargeCommunities []LargeCommunity
}

// LargeCommunity is a BGP large community Global:Local1:Local2.
type LargeCommunity struct {
	Global, Local1, Local2 uint32
}

// String formats the community as global:local1:local2.
func (c LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2)
}

func compareLargeCommunities(a, b LargeCommunity) int {
	return cmp.Or(cmp.Compare(a.Global, b.Global), cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
}

// comparePrefixes orders prefixes by address (IPv4 first), then length.
func comparePrefixes(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// formatCommunity formats a standard community as asn:value.
func formatCommunity(c uint32) string {
	return fmt.Sprintf("%d:%d", c>>16, c&0xffff)
}

// routeAttrs are a route's attributes in canonical form (sorted, without
// duplicates), usable as a map key through key.
type routeAttrs struct {
	localPref        uint32
	communities      []uint32
	largeCommunities []LargeCommunity
}

// canonicalAttrs returns r's attributes sorted and without duplicates. The
// result may share r's slices when they are canonical already: clone it
// (routeAttrs.clone) before keeping it.
func canonicalAttrs(r Route) routeAttrs {
	cs := r.Communities
	if !strictlySorted(cs, func(a, b uint32) int { return int(int64(a) - int64(b)) }) {
		cs = slices.Compact(slices.Sorted(slices.Values(cs)))
	}
	lcs := r.LargeCommunities
	if !strictlySorted(lcs, compareLargeCommunities) {
		lcs = slices.Compact(slices.SortedFunc(slices.Values(lcs), compareLargeCommunities))
	}
	return routeAttrs{localPref: r.LocalPref, communities: cs, largeCommunities: lcs}
}

// clone returns a copy of a that shares no slice.
func (a routeAttrs) clone() routeAttrs {
	a.communities = slices.Clone(a.communities)
	a.largeCommunities = slices.Clone(a.largeCommunities)
	return a
}

// strictlySorted reports whether s is sorted by cmp without equal neighbours.
func strictlySorted[T any](s []T, cmp func(a, b T) int) bool {
	for i := 1; i < len(s); i++ {
		if cmp(s[i-1], s[i]) >= 0 {
			return false
		}
	}
	return true
}

// attrsKey is a comparable encoding of routeAttrs.
type attrsKey struct {
	localPref        uint32
	communities      string
	largeCommunities string
}

func (a routeAttrs) key() attrsKey {
	k := attrsKey{localPref: a.localPref}
	b := make([]byte, 0, 4*len(a.communities))
	for _, c := range a.communities {
		b = append(b, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
	}
	k.communities = string(b)
	b = make([]byte, 0, 12*len(a.largeCommunities))
	for _, c := range a.largeCommunities {
		for _, v := range []uint32{c.Global, c.Local1, c.Local2} {
			b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
	}
	k.largeCommunities = string(b)
	return k
}
