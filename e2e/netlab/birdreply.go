package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file parses what `birdc -v` prints (BIRD 2.0's control protocol): every line is
// "DDDD-text" or "DDDD text" with a four-digit reply code, or five spaces and text
// continuing the previous line's code. 0xxx codes report success, 1xxx carry table
// rows, 2xxx table headings, 8xxx run-time errors ("8001 Network not found") and 9xxx
// parse errors. The parsers read the time format renderBirdConfig pins
// ("iso short ms", no spaces in a time).

// ErrBirdReply reports a birdc reply with an error code, or one that cannot be parsed.
var ErrBirdReply = errors.New("netlab: birdc reply")

// birdCodeNetworkNotFound is BIRD's reply to `show route` for a prefix it has no route to.
const birdCodeNetworkNotFound = 8001

// birdLine is one line of a birdc -v reply.
type birdLine struct {
	code int
	text string
}

// birdReplyError is a reply line with an 8xxx or 9xxx code.
type birdReplyError struct {
	code int
	text string
}

func (e *birdReplyError) Error() string {
	return fmt.Sprintf("netlab: birdc reply %04d %s", e.code, e.text)
}

func (e *birdReplyError) Unwrap() error { return ErrBirdReply }

// parseBirdReply splits birdc -v output into lines with their codes. The first error
// line (8xxx, 9xxx) is returned as an error that wraps ErrBirdReply.
func parseBirdReply(out string) ([]birdLine, error) {
	var lines []birdLine
	code := -1
	for _, raw := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if raw == "" {
			continue
		}
		if len(raw) < 5 {
			return nil, fmt.Errorf("%w: short line %q", ErrBirdReply, raw)
		}
		head, text := raw[:5], raw[5:]
		if head == "     " {
			if code < 0 {
				return nil, fmt.Errorf("%w: continuation line %q before any code", ErrBirdReply, raw)
			}
		} else {
			c, err := strconv.Atoi(head[:4])
			if err != nil || c < 0 || (head[4] != '-' && head[4] != ' ') {
				return nil, fmt.Errorf("%w: line %q has no reply code", ErrBirdReply, raw)
			}
			code = c
		}
		if code >= 8000 {
			return nil, &birdReplyError{code: code, text: strings.TrimSpace(text)}
		}
		lines = append(lines, birdLine{code: code, text: text})
	}
	return lines, nil
}

// BirdProtocol is a row of `birdc show protocols`.
type BirdProtocol struct {
	// Name is the protocol's name (a BGP neighbour's is birdProtocolName of its address).
	Name string
	// Proto is its kind: BGP, BFD, Kernel, Device.
	Proto string
	// State is BIRD's protocol state: up, start, down, ...
	State string
	// Since is when it entered State, as BIRD prints it.
	Since string
	// Info is the rest of the row: for BGP the session state (Established, Idle,
	// Active, ...) and after it the last error, as "Idle Error: BFD session down".
	Info string
}

// Established reports whether p is a BGP protocol whose session is Established.
func (p BirdProtocol) Established() bool {
	return p.Proto == "BGP" && p.State == "up" && strings.HasPrefix(p.Info, "Established")
}

// parseBirdProtocols parses `birdc -v show protocols`.
func parseBirdProtocols(out string) ([]BirdProtocol, error) {
	lines, err := parseBirdReply(out)
	if err != nil {
		return nil, err
	}
	var protos []BirdProtocol
	for _, l := range lines {
		if l.code != 1002 {
			continue
		}
		f := strings.Fields(l.text)
		if len(f) < 5 {
			return nil, fmt.Errorf("%w: protocol row %q has fewer than 5 fields", ErrBirdReply, l.text)
		}
		protos = append(protos, BirdProtocol{Name: f[0], Proto: f[1], State: f[3], Since: f[4], Info: strings.Join(f[5:], " ")})
	}
	return protos, nil
}

// BirdRoute is one route of `birdc show route all`: BIRD keeps a route per protocol
// (per BGP neighbour) for each prefix, and marks the best one primary.
type BirdRoute struct {
	// Table is BIRD's routing table (master4, master6).
	Table  string
	Prefix netip.Prefix
	// Protocol is the protocol the route came from.
	Protocol string
	// Primary reports BIRD's best route for the prefix ("*"): the one it exports, with
	// the routes that "merge paths" finds equal to it merged in for the kernel.
	Primary bool
	// Preference is the route's preference (100 for BGP).
	Preference int
	// NextHops are the gateways of the "via" lines.
	NextHops []netip.Addr
	// Type is the "Type:" line (BGP univ).
	Type string
	// Attrs holds every attribute line, by name ("BGP.origin": "IGP").
	Attrs map[string]string
	// Communities are BGP.community as asn:value ("64512:100"); a well-known one as
	// its numbers ("65535:65281" for no-export).
	Communities []string
	// LargeCommunities are BGP.large_community as global:local1:local2 ("64512:1:2").
	LargeCommunities []string
}

var (
	birdRouteHead      = regexp.MustCompile(`^(\S+)?\s+(\S+) \[(\S+)[^\]]*\](?: (\*))? \((\d+)(?:/[^)]*)?\)`)
	birdCommunity      = regexp.MustCompile(`^\((\d+),(\d+)\)$`)
	birdLargeCommunity = regexp.MustCompile(`\((\d+), (\d+), (\d+)\)`)
)

// parseBirdRoutes parses `birdc -v show route all [PREFIX]`. A "Network not found"
// reply gives no routes and no error.
func parseBirdRoutes(out string) ([]BirdRoute, error) {
	lines, err := parseBirdReply(out)
	var re *birdReplyError
	if errors.As(err, &re) && re.code == birdCodeNetworkNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var (
		routes []BirdRoute
		table  string
		prefix netip.Prefix
		cur    *BirdRoute
	)
	flush := func() {
		if cur != nil {
			routes = append(routes, *cur)
			cur = nil
		}
	}
	for _, l := range lines {
		text := l.text
		if l.code != 1007 && l.code != 1008 && l.code != 1012 {
			continue
		}
		switch {
		case l.code == 1007 && strings.HasPrefix(text, "Table ") && strings.HasSuffix(text, ":"):
			flush()
			table = strings.TrimSuffix(strings.TrimPrefix(text, "Table "), ":")
		case l.code == 1007 && !strings.HasPrefix(text, "\t"):
			m := birdRouteHead.FindStringSubmatch(text)
			if m == nil {
				return nil, fmt.Errorf("%w: route line %q", ErrBirdReply, text)
			}
			if m[1] != "" {
				p, err := netip.ParsePrefix(m[1])
				if err != nil {
					return nil, fmt.Errorf("%w: route line %q: %v", ErrBirdReply, text, err)
				}
				prefix = p
			}
			if !prefix.IsValid() {
				return nil, fmt.Errorf("%w: route line %q names no prefix, and none came before", ErrBirdReply, text)
			}
			pref, _ := strconv.Atoi(m[5])
			// cur points into a copy that goes into routes once the next route or the
			// end comes (a pointer into routes would be left behind by append).
			flush()
			cur = &BirdRoute{Table: table, Prefix: prefix, Protocol: m[3], Primary: m[4] == "*", Preference: pref}
		case cur == nil:
			return nil, fmt.Errorf("%w: line %q outside a route", ErrBirdReply, text)
		case l.code == 1007:
			f := strings.Fields(text)
			if len(f) >= 2 && f[0] == "via" {
				a, err := netip.ParseAddr(f[1])
				if err != nil {
					return nil, fmt.Errorf("%w: next hop line %q: %v", ErrBirdReply, text, err)
				}
				cur.NextHops = append(cur.NextHops, a)
			}
		case l.code == 1008:
			cur.Type = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(text), "Type:"))
		case l.code == 1012:
			name, value, ok := strings.Cut(strings.TrimSpace(text), ": ")
			if !ok {
				name, value = strings.TrimSuffix(strings.TrimSpace(text), ":"), ""
			}
			if cur.Attrs == nil {
				cur.Attrs = map[string]string{}
			}
			cur.Attrs[name] = value
			switch name {
			case "BGP.community":
				for _, c := range strings.Fields(value) {
					m := birdCommunity.FindStringSubmatch(c)
					if m == nil {
						return nil, fmt.Errorf("%w: community %q", ErrBirdReply, c)
					}
					cur.Communities = append(cur.Communities, m[1]+":"+m[2])
				}
			case "BGP.large_community":
				for _, m := range birdLargeCommunity.FindAllStringSubmatch(value, -1) {
					cur.LargeCommunities = append(cur.LargeCommunities, m[1]+":"+m[2]+":"+m[3])
				}
			}
		}
	}
	flush()
	return routes, nil
}

// BirdBFDSession is a row of `birdc show bfd sessions`.
type BirdBFDSession struct {
	// Protocol is the BFD protocol holding the session (bfd1).
	Protocol  string
	Peer      netip.Addr
	Interface string
	// State is Up, Down, Init or AdminDown.
	State string
	// Interval is the transmit interval in use; Timeout the detection time.
	Interval, Timeout time.Duration
}

// parseBirdBFDSessions parses `birdc -v show bfd sessions`, sorted by peer.
func parseBirdBFDSessions(out string) ([]BirdBFDSession, error) {
	lines, err := parseBirdReply(out)
	if err != nil {
		return nil, err
	}
	var sessions []BirdBFDSession
	proto := ""
	for _, l := range lines {
		if l.code != 1020 {
			continue
		}
		f := strings.Fields(l.text)
		switch {
		case len(f) == 1 && strings.HasSuffix(f[0], ":"):
			proto = strings.TrimSuffix(f[0], ":")
		case len(f) > 0 && f[0] == "IP":
			// the heading
		case len(f) == 6:
			peer, err1 := netip.ParseAddr(f[0])
			interval, err2 := seconds(f[4])
			timeout, err3 := seconds(f[5])
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("%w: BFD session %q: %v", ErrBirdReply, l.text, err)
			}
			sessions = append(sessions, BirdBFDSession{Protocol: proto, Peer: peer, Interface: f[1], State: f[2],
				Interval: interval, Timeout: timeout})
		default:
			return nil, fmt.Errorf("%w: BFD session row %q", ErrBirdReply, l.text)
		}
	}
	slices.SortFunc(sessions, func(a, b BirdBFDSession) int { return a.Peer.Compare(b.Peer) })
	return sessions, nil
}

// seconds parses BIRD's "0.300" (seconds, to the millisecond).
func seconds(s string) (time.Duration, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1e6 {
		return 0, fmt.Errorf("bad seconds %q", s)
	}
	return time.Duration(v * float64(time.Second)).Round(time.Millisecond), nil
}
