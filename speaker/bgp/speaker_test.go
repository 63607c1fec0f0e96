package bgp

// These tests run real BGP sessions over the loopback interface between a
// Speaker and GoBGP servers playing the routers, in this process. They need
// no privileges: the routers listen on free ports of 127.0.0.x and the
// speaker connects from 127.0.0.2. Tests against FRR, with BFD, graceful
// restart and ECMP, are in the e2e module (e2e/bgp).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bfd"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

const (
	speakerASN = 64513
	speakerSrc = "127.0.0.2"
)

// testRouter is a GoBGP server standing in for a router.
type testRouter struct {
	srv  *server.BgpServer
	addr netip.Addr
	port uint16
}

// routerNeighbor is a neighbour the router accepts connections from.
type routerNeighbor struct {
	addr     string
	asn      uint32
	password string
	dialPort uint16 // when set, the router dials the neighbour on this port
}

func freePort(t *testing.T, addr string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func startRouter(t *testing.T, addr string, asn uint32, neighbors ...routerNeighbor) *testRouter {
	t.Helper()
	r := &testRouter{srv: server.NewBgpServer(), addr: netip.MustParseAddr(addr), port: freePort(t, addr)}
	go r.srv.Serve()
	t.Cleanup(r.srv.Stop)
	ctx := t.Context()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: addr, ListenPort: int32(r.port), ListenAddresses: []string{addr},
	}}); err != nil {
		t.Fatalf("start router %s: %v", addr, err)
	}
	for _, n := range neighbors {
		p := &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: n.addr, PeerAsn: n.asn, AuthPassword: n.password},
			Transport: &api.Transport{PassiveMode: n.dialPort == 0, RemotePort: uint32(n.dialPort), LocalAddress: addr},
			Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
			AfiSafis: []*api.AfiSafi{
				{Config: &api.AfiSafiConfig{Family: familyIPv4, Enabled: true}},
				{Config: &api.AfiSafiConfig{Family: familyIPv6, Enabled: true}},
			},
		}
		if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			t.Fatalf("router %s: add neighbour %s: %v", addr, n.addr, err)
		}
	}
	return r
}

// routeView is a route as the router received it.
type routeView struct {
	NextHop          string
	LocalPref        uint32 // 0 when absent
	Communities      []string
	LargeCommunities []string
}

// routes returns the router's routes of both families by prefix.
func (r *testRouter) routes(t *testing.T) map[string]routeView {
	t.Helper()
	out := map[string]routeView{}
	for _, family := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: family},
			func(prefix bgp.NLRI, paths []*apiutil.Path) {
				for _, p := range paths {
					var v routeView
					for _, a := range p.Attrs {
						switch a := a.(type) {
						case *bgp.PathAttributeNextHop:
							v.NextHop = a.Value.String()
						case *bgp.PathAttributeMpReachNLRI:
							v.NextHop = a.Nexthop.String()
						case *bgp.PathAttributeLocalPref:
							v.LocalPref = a.Value
						case *bgp.PathAttributeCommunities:
							for _, c := range a.Value {
								v.Communities = append(v.Communities, formatCommunity(c))
							}
						case *bgp.PathAttributeLargeCommunities:
							for _, c := range a.Values {
								v.LargeCommunities = append(v.LargeCommunities, fmt.Sprintf("%d:%d:%d", c.ASN, c.LocalData1, c.LocalData2))
							}
						}
					}
					out[prefix.String()] = v
				}
			})
		if err != nil {
			t.Fatalf("router %v: list paths: %v", r.addr, err)
		}
	}
	return out
}

// updatesReceived returns how many UPDATE messages the router received.
func (r *testRouter) updatesReceived(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	err := r.srv.ListPeer(t.Context(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State != nil && p.State.Messages != nil && p.State.Messages.Received != nil {
			n += p.State.Messages.Received.Update
		}
	})
	if err != nil {
		t.Fatalf("router %v: list peers: %v", r.addr, err)
	}
	return n
}

func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitRoutes(t *testing.T, r *testRouter, want map[string]routeView) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if diff := cmp.Diff(want, r.routes(t)); diff != "" {
			return fmt.Errorf("routes of router %v (-want +got):\n%s", r.addr, diff)
		}
		return nil
	})
}

func newTestSpeaker(t *testing.T, opts Options) *Speaker {
	t.Helper()
	if !opts.RouterID.IsValid() {
		opts.RouterID = netip.MustParseAddr("198.51.100.11")
	}
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func peerTo(r *testRouter, name string, asn uint32, routes ...Route) Peer {
	return Peer{
		Name: name, Address: r.addr, Port: r.port, PeerASN: asn, MyASN: speakerASN,
		HoldTime: 9 * time.Second, SourceAddress: netip.MustParseAddr(speakerSrc), Routes: routes,
	}
}

func statusOf(s *Speaker, name string) (PeerStatus, bool) {
	for _, st := range s.Status() {
		if st.Name == name {
			return st, true
		}
	}
	return PeerStatus{}, false
}

func waitState(t *testing.T, s *Speaker, name string, want SessionState) PeerStatus {
	t.Helper()
	var st PeerStatus
	eventually(t, 20*time.Second, func() error {
		var ok bool
		st, ok = statusOf(s, name)
		if !ok || st.State != want {
			return fmt.Errorf("peer %s: %+v, want state %s", name, st, want)
		}
		return nil
	})
	return st
}

func TestSpeakerAppliesDesiredStateToRouters(t *testing.T) {
	// Router A peers over iBGP, router B over eBGP.
	routerA := startRouter(t, "127.0.0.1", speakerASN, routerNeighbor{addr: speakerSrc, asn: speakerASN})
	routerB := startRouter(t, "127.0.0.3", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN})
	s := newTestSpeaker(t, Options{})

	pfx := netip.MustParsePrefix
	r1, r2, v6 := pfx("203.0.113.130/32"), pfx("203.0.113.131/32"), pfx("2001:db8:200::5/128")
	large := LargeCommunity{Global: 64512, Local1: 1, Local2: 2}
	peerA := func(routes ...Route) Peer { return peerTo(routerA, "a", speakerASN, routes...) }
	peerB := func(routes ...Route) Peer {
		p := peerTo(routerB, "b", 64512, routes...)
		p.NextHopV6 = netip.MustParseAddr("2001:db8:1::11")
		return p
	}

	// Step 1: attributes per peer. iBGP carries local preference (100 by
	// default); eBGP never does.
	d1 := Desired{Peers: []Peer{
		peerA(Route{Prefix: r1, LocalPref: 150, Communities: []uint32{64512<<16 | 100}, LargeCommunities: []LargeCommunity{large}}, Route{Prefix: r2}),
		peerB(Route{Prefix: r1}, Route{Prefix: v6, Communities: []uint32{64512<<16 | 6}}),
	}}
	select { // drain what New may have signalled
	case <-s.Changes():
	default:
	}
	if err := s.Set(t.Context(), d1); err != nil {
		t.Fatalf("Set: %v", err)
	}
	// Changes signals the new peers, then their state changes.
	for range 2 {
		select {
		case <-s.Changes():
		case <-time.After(20 * time.Second):
			t.Fatalf("no change signalled after Set")
		}
	}
	waitRoutes(t, routerA, map[string]routeView{
		r1.String(): {NextHop: speakerSrc, LocalPref: 150, Communities: []string{"64512:100"}, LargeCommunities: []string{"64512:1:2"}},
		r2.String(): {NextHop: speakerSrc, LocalPref: 100},
	})
	waitRoutes(t, routerB, map[string]routeView{
		r1.String(): {NextHop: speakerSrc},
		v6.String(): {NextHop: "2001:db8:1::11", Communities: []string{"64512:6"}},
	})
	for _, name := range []string{"a", "b"} {
		st := waitState(t, s, name, StateEstablished)
		if st.Prefixes != 2 || st.AdvertisedPrefixes != 2 || st.ConfigError != "" || st.Counters.Established != 1 || st.Uptime(time.Now()) <= 0 {
			t.Errorf("status of %s = %+v", name, st)
		}
	}

	// Step 2: r2 moves from A to B; r1's community for A changes.
	d2 := Desired{Peers: []Peer{
		peerA(Route{Prefix: r1, Communities: []uint32{64512<<16 | 200}}),
		peerB(Route{Prefix: r1}, Route{Prefix: r2}, Route{Prefix: v6, Communities: []uint32{64512<<16 | 6}}),
	}}
	if err := s.Set(t.Context(), d2); err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitRoutes(t, routerA, map[string]routeView{
		r1.String(): {NextHop: speakerSrc, LocalPref: 100, Communities: []string{"64512:200"}},
	})
	waitRoutes(t, routerB, map[string]routeView{
		r1.String(): {NextHop: speakerSrc},
		r2.String(): {NextHop: speakerSrc},
		v6.String(): {NextHop: "2001:db8:1::11", Communities: []string{"64512:6"}},
	})

	// Step 3: the same state again changes nothing and sends nothing.
	beforeA, beforeB := routerA.updatesReceived(t), routerB.updatesReceived(t)
	if err := s.Set(t.Context(), d2); err != nil {
		t.Fatalf("Set: %v", err)
	}
	s.setMu.Lock()
	want, _ := resolveDesired(d2, false, s.nextHop, nil)
	again, _ := makePlan(s.applied, want, nil)
	s.setMu.Unlock()
	if !again.empty() {
		t.Errorf("after Set, the plan for the same state is %+v, want empty", viewPlan(again))
	}
	time.Sleep(300 * time.Millisecond)
	if a, b := routerA.updatesReceived(t), routerB.updatesReceived(t); a != beforeA || b != beforeB {
		t.Errorf("repeating Set sent updates: router A %d -> %d, router B %d -> %d", beforeA, a, beforeB, b)
	}

	// Step 4: B goes. Its session is closed; A keeps its routes.
	if err := s.Set(t.Context(), Desired{Peers: []Peer{peerA(Route{Prefix: r1, Communities: []uint32{64512<<16 | 200}})}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitRoutes(t, routerB, map[string]routeView{})
	if _, ok := statusOf(s, "b"); ok {
		t.Errorf("status of removed peer b still reported")
	}
	waitRoutes(t, routerA, map[string]routeView{
		r1.String(): {NextHop: speakerSrc, LocalPref: 100, Communities: []string{"64512:200"}},
	})
	s.setMu.Lock()
	groups, sets := len(s.applied.groups), len(s.applied.neighborSets)
	s.setMu.Unlock()
	if groups != 1 || sets != 1 {
		t.Errorf("after B left: %d export groups and %d neighbour sets, want 1 and 1", groups, sets)
	}

	// Step 5: nothing desired: every route is withdrawn.
	if err := s.Set(t.Context(), Desired{}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitRoutes(t, routerA, map[string]routeView{})
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Set(t.Context(), d1); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close = %v, want ErrClosed", err)
	}
}

func TestSpeakerBadPeersDoNotStopTheOthers(t *testing.T) {
	good := startRouter(t, "127.0.0.1", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN})
	wrongPassword := startRouter(t, "127.0.0.3", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN, password: "right"})
	wrongMyASN := startRouter(t, "127.0.0.4", 64512, routerNeighbor{addr: speakerSrc, asn: 64999})
	wrongPeerASN := startRouter(t, "127.0.0.7", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN})
	nobody := netip.MustParseAddr("127.0.0.5") // nothing listens there
	s := newTestSpeaker(t, Options{})
	route := Route{Prefix: netip.MustParsePrefix("203.0.113.130/32")}

	pw := peerTo(wrongPassword, "wrong-password", 64512, route)
	pw.Password = "wrong"
	refused := peerTo(good, "refused", 64512, route)
	refused.Address, refused.Port = nobody, freePort(t, nobody.String())
	invalid := peerTo(good, "invalid", 64512, route)
	invalid.Address, invalid.HoldTime = netip.MustParseAddr("127.0.0.6"), 0
	err := s.Set(t.Context(), Desired{Peers: []Peer{
		peerTo(good, "good", 64512, route), pw, peerTo(wrongMyASN, "wrong-my-asn", 64512, route),
		peerTo(wrongPeerASN, "wrong-peer-asn", 64555, route), refused, invalid,
	}})
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitRoutes(t, good, map[string]routeView{route.Prefix.String(): {NextHop: speakerSrc}})
	waitState(t, s, "good", StateEstablished)

	st, _ := statusOf(s, "invalid")
	if st.State != StateNotConfigured || !strings.Contains(st.ConfigError, "hold time 0") {
		t.Errorf("invalid peer: %+v, want NotConfigured with a hold time error", st)
	}
	expectLastError := func(name string, substrings ...string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			st, _ := statusOf(s, name)
			for _, sub := range substrings {
				if !strings.Contains(st.LastError, sub) {
					return fmt.Errorf("peer %s: last error %q lacks %q (status %+v)", name, st.LastError, sub, st)
				}
			}
			if st.State == StateEstablished {
				return fmt.Errorf("peer %s is Established", name)
			}
			return nil
		})
	}
	expectLastError("wrong-my-asn", "myASN")
	expectLastError("wrong-peer-asn", "the router's AS number is not the configured peerASN", "bad peer as")
	expectLastError("refused", "cannot connect to 127.0.0.5", "connection refused")
	expectLastError("wrong-password", "cannot connect to 127.0.0.3", "same TCP MD5 password")
	if st, _ := statusOf(s, "wrong-password"); st.Counters.ConnectFailures == 0 {
		t.Errorf("wrong-password: no connection failure counted: %+v", st)
	}
	if routes := wrongPassword.routes(t); len(routes) != 0 {
		t.Errorf("router with another password learned %v", routes)
	}

	// Fixing the password re-creates that session, which comes up.
	pw.Password = "right"
	err = s.Set(t.Context(), Desired{Peers: []Peer{peerTo(good, "good", 64512, route), pw}})
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitState(t, s, "wrong-password", StateEstablished)
	waitRoutes(t, wrongPassword, map[string]routeView{route.Prefix.String(): {NextHop: speakerSrc}})
	if got := len(s.Status()); got != 2 {
		t.Errorf("%d statuses after removing three peers, want 2", got)
	}
}

func TestSpeakerPassivePeer(t *testing.T) {
	listen := freePort(t, speakerSrc)
	router := startRouter(t, "127.0.0.1", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN, dialPort: listen})
	s := newTestSpeaker(t, Options{ListenPort: listen})
	p := peerTo(router, "passive", 64512, Route{Prefix: netip.MustParsePrefix("2001:db8:200::7/128")})
	p.Passive, p.SourceAddress, p.NextHopV6 = true, netip.Addr{}, netip.MustParseAddr("2001:db8:1::11")
	if err := s.Set(t.Context(), Desired{Peers: []Peer{p}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitState(t, s, "passive", StateEstablished)
	waitRoutes(t, router, map[string]routeView{"2001:db8:200::7/128": {NextHop: "2001:db8:1::11"}})
}

func TestSpeakerRenamedPeerKeepsItsSession(t *testing.T) {
	router := startRouter(t, "127.0.0.1", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN})
	s := newTestSpeaker(t, Options{})
	p := peerTo(router, "old", 64512)
	if err := s.Set(t.Context(), Desired{Peers: []Peer{p}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	waitState(t, s, "old", StateEstablished)
	p.Name = "new"
	if err := s.Set(t.Context(), Desired{Peers: []Peer{p}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	st, ok := statusOf(s, "new")
	if !ok || st.State != StateEstablished {
		t.Errorf("renamed peer: %+v, want the running session's state Established", st)
	}
	if names := slices.Collect(func(yield func(string) bool) {
		for _, st := range s.Status() {
			if !yield(st.Name) {
				return
			}
		}
	}); !slices.Equal(names, []string{"new"}) {
		t.Errorf("statuses %v, want [new]", names)
	}
}

// bfdSink holds the BFD port on a router's address and reads what arrives:
// the speaker's BFD packets to that router then reach the test, not the
// speaker's own BFD server on the wildcard address (with which its session
// would come Up over the loopback). It never answers, so the speaker's BFD
// session stays Down, as with a router that does not run BFD.
type bfdSink struct {
	mu      sync.Mutex
	packets []bfd.BFDHeader
}

func newBFDSink(t *testing.T, addr string) *bfdSink {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := lc.ListenPacket(t.Context(), "udp", net.JoinHostPort(addr, "3784"))
	if err != nil {
		t.Fatalf("listen for BFD on %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &bfdSink{}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var h bfd.BFDHeader
			if h.UnmarshalBinary(buf[:n]) == nil {
				s.mu.Lock()
				s.packets = append(s.packets, h)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// last returns the last packet received, false when none.
func (s *bfdSink) last() (bfd.BFDHeader, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.packets) == 0 {
		return bfd.BFDHeader{}, false
	}
	return s.packets[len(s.packets)-1], true
}

// TestSpeakerBFDChangeKeepsTheSession: while BFD is not up (the router does
// not answer it), changing a peer's BFD settings alone (timers, BFD off, BFD
// on) updates GoBGP's neighbour in place: the session neither drops at the
// speaker nor at the router, and the speaker's BFD packets carry the new
// timers. A password change still re-creates the session.
func TestSpeakerBFDChangeKeepsTheSession(t *testing.T) {
	router := startRouter(t, "127.0.0.1", 64512, routerNeighbor{addr: speakerSrc, asn: speakerASN})
	sink := newBFDSink(t, "127.0.0.1")
	s := newTestSpeaker(t, Options{})
	p := peerTo(router, "r", 64512, Route{Prefix: netip.MustParsePrefix("203.0.113.130/32")})
	p.BFD = BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 3}
	set := func(p Peer) {
		t.Helper()
		if err := s.Set(t.Context(), Desired{Peers: []Peer{p}}); err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	set(p)
	waitState(t, s, "r", StateEstablished)
	waitRoutes(t, router, map[string]routeView{"203.0.113.130/32": {NextHop: speakerSrc}})
	// routerFlops returns how many times the router's session left Established.
	routerFlops := func() uint32 {
		var flops uint32
		_ = router.srv.ListPeer(t.Context(), &api.ListPeerRequest{Address: speakerSrc}, func(p *api.Peer) { flops = p.GetState().GetFlops() })
		return flops
	}
	for _, step := range []struct {
		name string
		bfd  BFD
	}{
		{"multiplier 3 to 4", BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 4}},
		{"intervals", BFD{Enabled: true, MinRx: 500 * time.Millisecond, MinTx: 200 * time.Millisecond, Multiplier: 4}},
		{"BFD off", BFD{}},
		{"BFD on", BFD{Enabled: true, Multiplier: 5}},
	} {
		p.BFD = step.bfd
		set(p)
		st, _ := statusOf(s, "r")
		if st.State != StateEstablished || st.Counters.Established != 1 || st.Counters.Drops != 0 {
			t.Errorf("%s: session %s, established %d times, dropped %d times; want Established once, never dropped",
				step.name, st.State, st.Counters.Established, st.Counters.Drops)
		}
		if st.BFDSince.IsZero() {
			t.Errorf("%s: BFDSince not set by the in-place change", step.name)
		}
		if f := routerFlops(); f != 0 {
			t.Errorf("%s: the router's session dropped %d times", step.name, f)
		}
		if !step.bfd.Enabled {
			continue
		}
		want := p.session().BFD
		eventually(t, 10*time.Second, func() error {
			h, ok := sink.last()
			if !ok || h.DetectTimeMultiplier != want.Multiplier || time.Duration(h.DesiredMinTxInterval)*time.Microsecond != want.MinTx ||
				time.Duration(h.RequiredMinRxInterval)*time.Microsecond != want.MinRx {
				return fmt.Errorf("%s: last BFD packet %+v (received: %v), want multiplier %d, tx %v, rx %v", step.name, h, ok, want.Multiplier, want.MinTx, want.MinRx)
			}
			return nil
		})
	}

	// A password change needs a new session: the router, which has none,
	// then refuses it.
	p.Password = "s3cret"
	set(p)
	eventually(t, 20*time.Second, func() error {
		if f := routerFlops(); f == 0 {
			return fmt.Errorf("the router's session has not dropped after the password change")
		}
		return nil
	})
}
