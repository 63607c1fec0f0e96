package netlab

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRenderBirdConfig(t *testing.T) {
	routerID := netip.MustParseAddr("198.51.100.1")
	n1, n2 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
	n3v6 := netip.MustParseAddr("2001:db8:1::13")
	far := netip.MustParseAddr("203.0.113.9")
	local := func(peer netip.Addr) localEnd {
		switch {
		case peer == far:
			return localEnd{addr: routerID}
		case peer.Is4():
			return localEnd{addr: routerID, ifname: "eth0"}
		}
		return localEnd{addr: netip.MustParseAddr("2001:db8:1::1"), ifname: "eth0"}
	}
	bfd := func(a netip.Addr) BGPNeighborConfig { return BGPNeighborConfig{Address: a, ASN: 64513, BFD: true} }
	tests := []struct {
		name    string
		cfg     BirdConfig
		want    []string // lines bird.conf must hold
		notWant []string // lines it must not hold
		wantErr error
	}{
		{
			name: "eBGP neighbours in both families, kernel ECMP",
			cfg: BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{
				{Address: n1, ASN: 64513, Password: "s3cret word"},
				{Address: n3v6, ASN: 64513, Passive: true, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second},
			}},
			want: []string{
				"router id 198.51.100.1;", "protocol device {", "timeformat protocol iso short ms;",
				"protocol kernel kernel4 {", "protocol kernel kernel6 {", "\tmerge paths on limit 16;",
				"\tipv4 { import none; export all; };", "\tipv6 { import none; export all; };",
				"protocol bgp peer_198_51_100_11 {", "\tlocal 198.51.100.1 as 64512;", "\tneighbor 198.51.100.11 as 64513;",
				`	password "s3cret word";`, "\terror wait time 1, 10;",
				"protocol bgp peer_2001_db8_1__13 {", "\tlocal 2001:db8:1::1 as 64512;", "\tneighbor 2001:db8:1::13 as 64513;",
				"\tpassive on;", "\thold time 9;", "\tkeepalive time 3;",
				"\tipv4 { import all; export none; };", "\tipv6 { import all; export none; };",
			},
			notWant: []string{"protocol bfd {", "\tbfd on;"},
		},
		{
			name: "BFD: static sessions on the interface's timers",
			cfg: BirdConfig{ASN: 64512, RouterID: routerID, MergePaths: 4, Neighbors: []BGPNeighborConfig{
				bfd(n1), bfd(n2), {Address: n3v6, ASN: 64513},
			}},
			want: []string{
				"\tmerge paths on limit 4;", "protocol bfd {", `	interface "eth0" {`,
				"\t\tmin rx interval 300 ms;", "\t\tmin tx interval 300 ms;", "\t\tmultiplier 3;",
				`	neighbor 198.51.100.11 dev "eth0" local 198.51.100.1;`,
				`	neighbor 198.51.100.12 dev "eth0" local 198.51.100.1;`,
				"\tbfd on;",
			},
			notWant: []string{`	neighbor 2001:db8:1::13 dev "eth0" local 2001:db8:1::1;`},
		},
		{
			name: "BFD timers of the neighbour",
			cfg: BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{
				{Address: n1, ASN: 64513, BFD: true, BFDMinRx: 100 * time.Millisecond, BFDMinTx: 200 * time.Millisecond, BFDMultiplier: 5},
			}},
			want: []string{"\t\tmin rx interval 100 ms;", "\t\tmin tx interval 200 ms;", "\t\tmultiplier 5;"},
		},
		{
			name: "BFD timers differ on one interface",
			cfg: BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{
				bfd(n1), {Address: n2, ASN: 64513, BFD: true, BFDMultiplier: 5},
			}},
			wantErr: ErrBadBGPConfig,
		},
		{name: "no ASN", cfg: BirdConfig{RouterID: routerID}, wantErr: ErrBadBGPConfig},
		{name: "IPv6 router id", cfg: BirdConfig{ASN: 1, RouterID: n3v6}, wantErr: ErrBadBGPConfig},
		{
			name:    "neighbour without AS",
			cfg:     BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Address: n1}}},
			wantErr: ErrBadBGPConfig,
		},
		{
			name:    "neighbour twice",
			cfg:     BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Address: n1, ASN: 1}, {Address: n1, ASN: 2}}},
			wantErr: ErrBadBGPConfig,
		},
		{
			name:    "password with a quote",
			cfg:     BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Address: n1, ASN: 1, Password: `a"b`}}},
			wantErr: ErrBadBGPConfig,
		},
		{
			name:    "hold time below BIRD's 3 s",
			cfg:     BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Address: n1, ASN: 1, HoldTime: 2 * time.Second, KeepaliveTime: time.Second}}},
			wantErr: ErrBadBGPConfig,
		},
		{
			name:    "eBGP multihop",
			cfg:     BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Address: far, ASN: 1, EBGPMultihop: 2}}},
			wantErr: ErrBadBGPConfig,
		},
		{
			name:    "BFD with a peer on no link",
			cfg:     BirdConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Address: far, ASN: 1, BFD: true}}},
			wantErr: ErrBadBGPConfig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderBirdConfig("router", tt.cfg, local)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			lines := strings.Split(got, "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("bird.conf lacks the line %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(lines, w) {
					t.Errorf("bird.conf has the line %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestRenderedBirdConfigParses checks every rendered configuration with BIRD's own
// parser (bird -p).
func TestRenderedBirdConfigParses(t *testing.T) {
	RequireCommands(t, BirdPath)
	routerID := netip.MustParseAddr("198.51.100.1")
	local := func(peer netip.Addr) localEnd {
		if peer.Is4() {
			return localEnd{addr: routerID, ifname: "eth0"}
		}
		return localEnd{addr: netip.MustParseAddr("2001:db8:1::1"), ifname: "eth0"}
	}
	for name, cfg := range map[string]BirdConfig{
		"empty": {ASN: 64512, RouterID: routerID},
		"everything": {ASN: 64512, RouterID: routerID, MergePaths: 8, Neighbors: []BGPNeighborConfig{
			{Address: netip.MustParseAddr("198.51.100.11"), ASN: 64513, Password: "s3cret word", BFD: true,
				HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second},
			{Address: netip.MustParseAddr("198.51.100.12"), ASN: 64513, Passive: true, BFD: true},
			{Address: netip.MustParseAddr("2001:db8:1::13"), ASN: 4200000000, BFD: true},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			conf, err := renderBirdConfig("router", cfg, local)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "bird.conf")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(BirdPath, "-p", "-c", path).CombinedOutput(); err != nil {
				t.Errorf("bird -p: %v: %s\n%s", err, out, conf)
			}
		})
	}
}
