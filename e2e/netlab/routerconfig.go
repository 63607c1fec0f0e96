package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// BGPConfig is the configuration of the router's FRR bgpd.
type BGPConfig struct {
	// ASN is the router's AS number.
	ASN uint32
	// RouterID is the BGP router id; default the router host's first IPv4 address.
	RouterID netip.Addr
	// Neighbors are the configured peers, each active in IPv4 and IPv6 unicast.
	Neighbors []BGPNeighborConfig
	// ListenRanges accept sessions from any address in them (FRR's "bgp listen range"),
	// with the AS number ListenASN (0 means the router's own, iBGP) and, when set,
	// ListenPassword. The router never dials these peers.
	ListenRanges   []netip.Prefix
	ListenASN      uint32
	ListenPassword string
	// MaximumPaths is the ECMP width for eBGP and iBGP; default 8.
	MaximumPaths int
	// InstallRoutes runs zebra so that learned routes enter the router's kernel table
	// and the router forwards to them. Without it (and without BFD) bgpd runs alone
	// with -Z and only holds the routes in its RIB.
	InstallRoutes bool
	// ExtraRouterBGP is appended verbatim inside "router bgp".
	ExtraRouterBGP string
}

// BGPNeighborConfig is one configured peer of the router.
type BGPNeighborConfig struct {
	// Address is the peer's address.
	Address netip.Addr
	// Interface, instead of Address, makes an unnumbered neighbour (FRR's
	// "neighbor IFNAME interface"): the peer at the other end of the router's
	// interface, over IPv6 link-local addresses, with the extended next hop
	// capability (RFC 8950). It needs zebra, which the router then runs, and
	// which sends router advertisements on the interface.
	Interface string
	// ASN is the peer's AS number.
	ASN uint32
	// Password enables TCP MD5 authentication.
	Password string
	// Passive makes the router wait for the peer to connect.
	Passive bool
	// EBGPMultihop, when above 0, allows an eBGP peer that many hops away.
	EBGPMultihop int
	// HoldTime and KeepaliveTime, when set (both), override FRR's 180 s and 60 s. The
	// session uses the smaller hold time of the two sides.
	HoldTime, KeepaliveTime time.Duration
	// BFD enables BFD for the session. It needs zebra and bfdd, which the router then
	// runs (bgpd talks to bfdd only through zebra).
	BFD bool
	// BFDMinRx, BFDMinTx and BFDMultiplier are the BFD timers; default 300 ms, 300 ms, 3.
	BFDMinRx, BFDMinTx time.Duration
	BFDMultiplier      int
}

// needsZebra reports whether the configuration needs zebra (and bfdd).
func (c BGPConfig) needsZebra() bool {
	return c.InstallRoutes || c.usesBFD() ||
		slices.ContainsFunc(c.Neighbors, func(n BGPNeighborConfig) bool { return n.Interface != "" })
}

func (c BGPConfig) usesBFD() bool {
	return slices.ContainsFunc(c.Neighbors, func(n BGPNeighborConfig) bool { return n.BFD })
}

// ErrBadBGPConfig reports a BGPConfig that cannot be rendered.
var ErrBadBGPConfig = errors.New("netlab: bad BGP configuration")

// frrWord is what a password may look like: FRR's configuration has no quoting.
var frrWord = regexp.MustCompile(`^[!-~]+$`)

// localEnd is the router's side of a session: its address and interface towards a
// peer (interface empty when the peer is not on a link of the router).
type localEnd struct {
	addr   netip.Addr
	ifname string
}

// frrConfig is what the router's daemons are configured with.
type frrConfig struct {
	bgpd string
	// bfdd holds the BFD profiles; bfdSessions are added through vtysh once bfdd knows
	// the interfaces (it learns them from zebra after reading its file, and refuses a
	// session on an interface it does not know yet).
	bfdd        string
	bfdSessions []bfdSession
}

// bfdSession is a BFD session configured statically in bfdd. A static session exists
// before BGP comes up and survives BGP going down. When bgpd alone asks for one, bfdd
// creates it as the BGP session comes up, and GoBGP v4.8.0 takes the new session's
// first Down packets as a BFD failure and resets the BGP session, over and over.
type bfdSession struct {
	peer, local netip.Addr
	ifname      string // empty for multihop
	profile     string
}

// command returns the bfdd configuration line that creates the session.
func (s bfdSession) command() string {
	if s.ifname == "" {
		return fmt.Sprintf("peer %s multihop local-address %s", s.peer, s.local)
	}
	return fmt.Sprintf("peer %s local-address %s interface %s", s.peer, s.local, s.ifname)
}

// renderBGPConfig renders the daemons' configuration. local gives the router's end
// towards each peer.
func renderBGPConfig(hostname string, c BGPConfig, local func(peer netip.Addr) localEnd) (frrConfig, error) {
	var out frrConfig
	if c.ASN == 0 {
		return frrConfig{}, fmt.Errorf("%w: ASN is 0", ErrBadBGPConfig)
	}
	if !c.RouterID.Is4() {
		return frrConfig{}, fmt.Errorf("%w: router id %v is not an IPv4 address", ErrBadBGPConfig, c.RouterID)
	}
	maxPaths := c.MaximumPaths
	if maxPaths == 0 {
		maxPaths = 8
	}
	var b, f strings.Builder
	fmt.Fprintf(&b, "hostname %s\n", hostname)
	b.WriteString("log stdout informational\n!\n")
	fmt.Fprintf(&b, "router bgp %d\n", c.ASN)
	fmt.Fprintf(&b, " bgp router-id %s\n", c.RouterID)
	b.WriteString(" no bgp ebgp-requires-policy\n")
	b.WriteString(" no bgp default ipv4-unicast\n")
	b.WriteString(" no bgp network import-check\n")
	b.WriteString(" bgp bestpath as-path multipath-relax\n")
	b.WriteString(" bgp log-neighbor-changes\n")
	var active []string
	for _, n := range c.Neighbors {
		if n.Address.IsValid() == (n.Interface != "") || n.ASN == 0 {
			return frrConfig{}, fmt.Errorf("%w: neighbour %v (interface %q) with AS %d: set an address or an interface, and an AS", ErrBadBGPConfig, n.Address, n.Interface, n.ASN)
		}
		if n.Interface != "" && (n.BFD || n.EBGPMultihop > 0) {
			return frrConfig{}, fmt.Errorf("%w: unnumbered neighbour %s with BFD or multihop is not supported by this lab", ErrBadBGPConfig, n.Interface)
		}
		a := n.Address.String()
		if n.Interface != "" {
			a = n.Interface
			fmt.Fprintf(&b, " neighbor %s interface remote-as %d\n", a, n.ASN)
		} else {
			fmt.Fprintf(&b, " neighbor %s remote-as %d\n", a, n.ASN)
		}
		active = append(active, a)
		fmt.Fprintf(&b, " neighbor %s timers connect 1\n", a)
		if n.Password != "" {
			if !frrWord.MatchString(n.Password) {
				return frrConfig{}, fmt.Errorf("%w: password of %s must be printable ASCII without spaces", ErrBadBGPConfig, a)
			}
			fmt.Fprintf(&b, " neighbor %s password %s\n", a, n.Password)
		}
		if n.Passive {
			fmt.Fprintf(&b, " neighbor %s passive\n", a)
		}
		if n.EBGPMultihop > 0 {
			fmt.Fprintf(&b, " neighbor %s ebgp-multihop %d\n", a, n.EBGPMultihop)
		}
		if n.HoldTime > 0 || n.KeepaliveTime > 0 {
			if n.HoldTime < time.Second || n.KeepaliveTime < time.Second {
				return frrConfig{}, fmt.Errorf("%w: timers of %s: set both hold and keepalive, at least 1 s each", ErrBadBGPConfig, a)
			}
			fmt.Fprintf(&b, " neighbor %s timers %d %d\n", a, int(n.KeepaliveTime/time.Second), int(n.HoldTime/time.Second))
		}
		if n.BFD {
			profile := bfdProfileName(n.Address)
			fmt.Fprintf(&b, " neighbor %s bfd profile %s\n", a, profile)
			rx, tx, mult := n.BFDMinRx, n.BFDMinTx, n.BFDMultiplier
			if rx == 0 {
				rx = 300 * time.Millisecond
			}
			if tx == 0 {
				tx = 300 * time.Millisecond
			}
			if mult == 0 {
				mult = 3
			}
			fmt.Fprintf(&f, " profile %s\n  receive-interval %d\n  transmit-interval %d\n  detect-multiplier %d\n !\n",
				profile, rx.Milliseconds(), tx.Milliseconds(), mult)
			end := local(n.Address)
			if !end.addr.IsValid() {
				return frrConfig{}, fmt.Errorf("%w: BFD with %s: the router has no address towards it", ErrBadBGPConfig, a)
			}
			sess := bfdSession{peer: n.Address, local: end.addr, ifname: end.ifname, profile: profile}
			if n.EBGPMultihop > 0 {
				sess.ifname = ""
			}
			out.bfdSessions = append(out.bfdSessions, sess)
		}
	}
	if len(c.ListenRanges) > 0 {
		asn := c.ListenASN
		if asn == 0 {
			asn = c.ASN
		}
		b.WriteString(" neighbor listeners peer-group\n")
		fmt.Fprintf(&b, " neighbor listeners remote-as %d\n", asn)
		if c.ListenPassword != "" {
			if !frrWord.MatchString(c.ListenPassword) {
				return frrConfig{}, fmt.Errorf("%w: listen password must be printable ASCII without spaces", ErrBadBGPConfig)
			}
			fmt.Fprintf(&b, " neighbor listeners password %s\n", c.ListenPassword)
		}
		for _, r := range c.ListenRanges {
			fmt.Fprintf(&b, " bgp listen range %s peer-group listeners\n", r.Masked())
		}
		active = append(active, "listeners")
	}
	if c.ExtraRouterBGP != "" {
		for _, line := range strings.Split(strings.TrimRight(c.ExtraRouterBGP, "\n"), "\n") {
			b.WriteString(" " + strings.TrimLeft(line, " ") + "\n")
		}
	}
	for _, af := range []string{"ipv4", "ipv6"} {
		fmt.Fprintf(&b, " address-family %s unicast\n", af)
		fmt.Fprintf(&b, "  maximum-paths %d\n", maxPaths)
		fmt.Fprintf(&b, "  maximum-paths ibgp %d\n", maxPaths)
		for _, a := range active {
			fmt.Fprintf(&b, "  neighbor %s activate\n", a)
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString("exit\n!\n")
	if f.Len() > 0 {
		out.bfdd = fmt.Sprintf("hostname %s\nlog stdout informational\n!\nbfd\n%sexit\n!\n", hostname, f.String())
	}
	out.bgpd = b.String()
	return out, nil
}

// bfdProfileName names the BFD profile of the neighbour at a.
func bfdProfileName(a netip.Addr) string {
	return "n" + strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
}
