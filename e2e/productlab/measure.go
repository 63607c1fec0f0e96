package productlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
)

// LongestOutage returns the longest client-observed outage that ends after from:
// over every run of consecutive failed attempts (in start order) that a successful
// attempt started after from ends, the time from the start of the run's first
// failure to the start of that success. Attempts that were merely late (the
// prober's own scheduling on a busy machine) make no outage; a run of k failures
// one interval apart, then a success, is an outage of k intervals, as Outage
// counts it. A run that began before from counts whole. Unlike Outage it also sees
// an outage that starts well after from, as when an endpoint is removed some time
// after it started terminating. ok is false when no attempt succeeded after from.
func LongestOutage(as []Attempt, from time.Time) (d time.Duration, ok bool) {
	start, end, ok := LongestOutageRun(as, from)
	return end.Sub(start), ok
}

// LongestOutageRun returns where LongestOutage's outage lies: the start of its
// first failed attempt and of the successful attempt that ended it (equal when
// no attempt failed). ok is false when no attempt succeeded after from.
func LongestOutageRun(as []Attempt, from time.Time) (start, end time.Time, ok bool) {
	var runStart time.Time
	for _, a := range as {
		if !a.OK() {
			if runStart.IsZero() {
				runStart = a.Start
			}
			continue
		}
		if a.Start.After(from) {
			ok = true
			if !runStart.IsZero() && a.Start.Sub(runStart) > end.Sub(start) {
				start, end = runStart, a.Start
			}
		}
		runStart = time.Time{}
	}
	return start, end, ok
}

// FailedAfter counts the attempts started after from that did not reach a pod.
func FailedAfter(as []Attempt, from time.Time) int {
	n := 0
	for _, a := range as {
		if !a.OK() && a.Start.After(from) {
			n++
		}
	}
	return n
}

// GratuitousARP returns the first gratuitous ARP for addr in pkts (a capture with
// filter "arp") sent after after by a MAC other than not (a node's MAC; nil for
// any): a broadcast reply "addr is-at", or a broadcast request for addr from addr.
// Replies to someone's request are not gratuitous.
func GratuitousARP(pkts []netlab.Packet, addr netip.Addr, after time.Time, not string) (netlab.Packet, bool) {
	a := addr.String()
	for _, p := range pkts {
		if !p.Time.After(after) || p.Dst.String() != "ff:ff:ff:ff:ff:ff" || (not != "" && strings.EqualFold(p.Src.String(), not)) {
			continue
		}
		if strings.HasPrefix(p.Line, "Reply "+a+" is-at") ||
			strings.HasPrefix(p.Line, "Request who-has "+a+" tell "+a+",") {
			return p, true
		}
	}
	return netlab.Packet{}, false
}

// UnsolicitedNA returns the first unsolicited neighbour advertisement for
// addr in pkts (a capture with filter "icmp6") sent to all nodes after after
// by a MAC other than not (nil for any): IPv6's gratuitous ARP.
func UnsolicitedNA(pkts []netlab.Packet, addr netip.Addr, after time.Time, not string) (netlab.Packet, bool) {
	tgt := "neighbor advertisement, tgt is " + addr.String() + ","
	for _, p := range pkts {
		if !p.Time.After(after) || p.Dst.String() != "33:33:00:00:00:01" || (not != "" && strings.EqualFold(p.Src.String(), not)) {
			continue
		}
		if strings.Contains(p.Line, tgt) {
			return p, true
		}
	}
	return netlab.Packet{}, false
}

// Gratuitous returns GratuitousARP's answer for an IPv4 addr and
// UnsolicitedNA's for an IPv6 one.
func Gratuitous(pkts []netlab.Packet, addr netip.Addr, after time.Time, not string) (netlab.Packet, bool) {
	if addr.Is4() {
		return GratuitousARP(pkts, addr, after, not)
	}
	return UnsolicitedNA(pkts, addr, after, not)
}

// NodeOfAddr returns the node that owns a as its LAN address or as the address of
// its pod bridge (what a pod sees as the source of traffic kube-proxy masqueraded
// on that node), or nil.
func (l *Lab) NodeOfAddr(a netip.Addr) *netlab.Node {
	for _, n := range l.Cluster.Nodes {
		if n.Addr4() == a || n.Addr6() == a {
			return n
		}
		for _, p := range n.PodCIDRs {
			if p.Addr().Next() == a {
				return n
			}
		}
	}
	return nil
}

// RouterPath asks the router's kernel which next hop it forwards a packet from src
// to dst through, as if it arrived on its LAN interface (`ip route get dst from src
// iif eth0`, the same multipath hash as forwarding), and returns that node.
func (l *Lab) RouterPath(ctx context.Context, src, dst netip.Addr) (*netlab.Node, error) {
	out, err := l.Cluster.Router.Run(ctx, "ip", "-j", "route", "get", dst.String(), "from", src.String(), "iif", "eth0")
	if err != nil {
		return nil, fmt.Errorf("productlab: router path from %s to %s: %w", src, dst, err)
	}
	var routes []struct {
		Gateway string `json:"gateway"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil || len(routes) != 1 {
		return nil, fmt.Errorf("productlab: router path from %s to %s: unexpected ip output %q", src, dst, out)
	}
	gw, err := netip.ParseAddr(routes[0].Gateway)
	if err != nil {
		return nil, fmt.Errorf("productlab: router path from %s to %s: no gateway in %q", src, dst, out)
	}
	n := l.NodeOfAddr(gw)
	if n == nil {
		return nil, fmt.Errorf("productlab: router path from %s to %s: gateway %s is no node", src, dst, gw)
	}
	return n, nil
}

// TroubledConnections returns, from a capture, the TCP connections to service
// that began from from to to and were reset by the service's side before it
// closed them, or whose SYN got no SYN-ACK, each as its packets in capture
// order: what a failed probe looked like on the wire (which node's MAC each
// packet of its handshake went to and came from).
func TroubledConnections(pkts []netlab.Packet, service netip.AddrPort, from, to time.Time) [][]netlab.Packet {
	type conn struct {
		pkts                     []netlab.Packet
		start                    time.Time
		synAck, reset, serverFin bool
	}
	svc := fmt.Sprintf("%s.%d", service.Addr(), service.Port()) // tcpdump's form
	open := map[string]*conn{}                                  // by the client's address.port
	var all []*conn
	for _, p := range pkts {
		src, dst, what, ok := tcpdumpEnds(p.Line)
		if !ok {
			continue
		}
		flags, ok := strings.CutPrefix(what, "Flags [")
		if !ok {
			continue
		}
		fromServer := src == svc
		client := src
		if fromServer {
			client = dst
		} else if dst != svc {
			continue
		}
		c := open[client]
		if !fromServer && strings.HasPrefix(flags, "S]") && (c == nil || c.synAck || c.reset) {
			// A SYN starts a connection; a port is reused for a later one.
			c = &conn{start: p.Time}
			open[client] = c
			all = append(all, c)
		}
		if c == nil {
			continue
		}
		c.pkts = append(c.pkts, p)
		switch {
		case !fromServer:
		case strings.HasPrefix(flags, "S.]"):
			c.synAck = true
		case strings.HasPrefix(flags, "R") && !c.serverFin:
			c.reset = true
		case strings.Contains(flags, "F"):
			c.serverFin = true
		}
	}
	var out [][]netlab.Packet
	for _, c := range all {
		if !c.start.Before(from) && !c.start.After(to) && (c.reset || !c.synAck) {
			out = append(out, c.pkts)
		}
	}
	return out
}

// ClientEnd returns the client's address and port of a connection as
// TroubledConnections returns it: the source of its first packet, the
// client's SYN. ok is false when that packet has no address.port source.
func ClientEnd(conn []netlab.Packet) (netip.AddrPort, bool) {
	if len(conn) == 0 {
		return netip.AddrPort{}, false
	}
	src, _, _, ok := tcpdumpEnds(conn[0].Line)
	if !ok {
		return netip.AddrPort{}, false
	}
	return parseTcpdumpEnd(src)
}

// tcpdumpEnds splits tcpdump's description of an IP packet, "src > dst:
// what", for example "198.51.100.3.47178 > 198.51.100.128.80: Flags [S],
// seq 1, length 0".
func tcpdumpEnds(line string) (src, dst, what string, ok bool) {
	src, rest, ok := strings.Cut(line, " > ")
	if !ok {
		return "", "", "", false
	}
	dst, what, ok = strings.Cut(rest, ": ")
	return src, dst, what, ok
}

// parseTcpdumpEnd parses tcpdump's form of an address and port,
// "198.51.100.3.47178" or "2001:db8::3.47178".
func parseTcpdumpEnd(s string) (netip.AddrPort, bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// ConnectionPackets returns, in capture order, the packets of pkts from from
// to to that belong to the connection whose client end is client: the TCP
// segments from or to it (whatever the other end: kube-proxy's DNAT rewrites
// the Service's address and port to a pod's, the client's end stays), and
// the ICMP packets from or to the client's address (without -v tcpdump does
// not show which connection an ICMP error is about; neighbour discovery is
// left out).
func ConnectionPackets(pkts []netlab.Packet, client netip.AddrPort, from, to time.Time) []netlab.Packet {
	end := fmt.Sprintf("%s.%d", client.Addr(), client.Port()) // tcpdump's form
	host := client.Addr().String()
	var out []netlab.Packet
	for _, p := range pkts {
		if p.Time.Before(from) || p.Time.After(to) {
			continue
		}
		src, dst, what, ok := tcpdumpEnds(p.Line)
		if !ok {
			continue
		}
		tcp := (src == end || dst == end) && strings.HasPrefix(what, "Flags [")
		icmp := (src == host || dst == host) && (strings.HasPrefix(what, "ICMP ") || strings.HasPrefix(what, "ICMP6, ")) &&
			!strings.Contains(what, " neighbor ")
		if tcp || icmp {
			out = append(out, p)
		}
	}
	return out
}
