// Command bgppeer is a small BGP speaker for the network lab's own tests: an embedded
// GoBGP v4 server that dials one or more peers and advertises host routes with optional
// communities, large communities and local preference. It proves the lab's FRR router
// works; it is not Herald's speaker. It runs in a node's namespace (ip netns exec) until
// SIGTERM or SIGINT, and prints "peer <address> <state>" on every session state change.
//
//	bgppeer -asn 64513 -router-id 198.51.100.11 -peer 198.51.100.1,64512 \
//	  -nexthop4 198.51.100.11 -nexthop6 2001:db8:1::11 \
//	  -prefix 203.0.113.130/32 -prefix 2001:db8:200::5/128
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type config struct {
	asn              uint
	routerID         string
	peers            listFlag // address,asn[,password]
	prefixes         listFlag
	nextHop4         string
	nextHop6         string
	communities      listFlag // a:b
	largeCommunities listFlag // a:b:c
	localPref        uint
	bfd              bool
	bfdInterval      time.Duration
	bfdMultiplier    uint
}

func main() {
	var c config
	flag.UintVar(&c.asn, "asn", 0, "local AS number")
	flag.StringVar(&c.routerID, "router-id", "", "router id (IPv4)")
	flag.Var(&c.peers, "peer", "peer as address,asn[,password] (repeatable)")
	flag.Var(&c.prefixes, "prefix", "prefix to advertise (repeatable)")
	flag.StringVar(&c.nextHop4, "nexthop4", "", "next hop of IPv4 prefixes")
	flag.StringVar(&c.nextHop6, "nexthop6", "", "next hop of IPv6 prefixes")
	flag.Var(&c.communities, "community", "community a:b (repeatable)")
	flag.Var(&c.largeCommunities, "large-community", "large community a:b:c (repeatable)")
	flag.UintVar(&c.localPref, "local-pref", 0, "local preference (iBGP), 0 for none")
	flag.BoolVar(&c.bfd, "bfd", false, "enable BFD with every peer")
	flag.DurationVar(&c.bfdInterval, "bfd-interval", 300*time.Millisecond, "BFD transmit and receive interval")
	flag.UintVar(&c.bfdMultiplier, "bfd-multiplier", 3, "BFD detection multiplier")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bgppeer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	level := &slog.LevelVar{}
	level.Set(slog.LevelWarn)
	s := server.NewBgpServer(server.LoggerOption(logger, level))
	go s.Serve()
	defer s.Stop()

	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: uint32(c.asn), RouterId: c.routerID, ListenPort: -1,
	}}); err != nil {
		return fmt.Errorf("start BGP: %w", err)
	}
	if err := s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(e *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if e.Type == apiutil.PEER_EVENT_STATE {
				fmt.Printf("peer %s %s\n", e.Peer.State.NeighborAddress, e.Peer.State.SessionState)
			}
		},
	}, server.WatchPeer()); err != nil {
		return fmt.Errorf("watch peers: %w", err)
	}
	for _, p := range c.peers {
		peer, err := parsePeer(p, c)
		if err != nil {
			return err
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
			return fmt.Errorf("add peer %s: %w", p, err)
		}
	}
	var paths []*apiutil.Path
	for _, p := range c.prefixes {
		path, err := buildPath(p, c)
		if err != nil {
			return err
		}
		paths = append(paths, path)
	}
	if len(paths) > 0 {
		if _, err := s.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
			return fmt.Errorf("add paths: %w", err)
		}
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}

func parsePeer(s string, c config) (*api.Peer, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("peer %q: want address,asn[,password]", s)
	}
	addr, err := netip.ParseAddr(parts[0])
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", s, err)
	}
	asn, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", s, err)
	}
	peer := &api.Peer{
		Conf:   &api.PeerConf{NeighborAddress: addr.String(), PeerAsn: uint32(asn)},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}
	if len(parts) == 3 {
		peer.Conf.AuthPassword = parts[2]
	}
	if c.bfd {
		us := uint32(c.bfdInterval.Microseconds())
		peer.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us,
			DetectionMultiplier: uint32(c.bfdMultiplier)}
	}
	return peer, nil
}

func buildPath(s string, c config) (*apiutil.Path, error) {
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", s, err)
	}
	nlri, err := bgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", s, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}
	family := bgp.RF_IPv4_UC
	if prefix.Addr().Is4() {
		nh, err := netip.ParseAddr(c.nextHop4)
		if err != nil {
			return nil, fmt.Errorf("next hop for %s: %w", s, err)
		}
		a, err := bgp.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	} else {
		family = bgp.RF_IPv6_UC
		nh, err := netip.ParseAddr(c.nextHop6)
		if err != nil {
			return nil, fmt.Errorf("next hop for %s: %w", s, err)
		}
		a, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	if len(c.communities) > 0 {
		var vs []uint32
		for _, cm := range c.communities {
			var a, b uint32
			if _, err := fmt.Sscanf(cm, "%d:%d", &a, &b); err != nil || a > 0xffff || b > 0xffff {
				return nil, fmt.Errorf("community %q: want a:b", cm)
			}
			vs = append(vs, a<<16|b)
		}
		attrs = append(attrs, bgp.NewPathAttributeCommunities(vs))
	}
	if len(c.largeCommunities) > 0 {
		var vs []*bgp.LargeCommunity
		for _, lc := range c.largeCommunities {
			var a, b, d uint32
			if _, err := fmt.Sscanf(lc, "%d:%d:%d", &a, &b, &d); err != nil {
				return nil, fmt.Errorf("large community %q: want a:b:c", lc)
			}
			vs = append(vs, bgp.NewLargeCommunity(a, b, d))
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(vs))
	}
	if c.localPref > 0 {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(uint32(c.localPref)))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}
