package bgp

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var cmpAddrs = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
var cmpPrefixes = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

func TestRoutesByPeer(t *testing.T) {
	addr := netip.MustParseAddr
	pfx := netip.MustParsePrefix
	lc := LargeCommunity{Global: 64512, Local1: 1, Local2: 2}
	tests := []struct {
		name    string
		peers   []string
		ads     []Advertisement
		anns    []Announcement
		want    map[string][]Route
		wantErr error
	}{
		{
			name:  "host routes to every peer by default, sorted, IPv4 first",
			peers: []string{"r1", "r2"},
			ads:   []Advertisement{{Name: "all", AllPeers: true}},
			anns: []Announcement{
				{Addr: addr("2001:db8:200::5"), Advertisements: []string{"all"}},
				{Addr: addr("203.0.113.131"), Advertisements: []string{"all"}},
				{Addr: addr("203.0.113.130"), Advertisements: []string{"all"}},
			},
			want: map[string][]Route{
				"r1": {{Prefix: pfx("203.0.113.130/32")}, {Prefix: pfx("203.0.113.131/32")}, {Prefix: pfx("2001:db8:200::5/128")}},
				"r2": {{Prefix: pfx("203.0.113.130/32")}, {Prefix: pfx("203.0.113.131/32")}, {Prefix: pfx("2001:db8:200::5/128")}},
			},
		},
		{
			name:  "aggregation: addresses in one aggregate give one prefix per family",
			peers: []string{"r1"},
			ads:   []Advertisement{{Name: "agg", AllPeers: true, AggregationLength: 24, AggregationLengthV6: 64}},
			anns: []Announcement{
				{Addr: addr("203.0.113.130"), Advertisements: []string{"agg"}},
				{Addr: addr("203.0.113.200"), Advertisements: []string{"agg"}},
				{Addr: addr("2001:db8:200::5"), Advertisements: []string{"agg"}},
				{Addr: addr("2001:db8:200::6"), Advertisements: []string{"agg"}},
			},
			want: map[string][]Route{"r1": {{Prefix: pfx("203.0.113.0/24")}, {Prefix: pfx("2001:db8:200::/64")}}},
		},
		{
			name:  "explicit host lengths equal the default",
			peers: []string{"r1"},
			ads:   []Advertisement{{Name: "host", AllPeers: true, AggregationLength: 32, AggregationLengthV6: 128}},
			anns:  []Announcement{{Addr: addr("203.0.113.130"), Advertisements: []string{"host"}}},
			want:  map[string][]Route{"r1": {{Prefix: pfx("203.0.113.130/32")}}},
		},
		{
			name:  "named peers only; peers not on this node ignored; peers without routes present",
			peers: []string{"r1", "r2", "r3"},
			ads:   []Advertisement{{Name: "some", Peers: []string{"r2", "elsewhere"}}},
			anns:  []Announcement{{Addr: addr("203.0.113.130"), Advertisements: []string{"some"}}},
			want:  map[string][]Route{"r1": {}, "r2": {{Prefix: pfx("203.0.113.130/32")}}, "r3": {}},
		},
		{
			name:  "merge: union of communities and large communities, highest local preference",
			peers: []string{"r1"},
			ads: []Advertisement{
				{Name: "a", AllPeers: true, LocalPref: 50, HasLocalPref: true, Communities: []uint32{64512<<16 | 2, 64512<<16 | 1}},
				{Name: "b", AllPeers: true, LocalPref: 200, HasLocalPref: true, Communities: []uint32{64512<<16 | 1}, LargeCommunities: []LargeCommunity{lc}},
				{Name: "c", AllPeers: true, Communities: []uint32{64512<<16 | 3}},
			},
			anns: []Announcement{{Addr: addr("203.0.113.130"), Advertisements: []string{"a", "b", "c"}}},
			want: map[string][]Route{"r1": {{
				Prefix: pfx("203.0.113.130/32"), LocalPref: 200,
				Communities:      []uint32{64512<<16 | 1, 64512<<16 | 2, 64512<<16 | 3},
				LargeCommunities: []LargeCommunity{lc},
			}}},
		},
		{
			name:  "merge: two addresses of one aggregate under different advertisements",
			peers: []string{"r1"},
			ads: []Advertisement{
				{Name: "a", AllPeers: true, AggregationLength: 24, Communities: []uint32{1}},
				{Name: "b", AllPeers: true, AggregationLength: 24, Communities: []uint32{2}},
			},
			anns: []Announcement{
				{Addr: addr("203.0.113.1"), Advertisements: []string{"a"}},
				{Addr: addr("203.0.113.2"), Advertisements: []string{"b"}},
			},
			want: map[string][]Route{"r1": {{Prefix: pfx("203.0.113.0/24"), Communities: []uint32{1, 2}}}},
		},
		{
			name:  "local preference only from advertisements that set one",
			peers: []string{"r1"},
			ads: []Advertisement{
				{Name: "none", AllPeers: true},
				{Name: "some", AllPeers: true, LocalPref: 10, HasLocalPref: true},
			},
			anns: []Announcement{{Addr: addr("203.0.113.1"), Advertisements: []string{"none", "some"}}},
			want: map[string][]Route{"r1": {{Prefix: pfx("203.0.113.1/32"), LocalPref: 10}}},
		},
		{
			name:  "IPv4-mapped IPv6 addresses are advertised as IPv4",
			peers: []string{"r1"},
			ads:   []Advertisement{{Name: "all", AllPeers: true}},
			anns:  []Announcement{{Addr: addr("::ffff:203.0.113.7"), Advertisements: []string{"all"}}},
			want:  map[string][]Route{"r1": {{Prefix: pfx("203.0.113.7/32")}}},
		},
		{
			name:  "an address selected by no advertisement is not advertised",
			peers: []string{"r1"},
			ads:   []Advertisement{{Name: "all", AllPeers: true}},
			anns:  []Announcement{{Addr: addr("203.0.113.7")}},
			want:  map[string][]Route{"r1": {}},
		},
		{
			name:    "unknown advertisement",
			peers:   []string{"r1"},
			anns:    []Announcement{{Addr: addr("203.0.113.7"), Advertisements: []string{"nope"}}},
			wantErr: ErrUnknownAdvertisement,
		},
		{
			name:    "aggregation length out of range",
			peers:   []string{"r1"},
			ads:     []Advertisement{{Name: "bad", AllPeers: true, AggregationLength: 33}},
			anns:    []Announcement{{Addr: addr("203.0.113.7"), Advertisements: []string{"bad"}}},
			wantErr: ErrInvalidAdvertisement,
		},
		{
			name:    "announcement without an address",
			peers:   []string{"r1"},
			anns:    []Announcement{{Advertisements: []string{"x"}}},
			wantErr: ErrInvalidAdvertisement,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RoutesByPeer(tt.peers, tt.ads, tt.anns)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RoutesByPeer error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpPrefixes); diff != "" {
				t.Errorf("RoutesByPeer (-want +got):\n%s", diff)
			}
		})
	}
}
