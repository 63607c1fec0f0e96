package bgp

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/herald-dev/herald/config"
)

// multihopTTL is the TTL of an eBGP multihop session: BGPPeer's ebgpMultihop
// is a switch, so the router may be any number of hops away.
const multihopTTL = 255

// PeerFromConfig translates a validated BGPPeer into a Peer without routes.
// A hold time of 0 (no keepalives) is kept, and Set reports it as a
// configuration error: GoBGP v4.8.0 cannot honour it.
func PeerFromConfig(p config.BGPPeer) Peer {
	out := Peer{
		Name: p.Name, Address: p.Address, Interface: p.Interface, Port: p.Port,
		PeerASN: p.PeerASN, MyASN: p.MyASN,
		HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime,
		Password: p.Password, SourceAddress: p.SourceAddress,
		BFD: p.BFD, GracefulRestart: p.GracefulRestart,
	}
	if p.EBGPMultihop {
		out.EBGPMultihop = multihopTTL
	}
	return out
}

// AdvertisementFromConfig translates a validated BGPAdvertisement.
func AdvertisementFromConfig(a config.BGPAdvertisement) Advertisement {
	out := Advertisement{
		Name: a.Name, AllPeers: a.AllPeers, Peers: a.Peers,
		AggregationLength: a.AggregationLength, AggregationLengthV6: a.AggregationLengthV6,
		LocalPref: a.LocalPref, HasLocalPref: a.HasLocalPref,
		Communities: a.Communities,
	}
	for _, c := range a.LargeCommunities {
		out.LargeCommunities = append(out.LargeCommunities, LargeCommunity{Global: c.Global, Local1: c.Local1, Local2: c.Local2})
	}
	return out
}

// DesiredFromModel builds a node's whole desired state from the model: the
// BGPPeers selecting the node, and for each address the node advertises the
// BGPAdvertisements that select it (its pool's advertisements for this node).
// Advertisements are identified by name. See RoutesByPeer for how routes are
// computed and merged.
func DesiredFromModel(peers []config.BGPPeer, addrs map[netip.Addr][]config.BGPAdvertisement) (Desired, error) {
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p.Name
	}
	seen := map[string]bool{}
	var ads []Advertisement
	anns := make([]Announcement, 0, len(addrs))
	for _, addr := range slices.SortedFunc(maps.Keys(addrs), netip.Addr.Compare) {
		ann := Announcement{Addr: addr}
		for _, a := range addrs[addr] {
			ann.Advertisements = append(ann.Advertisements, a.Name)
			if !seen[a.Name] {
				seen[a.Name] = true
				ads = append(ads, AdvertisementFromConfig(a))
			}
		}
		anns = append(anns, ann)
	}
	routes, err := RoutesByPeer(names, ads, anns)
	if err != nil {
		return Desired{}, err
	}
	d := Desired{Peers: make([]Peer, len(peers))}
	for i, p := range peers {
		d.Peers[i] = PeerFromConfig(p)
		d.Peers[i].Routes = routes[p.Name]
	}
	return d, nil
}
