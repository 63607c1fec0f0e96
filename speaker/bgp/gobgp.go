package bgp

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Session timers the Peer does not expose.
const (
	// connectRetry is the time between connection attempts (GoBGP's default
	// is 120 s, far too long for a router that comes back).
	connectRetry = 5 * time.Second
	// idleHoldAfterReset is how long a session waits after an administrative
	// reset, such as the one a BFD failure triggers, before reconnecting
	// (GoBGP's default is 30 s).
	idleHoldAfterReset = 5 * time.Second
	// grDeferral bounds how long, after the speaker starts, a graceful
	// restart session waits for the router's End-of-RIB before sending its
	// routes (GoBGP's default is 360 s). The speaker learns no routes, so it
	// has nothing to wait for beyond what RFC 4724 asks.
	grDeferral = time.Second
)

// Names of the GoBGP policy objects the Speaker creates.
func neighborSetName(peer netip.Addr) string { return "herald-peer-" + peer.String() }
func groupName(id uint16) string             { return "herald-group-" + strconv.Itoa(int(id)) }

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// apiPeer translates a session into GoBGP's neighbour configuration. Both
// unicast families are enabled on every session: a router that does not
// activate one simply does not negotiate it.
func apiPeer(s sessionConfig) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: s.Address.String(),
			PeerAsn:         s.PeerASN,
			LocalAsn:        s.MyASN,
			AuthPassword:    s.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:               uint64(s.HoldTime / time.Second),
			KeepaliveInterval:      uint64(s.KeepaliveTime / time.Second),
			ConnectRetry:           uint64(connectRetry / time.Second),
			IdleHoldTimeAfterReset: uint64(idleHoldAfterReset / time.Second),
		}},
		Transport: &api.Transport{
			RemotePort:  uint32(s.Port),
			PassiveMode: s.Passive,
		},
	}
	if s.SourceAddress.IsValid() {
		p.Transport.LocalAddress = s.SourceAddress.String()
	}
	if s.EBGPMultihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(s.EBGPMultihop)}
	}
	for _, f := range []*api.Family{familyIPv4, familyIPv6} {
		a := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if s.GracefulRestart.Enabled {
			a.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, a)
	}
	if s.GracefulRestart.Enabled {
		// LocalRestarting sets the Restart and Forwarding State bits of the
		// capability: the router keeps the stale routes of the previous
		// session (instead of flushing them when the new OPEN arrives) until
		// this session's End-of-RIB.
		p.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(s.GracefulRestart.RestartTime / time.Second),
			DeferralTime:    uint32(grDeferral / time.Second),
			LocalRestarting: true,
		}
	}
	if s.BFD.Enabled {
		p.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(s.BFD.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(s.BFD.MinRx / time.Microsecond),
			DetectionMultiplier:      uint32(s.BFD.Multiplier),
		}
	}
	return p
}

// apiPath builds the global RIB path of a prefix: origin IGP, an unspecified
// next hop (each export sets the real one) and the tag communities of its
// groups.
func apiPath(spec pathSpec) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(spec.prefix)
	if err != nil {
		return nil, fmt.Errorf("bgp: prefix %v: %w", spec.prefix, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgp.RF_IPv4_UC
	if spec.prefix.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, fmt.Errorf("bgp: next hop of %v: %w", spec.prefix, err)
		}
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, fmt.Errorf("bgp: next hop of %v: %w", spec.prefix, err)
		}
		attrs = append(attrs, mp)
	}
	if len(spec.tags) > 0 {
		tags := make([]uint32, len(spec.tags))
		for i, t := range spec.tags {
			tags[i] = tagCommunity(t)
		}
		attrs = append(attrs, bgp.NewPathAttributeCommunities(tags))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}

// neighborSet is the defined set matching one peer.
func neighborSet(peer netip.Addr) *api.DefinedSet {
	return &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
		Name:        neighborSetName(peer),
		// GoBGP matches the set against the peer's address without its
		// zone (an unnumbered peer's is zoned).
		List: []string{netip.PrefixFrom(peer.WithZone(""), peer.BitLen()).String()},
	}
}

// tagSet is the defined set matching group g's tag.
func tagSet(g group) *api.DefinedSet {
	t := tagCommunity(g.id)
	return &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_COMMUNITY,
		Name:        groupName(g.id),
		List:        []string{"^" + formatCommunity(t) + "$"},
	}
}

// groupPolicy is the export policy of group g: paths tagged for the group,
// exported to the group's peer, are accepted with the group's attributes.
// The REPLACE actions drop the tags.
func groupPolicy(g group) *api.Policy {
	actions := &api.Actions{
		RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		Community:   &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE},
	}
	for _, c := range g.attrs.communities {
		actions.Community.Communities = append(actions.Community.Communities, formatCommunity(c))
	}
	if len(g.attrs.largeCommunities) > 0 {
		actions.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
		for _, c := range g.attrs.largeCommunities {
			actions.LargeCommunity.Communities = append(actions.LargeCommunity.Communities, c.String())
		}
	}
	if g.attrs.localPref != 0 {
		actions.LocalPref = &api.LocalPrefAction{Value: g.attrs.localPref}
	}
	if g.nextHop.IsValid() {
		actions.Nexthop = &api.NexthopAction{Address: g.nextHop.String()}
	}
	name := groupName(g.id)
	return &api.Policy{
		Name: name,
		Statements: []*api.Statement{{
			Name: name,
			Conditions: &api.Conditions{
				NeighborSet:  &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: neighborSetName(g.peer)},
				CommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: name},
			},
			Actions: actions,
		}},
	}
}
