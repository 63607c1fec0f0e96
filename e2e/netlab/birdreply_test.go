package netlab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The files in testdata/bird are birdc -v replies of BIRD 2.0.12 (Debian bookworm's
// bird2): the *-herald.txt ones from TestBirdRouter's log (e2e/bgp, herald-speaker
// daemons as the peers), the others from a hand-made namespace lab with BIRDs as the
// peers. The comment at each test says what ran.

func birdFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bird", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseBirdReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []birdLine
		wantErr error
	}{
		{
			name: "codes and continuations",
			in:   "0001 BIRD 2.0.12 ready.\n2002-Name  Proto\n1002-a  BGP\n     b  BGP\n",
			want: []birdLine{{1, "BIRD 2.0.12 ready."}, {2002, "Name  Proto"}, {1002, "a  BGP"}, {1002, "b  BGP"}},
		},
		{name: "run-time error", in: "0001 BIRD 2.0.12 ready.\n8003 No protocols match\n", wantErr: ErrBirdReply},
		{name: "parse error", in: "9001 syntax error, unexpected CF_SYM_UNDEFINED\n", wantErr: ErrBirdReply},
		{name: "continuation first", in: "     text\n", wantErr: ErrBirdReply},
		{name: "no code (birdc without -v)", in: "BIRD 2.0.12 ready.\n", wantErr: ErrBirdReply},
		{name: "short line", in: "0001\n", wantErr: ErrBirdReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBirdReply(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(birdLine{})); diff != "" {
				t.Errorf("parseBirdReply (-want +got):\n%s", diff)
			}
		})
	}
}

// testdata/bird/protocols*.txt: show protocols of a router with BFD and two BGP
// neighbours, both up, then with node1's link cut.
func TestParseBirdProtocols(t *testing.T) {
	bgp := func(name, state, since, info string) BirdProtocol {
		return BirdProtocol{Name: name, Proto: "BGP", State: state, Since: since, Info: info}
	}
	others := []BirdProtocol{
		{Name: "device1", Proto: "Device", State: "up", Since: "16:21:55.636"},
		{Name: "kernel4", Proto: "Kernel", State: "up", Since: "16:21:55.636"},
		{Name: "kernel6", Proto: "Kernel", State: "up", Since: "16:21:55.636"},
		{Name: "bfd1", Proto: "BFD", State: "up", Since: "16:21:55.636"},
	}
	tests := []struct {
		file            string
		want            []BirdProtocol
		wantEstablished []string
	}{
		{"protocols.txt", append(others[:4:4],
			bgp("node1", "up", "16:21:59.574", "Established"), bgp("node2", "up", "16:21:59.541", "Established")),
			[]string{"node1", "node2"}},
		{"protocols-bfddown.txt", append(others[:4:4],
			bgp("node1", "start", "16:22:02.725", "Idle Error: BFD session down"), bgp("node2", "up", "16:21:59.541", "Established")),
			[]string{"node2"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseBirdProtocols(birdFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseBirdProtocols (-want +got):\n%s", diff)
			}
			var established []string
			for _, p := range got {
				if p.Established() {
					established = append(established, p.Name)
				}
			}
			if diff := cmp.Diff(tt.wantEstablished, established); diff != "" {
				t.Errorf("Established (-want +got):\n%s", diff)
			}
		})
	}
}

// testdata/bird/route-*.txt: show route all 203.0.113.130/32 with two BGP
// neighbours announcing it with a community and a large community, then with one,
// then for a prefix BIRD has no route to.
func TestParseBirdRoutes(t *testing.T) {
	prefix := netip.MustParsePrefix("203.0.113.130/32")
	route := func(proto string, primary bool, nh string) BirdRoute {
		return BirdRoute{
			Table: "master4", Prefix: prefix, Protocol: proto, Primary: primary, Preference: 100,
			NextHops: []netip.Addr{netip.MustParseAddr(nh)}, Type: "BGP univ",
			Attrs: map[string]string{
				"BGP.origin": "IGP", "BGP.as_path": "64513", "BGP.next_hop": nh, "BGP.local_pref": "100",
				"BGP.community": "(64512,100)", "BGP.large_community": "(64512, 1, 2)",
			},
			Communities: []string{"64512:100"}, LargeCommunities: []string{"64512:1:2"},
		}
	}
	// route-herald.txt: TestBirdRouter (e2e/bgp), three herald-speaker daemons
	// announcing a Service's address with a BGPAdvertisement's communities
	// (64512:100, no-export) and large communities.
	herald := func(host string, primary bool) BirdRoute {
		nh := "198.51.100." + host
		return BirdRoute{
			Table: "master4", Prefix: prefix, Protocol: "peer_198_51_100_" + host, Primary: primary, Preference: 100,
			NextHops: []netip.Addr{netip.MustParseAddr(nh)}, Type: "BGP univ",
			Attrs: map[string]string{
				"BGP.origin": "IGP", "BGP.as_path": "64513", "BGP.next_hop": nh, "BGP.local_pref": "100",
				"BGP.community": "(64512,100) (65535,65281)", "BGP.large_community": "(64512, 1, 2) (4200000000, 7, 8)",
			},
			Communities: []string{"64512:100", "65535:65281"}, LargeCommunities: []string{"64512:1:2", "4200000000:7:8"},
		}
	}
	tests := []struct {
		file string
		want []BirdRoute
	}{
		{"route-all.txt", []BirdRoute{route("node1", true, "198.51.100.11"), route("node2", false, "198.51.100.12")}},
		{"route-all-one.txt", []BirdRoute{route("node2", true, "198.51.100.12")}},
		{"route-none.txt", nil},
		{"route-herald.txt", []BirdRoute{herald("11", true), herald("13", false), herald("12", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseBirdRoutes(birdFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, addrCmp, prefixCmp); diff != "" {
				t.Errorf("parseBirdRoutes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBirdRoutesShapes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []BirdRoute
		wantErr bool
	}{
		{
			name: "multipath route, well-known community, two tables",
			in: "1007-Table master4:\n" +
				"     203.0.113.5/32       unicast [static1 16:00:00.000] * (200)\n" +
				"     \tvia 198.51.100.11 on eth0 weight 1\n" +
				"     \tvia 198.51.100.12 on eth0 weight 1\n" +
				"1012-\tBGP.community: (65535,65281) (64512,7)\n" +
				"1007-Table master6:\n" +
				"     2001:db8:200::5/128  unicast [peer_2001_db8_1__11 16:00:00.000 from 2001:db8:1::11] * (100/?) [AS64513i]\n" +
				"     \tvia 2001:db8:1::11 on eth0\n" +
				"0000 \n",
			want: []BirdRoute{
				{Table: "master4", Prefix: netip.MustParsePrefix("203.0.113.5/32"), Protocol: "static1", Primary: true, Preference: 200,
					NextHops:    []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")},
					Attrs:       map[string]string{"BGP.community": "(65535,65281) (64512,7)"},
					Communities: []string{"65535:65281", "64512:7"}},
				{Table: "master6", Prefix: netip.MustParsePrefix("2001:db8:200::5/128"), Protocol: "peer_2001_db8_1__11", Primary: true,
					Preference: 100, NextHops: []netip.Addr{netip.MustParseAddr("2001:db8:1::11")}},
			},
		},
		{name: "via before a route", in: "1007-\tvia 198.51.100.11 on eth0\n", wantErr: true},
		{name: "bad prefix", in: "1007-203.0.113.500/32 unicast [x 1] * (100)\n", wantErr: true},
		{name: "bad community", in: "1007-203.0.113.5/32 unicast [x 1] * (100)\n1012-\tBGP.community: (a,b)\n", wantErr: true},
		{name: "continuation route without a prefix before", in: "1007-                     unicast [x 1] (100)\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBirdRoutes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, addrCmp, prefixCmp); diff != "" {
				t.Errorf("parseBirdRoutes (-want +got):\n%s", diff)
			}
		})
	}
}

// testdata/bird/bfd-sessions*.txt: show bfd sessions with two nodes up, then with
// node1's link cut.
func TestParseBirdBFDSessions(t *testing.T) {
	n1, n2 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
	up := func(a netip.Addr) BirdBFDSession {
		return BirdBFDSession{Protocol: "bfd1", Peer: a, Interface: "eth0", State: "Up",
			Interval: 300 * time.Millisecond, Timeout: 900 * time.Millisecond}
	}
	tests := []struct {
		file string
		want []BirdBFDSession
	}{
		{"bfd-sessions.txt", []BirdBFDSession{up(n1), up(n2)}},
		{"bfd-sessions-down.txt", []BirdBFDSession{
			{Protocol: "bfd1", Peer: n1, Interface: "eth0", State: "Down", Interval: time.Second}, up(n2)}},
		// TestBirdRouter's: BIRD's static sessions with three herald-speaker daemons.
		{"bfd-sessions-herald.txt", []BirdBFDSession{up(n1), up(n2), up(netip.MustParseAddr("198.51.100.13"))}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseBirdBFDSessions(birdFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
				t.Errorf("parseBirdBFDSessions (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := parseBirdBFDSessions("1020-bfd1:\n     198.51.100.11 eth0 Up 16:00 x 0.9\n"); !errors.Is(err, ErrBirdReply) {
		t.Errorf("bad interval: error %v, want ErrBirdReply", err)
	}
}

func FuzzParseBirdRoutes(f *testing.F) {
	for _, name := range []string{"route-all.txt", "route-all-one.txt", "route-none.txt", "route-herald.txt"} {
		f.Add(birdFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseBirdRoutes(s) })
}

func FuzzParseBirdProtocols(f *testing.F) {
	f.Add(birdFixture(f, "protocols.txt"))
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseBirdProtocols(s) })
}

func FuzzParseBirdBFDSessions(f *testing.F) {
	f.Add(birdFixture(f, "bfd-sessions.txt"))
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseBirdBFDSessions(s) })
}
