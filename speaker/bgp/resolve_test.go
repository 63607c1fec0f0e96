package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestResolveDesired(t *testing.T) {
	addr := netip.MustParseAddr
	pfx := netip.MustParsePrefix
	v4peer := func(name, a string, routes ...Route) Peer {
		return Peer{Name: name, Address: addr(a), PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second, Routes: routes}
	}
	host4 := Route{Prefix: pfx("203.0.113.130/32")}
	host6 := Route{Prefix: pfx("2001:db8:200::5/128")}
	// The fake next-hop lookup knows 198.51.100.1 only.
	lookup := func(peer, source netip.Addr, v6 bool) (netip.Addr, error) {
		if peer == addr("198.51.100.1") && v6 {
			return addr("2001:db8:1::11"), nil
		}
		if peer == addr("2001:db8:1::1") && !v6 {
			return addr("198.51.100.11"), nil
		}
		return netip.Addr{}, fmt.Errorf("no route to %v", peer)
	}
	// The fake neighbour lookup finds a router on eth1 only.
	neighbor := func(ifname string) (netip.Addr, error) {
		if ifname == "eth1" {
			return addr("fe80::1%eth1"), nil
		}
		return netip.Addr{}, fmt.Errorf("%w: none on %s", ErrNoRouterNeighbor, ifname)
	}
	unnumbered := func(name, ifname string, routes ...Route) Peer {
		return Peer{Name: name, Interface: ifname, PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second, Routes: routes}
	}
	type resolved struct {
		Sessions []string
		Routes   map[string][]string // peer -> "prefix via nexthop"
		Problems map[string]string   // name -> "session"/"routes"
	}
	view := func(d desiredState, problems map[string]peerProblem) resolved {
		var r resolved
		for _, a := range sortedAddrs(d.sessions) {
			r.Sessions = append(r.Sessions, a.String())
		}
		for a, routes := range d.routes {
			if r.Routes == nil {
				r.Routes = map[string][]string{}
			}
			list := []string{}
			for _, rt := range routes {
				s := rt.prefix.String()
				if rt.nextHop.IsValid() {
					s += " via " + rt.nextHop.String()
				}
				if rt.attrs.localPref != 0 {
					s += fmt.Sprintf(" lp %d", rt.attrs.localPref)
				}
				for _, c := range rt.attrs.communities {
					s += " " + formatCommunity(c)
				}
				list = append(list, s)
			}
			r.Routes[a.String()] = list
		}
		for name, p := range problems {
			if r.Problems == nil {
				r.Problems = map[string]string{}
			}
			switch {
			case p.session != nil && errors.Is(p.session, ErrInvalidPeer):
				r.Problems[name] = "session"
			case p.session != nil:
				r.Problems[name] = "session (not ErrInvalidPeer!)"
			case p.routes != nil:
				r.Problems[name] = "routes"
			}
		}
		return r
	}
	tests := []struct {
		name      string
		peers     []Peer
		listening bool
		want      resolved
	}{
		{
			name:  "same-family routes keep GoBGP's next hop; IPv6 over IPv4 gets the interface's IPv6 address",
			peers: []Peer{v4peer("r1", "198.51.100.1", host4, host6)},
			want: resolved{
				Sessions: []string{"198.51.100.1"},
				Routes:   map[string][]string{"198.51.100.1": {"203.0.113.130/32", "2001:db8:200::5/128 via 2001:db8:1::11"}},
			},
		},
		{
			name: "IPv4 over an IPv6 session gets the interface's IPv4 address",
			peers: []Peer{{Name: "r6", Address: addr("2001:db8:1::1"), PeerASN: 1, MyASN: 2, HoldTime: 9 * time.Second,
				Routes: []Route{host4, host6}}},
			want: resolved{
				Sessions: []string{"2001:db8:1::1"},
				Routes:   map[string][]string{"2001:db8:1::1": {"203.0.113.130/32 via 198.51.100.11", "2001:db8:200::5/128"}},
			},
		},
		{
			name:  "no next hop found: the other family's routes are left out and reported",
			peers: []Peer{v4peer("r2", "198.51.100.2", host4, host6)},
			want: resolved{
				Sessions: []string{"198.51.100.2"},
				Routes:   map[string][]string{"198.51.100.2": {"203.0.113.130/32"}},
				Problems: map[string]string{"r2": "routes"},
			},
		},
		{
			name: "explicit next hops win",
			peers: []Peer{func() Peer {
				p := v4peer("r2", "198.51.100.2", host4, host6)
				p.NextHopV4, p.NextHopV6 = addr("198.51.100.99"), addr("2001:db8:1::99")
				return p
			}()},
			want: resolved{
				Sessions: []string{"198.51.100.2"},
				Routes:   map[string][]string{"198.51.100.2": {"203.0.113.130/32 via 198.51.100.99", "2001:db8:200::5/128 via 2001:db8:1::99"}},
			},
		},
		{
			name: "duplicate prefixes are merged; unmasked prefixes masked",
			peers: []Peer{v4peer("r1", "198.51.100.1",
				Route{Prefix: pfx("203.0.113.0/24"), LocalPref: 10, Communities: []uint32{2}},
				Route{Prefix: pfx("203.0.113.7/24"), LocalPref: 20, Communities: []uint32{1, 2}},
			)},
			want: resolved{
				Sessions: []string{"198.51.100.1"},
				Routes:   map[string][]string{"198.51.100.1": {"203.0.113.0/24 lp 20 0:1 0:2"}},
			},
		},
		{
			name: "an invalid peer is left out, the others stay",
			peers: []Peer{
				v4peer("good", "198.51.100.1", host4),
				{Name: "bad", Address: addr("198.51.100.2"), PeerASN: 1, MyASN: 2}, // hold time 0
			},
			want: resolved{
				Sessions: []string{"198.51.100.1"},
				Routes:   map[string][]string{"198.51.100.1": {"203.0.113.130/32"}},
				Problems: map[string]string{"bad": "session"},
			},
		},
		{
			name:  "the second peer (by name) with an address already used is rejected",
			peers: []Peer{v4peer("z", "198.51.100.1"), v4peer("a", "198.51.100.1", host4)},
			want: resolved{
				Sessions: []string{"198.51.100.1"},
				Routes:   map[string][]string{"198.51.100.1": {"203.0.113.130/32"}},
				Problems: map[string]string{"z": "session"},
			},
		},
		{
			name:  "passive peers need a listening speaker",
			peers: []Peer{func() Peer { p := v4peer("p", "198.51.100.1"); p.Passive = true; return p }()},
			want:  resolved{Problems: map[string]string{"p": "session"}},
		},
		{
			name:      "passive peers with a listening speaker",
			listening: true,
			peers:     []Peer{func() Peer { p := v4peer("p", "198.51.100.1"); p.Passive = true; return p }()},
			want:      resolved{Sessions: []string{"198.51.100.1"}, Routes: map[string][]string{"198.51.100.1": {}}},
		},
		{
			name:  "unnumbered: both families keep GoBGP's next hop, the interface's link-local address (RFC 5549)",
			peers: []Peer{unnumbered("u", "eth1", host4, host6)},
			want: resolved{
				Sessions: []string{"fe80::1%eth1"},
				Routes:   map[string][]string{"fe80::1%eth1": {"203.0.113.130/32", "2001:db8:200::5/128"}},
			},
		},
		{
			name: "unnumbered with an explicit IPv4 next hop",
			peers: []Peer{func() Peer {
				p := unnumbered("u", "eth1", host4)
				p.NextHopV4 = addr("198.51.100.99")
				return p
			}()},
			want: resolved{
				Sessions: []string{"fe80::1%eth1"},
				Routes:   map[string][]string{"fe80::1%eth1": {"203.0.113.130/32 via 198.51.100.99"}},
			},
		},
		{
			name:  "unnumbered without a router on the interface: no session, the others stay",
			peers: []Peer{unnumbered("u", "eth2", host4), v4peer("r1", "198.51.100.1", host4)},
			want: resolved{
				Sessions: []string{"198.51.100.1"},
				Routes:   map[string][]string{"198.51.100.1": {"203.0.113.130/32"}},
				Problems: map[string]string{"u": "session"},
			},
		},
		{
			name:  "two unnumbered peers on one interface: the second by name is rejected",
			peers: []Peer{unnumbered("v", "eth1"), unnumbered("u", "eth1", host4)},
			want: resolved{
				Sessions: []string{"fe80::1%eth1"},
				Routes:   map[string][]string{"fe80::1%eth1": {"203.0.113.130/32"}},
				Problems: map[string]string{"v": "session"},
			},
		},
		{
			name: "unnumbered with BFD is refused",
			peers: []Peer{func() Peer {
				p := unnumbered("u", "eth1", host4)
				p.BFD.Enabled = true
				return p
			}()},
			want: resolved{Problems: map[string]string{"u": "session"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peers, unresolved := resolveInterfaces(tt.peers, neighbor)
			d, problems := resolveDesired(Desired{Peers: peers}, tt.listening, lookup, unresolved)
			if diff := cmp.Diff(tt.want, view(d, problems)); diff != "" {
				t.Errorf("resolveDesired (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPickNextHop(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name  string
		addrs []netip.Addr
		v6    bool
		want  netip.Addr
		ok    bool
	}{
		{"first IPv6 global address, link-local skipped", addrs("198.51.100.11", "fe80::1", "2001:db8:1::11", "2001:db8:1::12"), true, netip.MustParseAddr("2001:db8:1::11"), true},
		{"unique local counts", addrs("fd12::1"), true, netip.MustParseAddr("fd12::1"), true},
		{"IPv4", addrs("fe80::1", "198.51.100.11"), false, netip.MustParseAddr("198.51.100.11"), true},
		{"loopback only", addrs("127.0.0.1", "::1"), true, netip.Addr{}, false},
		{"none of the family", addrs("198.51.100.11"), true, netip.Addr{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pickNextHop(tt.addrs, tt.v6)
			if got != tt.want || ok != tt.ok {
				t.Errorf("pickNextHop = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPickRouterNeighbor(t *testing.T) {
	addr := netip.MustParseAddr
	own := []netip.Addr{addr("fe80::11"), addr("198.51.100.11")}
	tests := []struct {
		name      string
		neighbors []neighborEntry
		want      netip.Addr
		wantErr   string // substring; "" for none
	}{
		{"the one router", []neighborEntry{{addr: addr("fe80::1"), router: true}}, addr("fe80::1%eth1"), ""},
		{"hosts on a shared link are not routers", []neighborEntry{
			{addr: addr("fe80::12")}, {addr: addr("fe80::1"), router: true}, {addr: addr("fe80::13")}}, addr("fe80::1%eth1"), ""},
		{"a global address of the router does not count twice", []neighborEntry{
			{addr: addr("2001:db8:1::1"), router: true}, {addr: addr("fe80::1"), router: true}}, addr("fe80::1%eth1"), ""},
		{"the same router twice", []neighborEntry{{addr: addr("fe80::1"), router: true}, {addr: addr("fe80::1"), router: true}}, addr("fe80::1%eth1"), ""},
		{"a failed router is gone", []neighborEntry{{addr: addr("fe80::1"), router: true, failed: true}}, netip.Addr{}, "no IPv6 link-local neighbour that is a router"},
		{"no router", []neighborEntry{{addr: addr("fe80::12")}}, netip.Addr{}, "no IPv6 link-local neighbour that is a router"},
		{"the node's own address", []neighborEntry{{addr: addr("fe80::11"), router: true}}, netip.Addr{}, "no IPv6 link-local"},
		{"two routers", []neighborEntry{{addr: addr("fe80::2"), router: true}, {addr: addr("fe80::1"), router: true}}, netip.Addr{},
			"has 2 routers ([fe80::1 fe80::2]): unnumbered peering needs a link with one router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickRouterNeighbor("eth1", tt.neighbors, own)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("pickRouterNeighbor = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrNoRouterNeighbor) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("pickRouterNeighbor = %v, %v; want an ErrNoRouterNeighbor containing %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestResolveInterfacesAsksOncePerInterface(t *testing.T) {
	calls := map[string]int{}
	neighbor := func(ifname string) (netip.Addr, error) {
		calls[ifname]++
		return netip.MustParseAddr("fe80::1%" + ifname), nil
	}
	peers := []Peer{{Name: "a", Interface: "eth1"}, {Name: "b", Interface: "eth1"}, {Name: "c", Address: netip.MustParseAddr("198.51.100.1")}}
	got, errs := resolveInterfaces(peers, neighbor)
	if len(errs) != 0 || got[0].Address.String() != "fe80::1%eth1" || got[1].Address != got[0].Address || got[2].Address != peers[2].Address {
		t.Errorf("resolveInterfaces = %+v, %v", got, errs)
	}
	if peers[0].Address.IsValid() {
		t.Errorf("resolveInterfaces changed its input")
	}
	if diff := cmp.Diff(map[string]int{"eth1": 1}, calls); diff != "" {
		t.Errorf("neighbour lookups (-want +got):\n%s", diff)
	}
}
