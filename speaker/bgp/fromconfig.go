package bgp

import (
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
		Name: p.Name, Address: p.Address, Port: p.Port,
		PeerASN: p.PeerASN, MyASN: p.MyASN,
		HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime,
		Password: p.Password, SourceAddress: p.SourceAddress,
		BFD: BFD{
			Enabled: p.BFD.Enabled, MinRx: p.BFD.MinRx, MinTx: p.BFD.MinTx, Multiplier: p.BFD.Multiplier,
		},
		GracefulRestart: GracefulRestart{Enabled: p.GracefulRestart.Enabled, RestartTime: p.GracefulRestart.RestartTime},
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
