package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/herald-dev/herald/config"
)

// DefaultPort is the BGP port used when Peer.Port is 0.
const DefaultPort = config.DefaultBGPPort

// ErrInvalidPeer is wrapped by the error a PeerStatus reports for a peer whose
// configuration cannot be applied; the session is then not configured at all.
var ErrInvalidPeer = errors.New("bgp: invalid peer")

// Peer is one BGP session as GoBGP is configured with it, and the routes
// to advertise over it. The speaker derives it from the configuration
// model's BGPPeer (PeerFromConfig), whose BFD and graceful restart
// settings and defaults it shares; it adds what only a session has (the
// multihop TTL, passive mode, next hops, routes).
type Peer struct {
	// Name identifies the peer in statuses (the BGPPeer's name).
	Name string
	// Address is the router's address; it identifies the session: two peers
	// with the same address are an error for the second one (by name).
	Address netip.Addr
	// Interface makes the session unnumbered (RFC 5549): Address is left
	// zero and the speaker finds the router's IPv6 link-local address on this
	// interface (see pickRouterNeighbor), sends router advertisements there
	// so that the router learns the node's, and advertises routes of both
	// families with the session's own link-local next hop (IPv4 routes
	// through the extended next hop encoding, RFC 8950).
	Interface string `json:",omitempty"`
	// Port is the router's TCP port; 0 means 179.
	Port uint16
	// PeerASN is the router's AS number and MyASN this node's: equal for
	// internal BGP, different for external BGP.
	PeerASN, MyASN uint32
	// HoldTime is the hold time proposed in OPEN, in whole seconds, at least
	// 3 s. Zero is rejected: GoBGP v4.8.0 cannot turn keepalives off.
	HoldTime time.Duration
	// KeepaliveTime is the keepalive interval in whole seconds; 0 means a
	// third of HoldTime.
	KeepaliveTime time.Duration
	// Password enables TCP MD5 signatures (RFC 2385); "" for none.
	Password string
	// EBGPMultihop is the TTL of an eBGP session's packets for a router
	// several hops away; 0 means directly connected (TTL 1).
	EBGPMultihop uint8
	// SourceAddress is the local address the session connects from; the
	// zero Addr lets the kernel choose.
	SourceAddress netip.Addr
	// Passive makes the speaker wait for the router to connect. It needs
	// Options.ListenPort.
	Passive bool
	// BFD runs a BFD session (RFC 5880, single hop) next to the BGP session:
	// when BFD goes down, the BGP session is reset at once.
	BFD BFD
	// GracefulRestart advertises the graceful restart capability (RFC 4724):
	// when the speaker restarts, the router keeps its routes as stale until
	// the new session has re-advertised them.
	GracefulRestart GracefulRestart
	// NextHopV4 and NextHopV6 override the next hop of the routes of each
	// family. By default, routes of the session's own family carry the
	// session's local address, and routes of the other family (IPv6 routes
	// over an IPv4 session, or the reverse) carry an address of that family
	// on the interface holding the session's local address.
	NextHopV4, NextHopV6 netip.Addr
	// Routes are the routes to advertise to this peer.
	Routes []Route
}

// BFD are a session's BFD settings, as the configuration model holds them
// (one definition): Enabled turns BFD on; MinRx is the required minimum
// receive interval and MinTx the desired minimum transmit interval, 0
// meaning 300 ms; Multiplier is the detection multiplier, 0 meaning 3.
type BFD = config.BFD

// GracefulRestart are a session's graceful restart settings, as the
// configuration model holds them: Enabled advertises the capability;
// RestartTime is how long the router keeps the routes after the session
// drops, in whole seconds up to 4095 s, 0 meaning 120 s.
type GracefulRestart = config.GracefulRestart

// Defaults applied to zero fields: the configuration model's.
const (
	defaultBFDInterval   = config.DefaultBFDInterval
	defaultBFDMultiplier = config.DefaultBFDMultiplier
	defaultRestartTime   = config.DefaultGRRestartTime
	minHoldTime          = 3 * time.Second
	maxHoldTime          = 65535 * time.Second
	maxRestartTime       = 4095 * time.Second
	maxPasswordLength    = 80 // TCP_MD5SIG_MAXKEYLEN
)

// IBGP reports whether the session is internal BGP.
func (p Peer) IBGP() bool { return p.PeerASN == p.MyASN }

// port returns the TCP port to dial.
func (p Peer) port() uint16 {
	if p.Port == 0 {
		return DefaultPort
	}
	return p.Port
}

// validate returns an error wrapping ErrInvalidPeer when the peer cannot be
// configured as given. listening says whether the speaker accepts connections.
func (p Peer) validate(listening bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidPeer, p.Name, fmt.Sprintf(format, args...))
	}
	if p.Interface != "" {
		switch {
		case !p.Address.Is6() || !p.Address.IsLinkLocalUnicast() || p.Address.Zone() != p.Interface:
			return bad("the unnumbered session on %s has no IPv6 link-local router address (got %v)", p.Interface, p.Address)
		case p.SourceAddress.IsValid():
			return bad("an unnumbered session (interface %s) cannot have a source address", p.Interface)
		case p.EBGPMultihop > 0:
			return bad("an unnumbered session (interface %s) cannot be multihop", p.Interface)
		case p.BFD.Enabled:
			return bad("BFD is not supported on an unnumbered session (interface %s): GoBGP v4.9.0's BFD does not run over link-local addresses", p.Interface)
		}
	}
	switch {
	case !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.IsMulticast():
		return bad("address %v is not a unicast address", p.Address)
	case p.Address.Zone() != "" && p.Interface == "":
		return bad("address %v has a zone: link-local peers are supported only as unnumbered peers (Interface)", p.Address)
	case p.PeerASN == 0 || p.MyASN == 0:
		return bad("AS numbers must not be 0 (peerASN %d, myASN %d)", p.PeerASN, p.MyASN)
	case p.HoldTime == 0:
		return bad("hold time 0 (no keepalives) is not supported; use 3s or more")
	case p.HoldTime < minHoldTime || p.HoldTime > maxHoldTime || p.HoldTime%time.Second != 0:
		return bad("hold time %v: use whole seconds from 3s to 65535s", p.HoldTime)
	case p.KeepaliveTime < 0 || p.KeepaliveTime%time.Second != 0 || p.KeepaliveTime >= p.HoldTime:
		return bad("keepalive time %v: use whole seconds below the hold time %v", p.KeepaliveTime, p.HoldTime)
	case len(p.Password) > maxPasswordLength:
		return bad("the TCP MD5 password is longer than %d bytes", maxPasswordLength)
	case p.EBGPMultihop > 0 && p.IBGP():
		return bad("eBGP multihop set on an iBGP session")
	case p.SourceAddress.IsValid() && p.SourceAddress.Is4() != p.Address.Is4():
		return bad("source address %v and peer address %v are of different families", p.SourceAddress, p.Address)
	case p.Passive && !listening:
		return bad("passive, but the speaker does not listen for connections (Options.ListenPort)")
	case p.BFD.Enabled && p.EBGPMultihop > 0:
		return bad("BFD needs a directly connected router: GoBGP v4.8.0 has no multihop BFD (RFC 5883)")
	case p.BFD.MinRx < 0 || p.BFD.MinTx < 0:
		return bad("negative BFD interval")
	case p.GracefulRestart.RestartTime < 0 || p.GracefulRestart.RestartTime > maxRestartTime || p.GracefulRestart.RestartTime%time.Second != 0:
		return bad("graceful restart time %v: use whole seconds up to 4095s", p.GracefulRestart.RestartTime)
	case p.NextHopV4.IsValid() && !p.NextHopV4.Is4():
		return bad("IPv4 next hop %v is not an IPv4 address", p.NextHopV4)
	case p.NextHopV6.IsValid() && !p.NextHopV6.Is6():
		return bad("IPv6 next hop %v is not an IPv6 address", p.NextHopV6)
	}
	return nil
}

// sessionConfig is the part of a Peer that defines its GoBGP neighbour: a
// change to any of it re-creates the session, except some changes of BFD
// alone, which are applied to the running session (sessionChangeOf).
type sessionConfig struct {
	Address         netip.Addr
	Interface       string
	Port            uint16
	PeerASN, MyASN  uint32
	HoldTime        time.Duration
	KeepaliveTime   time.Duration
	Password        string
	EBGPMultihop    uint8
	SourceAddress   netip.Addr
	Passive         bool
	BFD             BFD
	GracefulRestart GracefulRestart
}

// session returns the session settings with defaults filled in.
func (p Peer) session() sessionConfig {
	s := sessionConfig{
		Address: p.Address, Interface: p.Interface, Port: p.port(), PeerASN: p.PeerASN, MyASN: p.MyASN,
		HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, Password: p.Password,
		EBGPMultihop: p.EBGPMultihop, SourceAddress: p.SourceAddress, Passive: p.Passive,
	}
	if s.KeepaliveTime == 0 {
		s.KeepaliveTime = (s.HoldTime / 3).Truncate(time.Second)
	}
	if p.BFD.Enabled {
		s.BFD = BFD{Enabled: true, MinRx: p.BFD.MinRx, MinTx: p.BFD.MinTx, Multiplier: p.BFD.Multiplier}
		if s.BFD.MinRx == 0 {
			s.BFD.MinRx = defaultBFDInterval
		}
		if s.BFD.MinTx == 0 {
			s.BFD.MinTx = defaultBFDInterval
		}
		if s.BFD.Multiplier == 0 {
			s.BFD.Multiplier = defaultBFDMultiplier
		}
	}
	if p.GracefulRestart.Enabled {
		s.GracefulRestart = GracefulRestart{Enabled: true, RestartTime: p.GracefulRestart.RestartTime}
		if s.GracefulRestart.RestartTime == 0 {
			s.GracefulRestart.RestartTime = defaultRestartTime
		}
	}
	return s
}

// comparePeers orders peers by name, then address.
func comparePeers(a, b Peer) int {
	if a.Name != b.Name {
		if a.Name < b.Name {
			return -1
		}
		return 1
	}
	return a.Address.Compare(b.Address)
}

// sortedPeers returns the peers ordered by name, then address.
func sortedPeers(peers []Peer) []Peer {
	out := slices.Clone(peers)
	slices.SortStableFunc(out, comparePeers)
	return out
}
