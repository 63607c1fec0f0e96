package bgp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/herald-dev/herald/config"
)

func validPeer() Peer {
	return Peer{Name: "r1", Address: netip.MustParseAddr("198.51.100.1"), PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second}
}

func TestPeerValidate(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*Peer)
		listening bool
		wantErr   string // substring; "" for valid
	}{
		{"valid eBGP", func(*Peer) {}, false, ""},
		{"valid iBGP with everything", func(p *Peer) {
			p.MyASN = p.PeerASN
			p.Password, p.Port, p.KeepaliveTime = "s3cret", 1179, 30*time.Second
			p.SourceAddress = netip.MustParseAddr("198.51.100.11")
			p.BFD = BFD{Enabled: true, MinRx: 100 * time.Millisecond}
			p.GracefulRestart = GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}
		}, false, ""},
		{"invalid address", func(p *Peer) { p.Address = netip.Addr{} }, false, "not a unicast address"},
		{"unspecified address", func(p *Peer) { p.Address = netip.IPv4Unspecified() }, false, "not a unicast address"},
		{"zoned address", func(p *Peer) { p.Address = netip.MustParseAddr("fe80::1%eth0") }, false, "zone"},
		{"unnumbered, resolved", func(p *Peer) { p.Interface, p.Address = "eth0", netip.MustParseAddr("fe80::1%eth0") }, false, ""},
		{"unnumbered, not resolved", func(p *Peer) { p.Interface, p.Address = "eth0", netip.Addr{} }, false, "no IPv6 link-local router address"},
		{"unnumbered, zone of another interface", func(p *Peer) { p.Interface, p.Address = "eth0", netip.MustParseAddr("fe80::1%eth1") }, false, "no IPv6 link-local router address"},
		{"unnumbered with a source address", func(p *Peer) {
			p.Interface, p.Address, p.SourceAddress = "eth0", netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::2")
		}, false, "cannot have a source address"},
		{"unnumbered multihop", func(p *Peer) { p.Interface, p.Address, p.EBGPMultihop = "eth0", netip.MustParseAddr("fe80::1%eth0"), 2 }, false, "cannot be multihop"},
		{"unnumbered with BFD", func(p *Peer) {
			p.Interface, p.Address, p.BFD.Enabled = "eth0", netip.MustParseAddr("fe80::1%eth0"), true
		}, false, "BFD is not supported"},
		{"AS 0", func(p *Peer) { p.MyASN = 0 }, false, "AS numbers"},
		{"hold time 0", func(p *Peer) { p.HoldTime = 0 }, false, "hold time 0"},
		{"hold time 2s", func(p *Peer) { p.HoldTime = 2 * time.Second }, false, "hold time 2s"},
		{"hold time not whole seconds", func(p *Peer) { p.HoldTime = 3500 * time.Millisecond }, false, "whole seconds"},
		{"keepalive not below hold", func(p *Peer) { p.KeepaliveTime = p.HoldTime }, false, "keepalive"},
		{"password too long", func(p *Peer) { p.Password = strings.Repeat("x", 81) }, false, "longer than 80"},
		{"multihop on iBGP", func(p *Peer) { p.MyASN = p.PeerASN; p.EBGPMultihop = 5 }, false, "multihop"},
		{"source of the other family", func(p *Peer) { p.SourceAddress = netip.MustParseAddr("2001:db8::1") }, false, "different families"},
		{"passive without listening", func(p *Peer) { p.Passive = true }, false, "does not listen"},
		{"passive with listening", func(p *Peer) { p.Passive = true }, true, ""},
		{"BFD over multihop", func(p *Peer) { p.EBGPMultihop = 2; p.BFD.Enabled = true }, false, "multihop BFD"},
		{"restart time too long", func(p *Peer) { p.GracefulRestart = GracefulRestart{Enabled: true, RestartTime: 4096 * time.Second} }, false, "graceful restart time"},
		{"IPv4 next hop of the wrong family", func(p *Peer) { p.NextHopV4 = netip.MustParseAddr("2001:db8::1") }, false, "IPv4 next hop"},
		{"IPv6 next hop of the wrong family", func(p *Peer) { p.NextHopV6 = netip.MustParseAddr("198.51.100.1") }, false, "IPv6 next hop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPeer()
			tt.edit(&p)
			err := p.validate(tt.listening)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPeer) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate = %v, want ErrInvalidPeer mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestAPIPeer(t *testing.T) {
	families := func(gr bool) []*api.AfiSafi {
		var out []*api.AfiSafi
		for _, f := range []*api.Family{familyIPv4, familyIPv6} {
			a := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
			if gr {
				a.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
			}
			out = append(out, a)
		}
		return out
	}
	timers := func(hold, keepalive uint64) *api.Timers {
		return &api.Timers{Config: &api.TimersConfig{HoldTime: hold, KeepaliveInterval: keepalive, ConnectRetry: 5, IdleHoldTimeAfterReset: 5}}
	}
	tests := []struct {
		name string
		peer Peer
		want *api.Peer
	}{
		{
			name: "defaults: port 179, keepalive a third of the hold time",
			peer: validPeer(),
			want: &api.Peer{
				Conf:      &api.PeerConf{NeighborAddress: "198.51.100.1", PeerAsn: 64512, LocalAsn: 64513},
				Timers:    timers(90, 30),
				Transport: &api.Transport{RemotePort: 179},
				AfiSafis:  families(false),
			},
		},
		{
			name: "everything set",
			peer: func() Peer {
				p := validPeer()
				p.Port, p.Password, p.HoldTime, p.KeepaliveTime = 1179, "s3cret", 9*time.Second, 2*time.Second
				p.EBGPMultihop = 4
				p.SourceAddress = netip.MustParseAddr("198.51.100.11")
				p.BFD = BFD{Enabled: true, MinTx: 100 * time.Millisecond}
				p.GracefulRestart = GracefulRestart{Enabled: true}
				return p
			}(),
			want: &api.Peer{
				Conf:         &api.PeerConf{NeighborAddress: "198.51.100.1", PeerAsn: 64512, LocalAsn: 64513, AuthPassword: "s3cret"},
				Timers:       timers(9, 2),
				Transport:    &api.Transport{RemotePort: 1179, LocalAddress: "198.51.100.11"},
				EbgpMultihop: &api.EbgpMultihop{Enabled: true, MultihopTtl: 4},
				AfiSafis:     families(true),
				GracefulRestart: &api.GracefulRestart{
					Enabled: true, RestartTime: 120, DeferralTime: 1, LocalRestarting: true,
				},
				Bfd: &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: 100000, RequiredMinimumReceive: 300000, DetectionMultiplier: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, apiPeer(tt.peer.session()), protocmp.Transform()); diff != "" {
				t.Errorf("apiPeer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGroupPolicy(t *testing.T) {
	g := group{
		id: 7, peer: netip.MustParseAddr("198.51.100.1"), nextHop: netip.MustParseAddr("2001:db8:1::11"),
		attrs: routeAttrs{localPref: 150, communities: []uint32{64512<<16 | 100}, largeCommunities: []LargeCommunity{{64512, 1, 2}}},
	}
	want := &api.Policy{Name: "herald-group-7", Statements: []*api.Statement{{
		Name: "herald-group-7",
		Conditions: &api.Conditions{
			NeighborSet:  &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: "herald-peer-198.51.100.1"},
			CommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: "herald-group-7"},
		},
		Actions: &api.Actions{
			RouteAction:    api.RouteAction_ROUTE_ACTION_ACCEPT,
			Community:      &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE, Communities: []string{"64512:100"}},
			LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE, Communities: []string{"64512:1:2"}},
			LocalPref:      &api.LocalPrefAction{Value: 150},
			Nexthop:        &api.NexthopAction{Address: "2001:db8:1::11"},
		},
	}}}
	if diff := cmp.Diff(want, groupPolicy(g), protocmp.Transform()); diff != "" {
		t.Errorf("groupPolicy (-want +got):\n%s", diff)
	}
	wantSet := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_COMMUNITY, Name: "herald-group-7", List: []string{"^65534:7$"}}
	if diff := cmp.Diff(wantSet, tagSet(g), protocmp.Transform()); diff != "" {
		t.Errorf("tagSet (-want +got):\n%s", diff)
	}
	// A group without attributes still replaces (drops) the tags.
	plain := groupPolicy(group{id: 1, peer: g.peer})
	if c := plain.Statements[0].Actions.Community; c == nil || c.Type != api.CommunityAction_TYPE_REPLACE || len(c.Communities) != 0 {
		t.Errorf("plain group's community action = %v, want REPLACE with nothing", c)
	}
}

func TestFromConfig(t *testing.T) {
	cp := config.BGPPeer{
		Name: "r1", Address: netip.MustParseAddr("198.51.100.1"), Port: 179, PeerASN: 64512, MyASN: 64513,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, Password: "pw", EBGPMultihop: true,
		SourceAddress:   netip.MustParseAddr("198.51.100.11"),
		BFD:             config.BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 200 * time.Millisecond, Multiplier: 3},
		GracefulRestart: config.GracefulRestart{Enabled: true, RestartTime: 60 * time.Second},
	}
	wantPeer := Peer{
		Name: "r1", Address: cp.Address, Port: 179, PeerASN: 64512, MyASN: 64513,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, Password: "pw", EBGPMultihop: 255,
		SourceAddress:   cp.SourceAddress,
		BFD:             BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 200 * time.Millisecond, Multiplier: 3},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second},
	}
	if diff := cmp.Diff(wantPeer, PeerFromConfig(cp), cmpAddrs); diff != "" {
		t.Errorf("PeerFromConfig (-want +got):\n%s", diff)
	}
	un := config.BGPPeer{Name: "u", Interface: "eth1", Port: 179, PeerASN: 64512, MyASN: 64513, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second}
	wantUn := Peer{Name: "u", Interface: "eth1", Port: 179, PeerASN: 64512, MyASN: 64513, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second}
	if diff := cmp.Diff(wantUn, PeerFromConfig(un), cmpAddrs); diff != "" {
		t.Errorf("PeerFromConfig of an unnumbered peer (-want +got):\n%s", diff)
	}
	ca := config.BGPAdvertisement{
		Name: "ad", Pools: []string{"p"}, Peers: []string{"r1"}, AggregationLength: 24, AggregationLengthV6: 64,
		LocalPref: 50, HasLocalPref: true, Communities: []uint32{1},
		LargeCommunities: []config.LargeCommunity{{Global: 1, Local1: 2, Local2: 3}},
	}
	wantAd := Advertisement{
		Name: "ad", Peers: []string{"r1"}, AggregationLength: 24, AggregationLengthV6: 64,
		LocalPref: 50, HasLocalPref: true, Communities: []uint32{1}, LargeCommunities: []LargeCommunity{{1, 2, 3}},
	}
	if diff := cmp.Diff(wantAd, AdvertisementFromConfig(ca)); diff != "" {
		t.Errorf("AdvertisementFromConfig (-want +got):\n%s", diff)
	}
}

func TestRouterIDFor(t *testing.T) {
	addr := netip.MustParseAddr
	if got := RouterIDFor("n1", []netip.Addr{addr("2001:db8::1"), addr("127.0.0.1"), addr("198.51.100.11")}); got != addr("198.51.100.11") {
		t.Errorf("RouterIDFor with an IPv4 address = %v", got)
	}
	a, b := RouterIDFor("node-a", []netip.Addr{addr("2001:db8::1")}), RouterIDFor("node-b", nil)
	if !a.Is4() || a.As4()[0]&0xF0 != 0xF0 || a == b || a != RouterIDFor("node-a", nil) {
		t.Errorf("RouterIDFor IPv6-only nodes = %v, %v: want distinct, stable ids in 240.0.0.0/4", a, b)
	}
}

func TestDesiredFromModel(t *testing.T) {
	addr := netip.MustParseAddr
	peers := []config.BGPPeer{
		{Name: "r1", Address: addr("198.51.100.1"), PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second},
		{Name: "r2", Address: addr("198.51.100.4"), PeerASN: 64513, MyASN: 64513, HoldTime: 90 * time.Second},
	}
	all := config.BGPAdvertisement{Name: "all", AllPeers: true, AggregationLength: 32, AggregationLengthV6: 128}
	r2 := config.BGPAdvertisement{Name: "r2-pref", Peers: []string{"r2"}, AggregationLength: 32, AggregationLengthV6: 128,
		LocalPref: 300, HasLocalPref: true, Communities: []uint32{7}}
	got, err := DesiredFromModel(peers, map[netip.Addr][]config.BGPAdvertisement{
		addr("203.0.113.2"): {all, r2},
		addr("203.0.113.1"): {all},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Desired{Peers: []Peer{
		{Name: "r1", Address: addr("198.51.100.1"), PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second,
			Routes: []Route{{Prefix: netip.MustParsePrefix("203.0.113.1/32")}, {Prefix: netip.MustParsePrefix("203.0.113.2/32")}}},
		{Name: "r2", Address: addr("198.51.100.4"), PeerASN: 64513, MyASN: 64513, HoldTime: 90 * time.Second,
			Routes: []Route{{Prefix: netip.MustParsePrefix("203.0.113.1/32")}, {Prefix: netip.MustParsePrefix("203.0.113.2/32"), LocalPref: 300, Communities: []uint32{7}}}},
	}}
	if diff := cmp.Diff(want, got, cmpAddrs, cmpPrefixes); diff != "" {
		t.Errorf("DesiredFromModel (-want +got):\n%s", diff)
	}
}

// TestUnnumberedGoBGPConfig: an unnumbered session is a GoBGP neighbour at
// the router's zoned link-local address, and its neighbour set matches the
// address without the zone, as GoBGP compares it.
func TestUnnumberedGoBGPConfig(t *testing.T) {
	p := validPeer()
	p.Interface, p.Address = "eth1", netip.MustParseAddr("fe80::1%eth1")
	got := apiPeer(p.session())
	if got.Conf.NeighborAddress != "fe80::1%eth1" || got.Conf.NeighborInterface != "" || got.Transport.LocalAddress != "" || got.EbgpMultihop != nil {
		t.Errorf("apiPeer = %+v, want neighbour fe80::1%%eth1 and no interface, local address or multihop", got)
	}
	if set := neighborSet(p.Address); len(set.List) != 1 || set.List[0] != "fe80::1/128" {
		t.Errorf("neighborSet(%v).List = %v, want [fe80::1/128]", p.Address, set.List)
	}
}
