package netlab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// BirdConfig is the configuration of a BirdRouter's BIRD 2.
type BirdConfig struct {
	// ASN is the router's AS number.
	ASN uint32
	// RouterID is the BGP router id; default the router host's first IPv4 address.
	RouterID netip.Addr
	// Neighbors are the configured peers, each with an IPv4 and an IPv6 unicast
	// channel that imports everything and exports nothing. EBGPMultihop is not
	// supported (BIRD would need an IGP table to resolve the next hops).
	Neighbors []BGPNeighborConfig
	// MergePaths is the ECMP width of the routes BIRD installs into the router's
	// kernel table (the kernel protocol's "merge paths on limit N"); default 16.
	MergePaths int
}

// birdString is what a password may look like: BIRD's strings are quoted, and this
// keeps quotes and backslashes out rather than escaping them.
var birdString = regexp.MustCompile(`^[ !#-\[\]-~]+$`)

// renderBirdConfig renders bird.conf. local gives the router's end towards each peer:
// its address is the session's local address, and its interface carries the peer's
// BFD session.
//
// Every peer is a "protocol bgp" named by birdProtocolName. The kernel protocols
// export every route into the router's kernel table with "merge paths on", which is
// how BIRD 2 forwards over several equal BGP paths: it keeps one best route per
// prefix and merges the equally good ones into one multipath kernel route. A peer
// with BFD gets a static session in "protocol bfd" (so the session exists before BGP
// comes up, as with FRR's bfdd) and "bfd on" in its "protocol bgp", with the timers on
// its interface's block. The error wait time is cut from BIRD's 60 s to 1-10 s so
// that a peer back from a failure reconnects within seconds.
func renderBirdConfig(hostname string, c BirdConfig, local func(peer netip.Addr) localEnd) (string, error) {
	if c.ASN == 0 {
		return "", fmt.Errorf("%w: ASN is 0", ErrBadBGPConfig)
	}
	if !c.RouterID.Is4() {
		return "", fmt.Errorf("%w: router id %v is not an IPv4 address", ErrBadBGPConfig, c.RouterID)
	}
	merge := c.MergePaths
	if merge == 0 {
		merge = 16
	}
	var b, peers strings.Builder
	fmt.Fprintf(&b, "# BIRD 2 configuration of %s, rendered by netlab.\n", hostname)
	b.WriteString("log stderr all;\n")
	// Pinned so that the parsers see one time format (no spaces in a field).
	for _, what := range []string{"base", "protocol", "route"} {
		fmt.Fprintf(&b, "timeformat %s iso short ms;\n", what)
	}
	fmt.Fprintf(&b, "router id %s;\n\n", c.RouterID)
	b.WriteString("protocol device {\n}\n\n")
	for _, af := range []string{"ipv4", "ipv6"} {
		fmt.Fprintf(&b, "protocol kernel kernel%s {\n\tmerge paths on limit %d;\n\t%s { import none; export all; };\n}\n\n",
			strings.TrimPrefix(af, "ipv"), merge, af)
	}

	type bfdTimers struct {
		rx, tx time.Duration
		mult   int
	}
	bfdIfaces := map[string]bfdTimers{}
	var ifaceOrder []string
	var bfdNeighbors []string
	seen := map[netip.Addr]bool{}
	for _, n := range c.Neighbors {
		if !n.Address.IsValid() || n.ASN == 0 {
			return "", fmt.Errorf("%w: neighbour %v with AS %d", ErrBadBGPConfig, n.Address, n.ASN)
		}
		a := n.Address.String()
		if seen[n.Address] {
			return "", fmt.Errorf("%w: neighbour %s twice", ErrBadBGPConfig, a)
		}
		seen[n.Address] = true
		if n.EBGPMultihop > 0 {
			return "", fmt.Errorf("%w: neighbour %s: the BIRD router does not support eBGP multihop", ErrBadBGPConfig, a)
		}
		end := local(n.Address)
		if !end.addr.IsValid() {
			return "", fmt.Errorf("%w: neighbour %s: the router has no address towards it", ErrBadBGPConfig, a)
		}
		fmt.Fprintf(&peers, "protocol bgp %s {\n", birdProtocolName(n.Address))
		fmt.Fprintf(&peers, "\tlocal %s as %d;\n", end.addr, c.ASN)
		fmt.Fprintf(&peers, "\tneighbor %s as %d;\n", a, n.ASN)
		peers.WriteString("\tconnect retry time 1;\n\terror wait time 1, 10;\n")
		if n.Password != "" {
			if !birdString.MatchString(n.Password) {
				return "", fmt.Errorf("%w: password of %s must be printable ASCII without quotes or backslashes", ErrBadBGPConfig, a)
			}
			fmt.Fprintf(&peers, "\tpassword %q;\n", n.Password)
		}
		if n.Passive {
			peers.WriteString("\tpassive on;\n")
		}
		if n.HoldTime > 0 || n.KeepaliveTime > 0 {
			if n.HoldTime < 3*time.Second || n.KeepaliveTime < time.Second {
				return "", fmt.Errorf("%w: timers of %s: set both hold (at least 3 s) and keepalive (at least 1 s)", ErrBadBGPConfig, a)
			}
			fmt.Fprintf(&peers, "\thold time %d;\n\tkeepalive time %d;\n", int(n.HoldTime/time.Second), int(n.KeepaliveTime/time.Second))
		}
		if n.BFD {
			if end.ifname == "" {
				return "", fmt.Errorf("%w: BFD with %s: the peer is on no link of the router", ErrBadBGPConfig, a)
			}
			tm := bfdTimers{rx: n.BFDMinRx, tx: n.BFDMinTx, mult: n.BFDMultiplier}
			if tm.rx == 0 {
				tm.rx = 300 * time.Millisecond
			}
			if tm.tx == 0 {
				tm.tx = 300 * time.Millisecond
			}
			if tm.mult == 0 {
				tm.mult = 3
			}
			if have, ok := bfdIfaces[end.ifname]; ok && have != tm {
				return "", fmt.Errorf("%w: BFD with %s: BIRD sets the timers per interface, and %s has other timers for another peer", ErrBadBGPConfig, a, end.ifname)
			} else if !ok {
				bfdIfaces[end.ifname] = tm
				ifaceOrder = append(ifaceOrder, end.ifname)
			}
			bfdNeighbors = append(bfdNeighbors, fmt.Sprintf("\tneighbor %s dev %q local %s;\n", a, end.ifname, end.addr))
			peers.WriteString("\tbfd on;\n")
		}
		peers.WriteString("\tipv4 { import all; export none; };\n\tipv6 { import all; export none; };\n}\n\n")
	}
	if len(bfdNeighbors) > 0 {
		b.WriteString("protocol bfd {\n")
		for _, ifname := range ifaceOrder {
			tm := bfdIfaces[ifname]
			fmt.Fprintf(&b, "\tinterface %q {\n\t\tmin rx interval %d ms;\n\t\tmin tx interval %d ms;\n\t\tmultiplier %d;\n\t};\n",
				ifname, tm.rx.Milliseconds(), tm.tx.Milliseconds(), tm.mult)
		}
		for _, n := range bfdNeighbors {
			b.WriteString(n)
		}
		b.WriteString("}\n\n")
	}
	b.WriteString(peers.String())
	return b.String(), nil
}

// birdProtocolName names the "protocol bgp" of the neighbour at a: "peer_" and the
// address with its dots and colons as underscores (peer_198_51_100_11).
func birdProtocolName(a netip.Addr) string {
	return "peer_" + strings.NewReplacer(".", "_", ":", "_").Replace(a.String())
}
