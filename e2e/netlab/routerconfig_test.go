package netlab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRenderBGPConfig(t *testing.T) {
	routerID := netip.MustParseAddr("198.51.100.1")
	n1 := netip.MustParseAddr("198.51.100.11")
	n2v6 := netip.MustParseAddr("2001:db8:1::12")
	local := func(peer netip.Addr) localEnd {
		if peer.Is4() {
			return localEnd{addr: routerID, ifname: "eth0"}
		}
		return localEnd{addr: netip.MustParseAddr("2001:db8:1::1"), ifname: "eth0"}
	}
	tests := []struct {
		name         string
		cfg          BGPConfig
		wantLines    []string // lines bgpd.conf must hold
		wantSessions []string
		wantBFDD     []string // lines bfdd.conf must hold
		wantErr      error
	}{
		{
			name: "eBGP neighbours in both families with ECMP",
			cfg: BGPConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{
				{Address: n1, ASN: 64513, Password: "s3cret"},
				{Address: n2v6, ASN: 64513, Passive: true, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second},
			}},
			wantLines: []string{
				"router bgp 64512", " bgp router-id 198.51.100.1", " no bgp ebgp-requires-policy",
				" bgp bestpath as-path multipath-relax",
				" neighbor 198.51.100.11 remote-as 64513", " neighbor 198.51.100.11 password s3cret",
				" neighbor 2001:db8:1::12 passive", " neighbor 2001:db8:1::12 timers 3 9",
				"  maximum-paths 8", "  maximum-paths ibgp 8",
				"  neighbor 198.51.100.11 activate", "  neighbor 2001:db8:1::12 activate",
			},
		},
		{
			name: "BFD makes a profile and a static session",
			cfg: BGPConfig{ASN: 64512, RouterID: routerID, MaximumPaths: 4, Neighbors: []BGPNeighborConfig{
				{Address: n1, ASN: 64513, BFD: true, BFDMinRx: 100 * time.Millisecond, BFDMinTx: 200 * time.Millisecond, BFDMultiplier: 5},
			}},
			wantLines:    []string{" neighbor 198.51.100.11 bfd profile n198-51-100-11", "  maximum-paths 4"},
			wantSessions: []string{"peer 198.51.100.11 local-address 198.51.100.1 interface eth0"},
			wantBFDD:     []string{" profile n198-51-100-11", "  receive-interval 100", "  transmit-interval 200", "  detect-multiplier 5"},
		},
		{
			name: "listen range",
			cfg:  BGPConfig{ASN: 64512, RouterID: routerID, ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, ListenASN: 64513},
			wantLines: []string{" neighbor listeners peer-group", " neighbor listeners remote-as 64513",
				" bgp listen range 198.51.100.0/24 peer-group listeners", "  neighbor listeners activate"},
		},
		{
			name: "unnumbered neighbour",
			cfg:  BGPConfig{ASN: 64512, RouterID: routerID, Neighbors: []BGPNeighborConfig{{Interface: "unn0", ASN: 64513}}},
			wantLines: []string{" neighbor unn0 interface remote-as 64513", " neighbor unn0 timers connect 1",
				"  neighbor unn0 activate"},
		},
		{name: "neighbour with an address and an interface", cfg: BGPConfig{ASN: 1, RouterID: routerID,
			Neighbors: []BGPNeighborConfig{{Address: n1, Interface: "unn0", ASN: 2}}}, wantErr: ErrBadBGPConfig},
		{name: "unnumbered neighbour with BFD", cfg: BGPConfig{ASN: 1, RouterID: routerID,
			Neighbors: []BGPNeighborConfig{{Interface: "unn0", ASN: 2, BFD: true}}}, wantErr: ErrBadBGPConfig},
		{name: "ASN 0", cfg: BGPConfig{RouterID: routerID}, wantErr: ErrBadBGPConfig},
		{name: "IPv6 router id", cfg: BGPConfig{ASN: 1, RouterID: n2v6}, wantErr: ErrBadBGPConfig},
		{name: "password with a space", cfg: BGPConfig{ASN: 1, RouterID: routerID,
			Neighbors: []BGPNeighborConfig{{Address: n1, ASN: 2, Password: "a b"}}}, wantErr: ErrBadBGPConfig},
		{name: "hold time without keepalive", cfg: BGPConfig{ASN: 1, RouterID: routerID,
			Neighbors: []BGPNeighborConfig{{Address: n1, ASN: 2, HoldTime: 9 * time.Second}}}, wantErr: ErrBadBGPConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderBGPConfig("router", tt.cfg, local)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("renderBGPConfig error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			lines := strings.Split(got.bgpd, "\n")
			for _, want := range tt.wantLines {
				if !contains(lines, want) {
					t.Errorf("bgpd.conf lacks %q:\n%s", want, got.bgpd)
				}
			}
			var sessions []string
			for _, s := range got.bfdSessions {
				sessions = append(sessions, s.command())
			}
			if diff := cmp.Diff(tt.wantSessions, sessions); diff != "" {
				t.Errorf("BFD sessions (-want +got):\n%s", diff)
			}
			for _, want := range tt.wantBFDD {
				if !contains(strings.Split(got.bfdd, "\n"), want) {
					t.Errorf("bfdd.conf lacks %q:\n%s", want, got.bfdd)
				}
			}
		})
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestNeedsZebra(t *testing.T) {
	n := netip.MustParseAddr("198.51.100.11")
	tests := []struct {
		cfg  BGPConfig
		want bool
	}{
		{BGPConfig{Neighbors: []BGPNeighborConfig{{Address: n}}}, false},
		{BGPConfig{Neighbors: []BGPNeighborConfig{{Address: n, BFD: true}}}, true},
		{BGPConfig{InstallRoutes: true}, true},
		{BGPConfig{Neighbors: []BGPNeighborConfig{{Interface: "unn0"}}}, true},
	}
	for _, tt := range tests {
		if got := tt.cfg.needsZebra(); got != tt.want {
			t.Errorf("needsZebra(%+v) = %v, want %v", tt.cfg, got, tt.want)
		}
	}
}
