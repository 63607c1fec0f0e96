package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrUnknownAdvertisement is wrapped by RoutesByPeer's error when an
// announcement names an advertisement it was not given.
var ErrUnknownAdvertisement = errors.New("bgp: unknown advertisement")

// ErrInvalidAdvertisement is wrapped by RoutesByPeer's error when an
// advertisement's aggregation length is out of range.
var ErrInvalidAdvertisement = errors.New("bgp: invalid advertisement")

// Advertisement says how the addresses it selects are advertised: to which
// peers, as which prefixes, with which attributes. It mirrors
// config.BGPAdvertisement (see AdvertisementFromConfig).
type Advertisement struct {
	// Name identifies the advertisement in Announcement.Advertisements.
	Name string
	// AllPeers sends the routes to every peer; otherwise only to Peers.
	AllPeers bool
	// Peers are the names of the peers the routes go to.
	Peers []string
	// AggregationLength and AggregationLengthV6 are the prefix lengths an
	// IPv4 and an IPv6 address is advertised with: the covering prefix of
	// that length is advertised as soon as one address in it is. 0 means a
	// host route (/32, /128).
	AggregationLength, AggregationLengthV6 int
	// LocalPref is the local preference when HasLocalPref is set.
	LocalPref    uint32
	HasLocalPref bool
	// Communities and LargeCommunities are attached to the routes.
	Communities      []uint32
	LargeCommunities []LargeCommunity
}

// Announcement is an address the node announces over BGP, with the names of
// the advertisements that select it (its pool's advertisements that select
// this node).
type Announcement struct {
	Addr           netip.Addr
	Advertisements []string
}

// prefix returns the prefix addr is advertised as under a.
func (a Advertisement) prefix(addr netip.Addr) (netip.Prefix, error) {
	addr = addr.Unmap().WithZone("")
	bits := a.AggregationLength
	if addr.Is6() {
		bits = a.AggregationLengthV6
	}
	if bits == 0 {
		bits = addr.BitLen()
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q: aggregation length %d for %v", ErrInvalidAdvertisement, a.Name, bits, addr)
	}
	return p, nil
}

// RoutesByPeer returns the routes each of peers (names) is to get, sorted by
// prefix: every announced address as a host route, or as the covering prefix
// of its advertisement's aggregation length, to the peers the advertisement
// selects. Peers an advertisement names that are not in peers are ignored
// (they do not peer with this node); every name in peers is in the result,
// with no routes if nothing is advertised to it.
//
// When several advertisements give the same prefix to the same peer (two
// advertisements select the address's pool, or two addresses fall in one
// aggregate), the route is advertised once with merged attributes: the union
// of the communities, the union of the large communities, and the highest
// local preference among the advertisements that set one.
//
// It costs O(A·P + R log R) for A advertisement selections in anns, P peers
// and R resulting routes.
func RoutesByPeer(peers []string, ads []Advertisement, anns []Announcement) (map[string][]Route, error) {
	byName := make(map[string]*Advertisement, len(ads))
	for i := range ads {
		byName[ads[i].Name] = &ads[i]
	}
	type merged struct {
		localPref uint32
		comms     []uint32
		large     []LargeCommunity
	}
	perPeer := make(map[string]map[netip.Prefix]*merged, len(peers))
	for _, name := range peers {
		perPeer[name] = map[netip.Prefix]*merged{}
	}
	for _, ann := range anns {
		if !ann.Addr.IsValid() {
			return nil, fmt.Errorf("%w: announcement without an address", ErrInvalidAdvertisement)
		}
		for _, adName := range ann.Advertisements {
			ad, ok := byName[adName]
			if !ok {
				return nil, fmt.Errorf("%w %q (announcing %v)", ErrUnknownAdvertisement, adName, ann.Addr)
			}
			prefix, err := ad.prefix(ann.Addr)
			if err != nil {
				return nil, err
			}
			targets := ad.Peers
			if ad.AllPeers {
				targets = peers
			}
			for _, peer := range targets {
				routes, ok := perPeer[peer]
				if !ok {
					continue
				}
				m := routes[prefix]
				if m == nil {
					m = &merged{}
					routes[prefix] = m
				}
				if ad.HasLocalPref {
					m.localPref = max(m.localPref, ad.LocalPref)
				}
				m.comms = append(m.comms, ad.Communities...)
				m.large = append(m.large, ad.LargeCommunities...)
			}
		}
	}
	out := make(map[string][]Route, len(perPeer))
	for peer, routes := range perPeer {
		list := make([]Route, 0, len(routes))
		for prefix, m := range routes {
			r := Route{Prefix: prefix, LocalPref: m.localPref}
			if len(m.comms) > 0 {
				slices.Sort(m.comms)
				r.Communities = slices.Clip(slices.Compact(m.comms))
			}
			if len(m.large) > 0 {
				slices.SortFunc(m.large, compareLargeCommunities)
				r.LargeCommunities = slices.Clip(slices.Compact(m.large))
			}
			list = append(list, r)
		}
		slices.SortFunc(list, func(a, b Route) int { return comparePrefixes(a.Prefix, b.Prefix) })
		out[peer] = list
	}
	return out, nil
}
