package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// nodeCapture is a capture on every interface of a node taking part in a
// trial: what the node did with a failed connection's packets (arrived on
// eth0, went to a pod's veth, forwarded to another node, or nothing).
type nodeCapture struct {
	name    string
	node    *netlab.Node
	capture *netlab.Capture
	stopped bool
	pkts    []netlab.Packet // once stopped
}

// nodeCaptures are the captures of a trial's nodes.
type nodeCaptures []*nodeCapture

// captureNodes starts a capture on every interface of each of nodes: the
// Service's port, the pods' port (kube-proxy's DNAT rewrites the one to the
// other) and ICMP.
func (m *measurement) captureNodes(nodes ...*netlab.Node) nodeCaptures {
	filter := fmt.Sprintf("tcp port %d or tcp port %d or icmp", servicePort, productlab.WebPort)
	if m.cfg.ipv6 {
		filter += " or icmp6"
	}
	var cs nodeCaptures
	for _, n := range nodes {
		cs = append(cs, &nodeCapture{name: n.Name(), node: n, capture: n.Capture("any", filter)})
	}
	return cs
}

// stop stops the captures not stopped yet and keeps their packets; a trial
// defers it, so calling it again does nothing.
func (cs nodeCaptures) stop() error {
	var errs []error
	for _, c := range cs {
		if c.stopped {
			continue
		}
		c.stopped = true
		pkts, err := c.capture.Stop()
		c.pkts = pkts
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// nodePacket is a packet a node captured.
type nodePacket struct {
	node string
	netlab.Packet
}

// onNodes returns, in time order, the packets of the connection whose
// client end is client that the stopped captures cs saw from from to to
// (see productlab.ConnectionPackets), and the names of the nodes that saw
// none.
func onNodes(cs nodeCaptures, client netip.AddrPort, from, to time.Time) (pkts []nodePacket, none []string) {
	for _, c := range cs {
		got := productlab.ConnectionPackets(c.pkts, client, from, to)
		if len(got) == 0 {
			none = append(none, c.name)
		}
		for _, p := range got {
			pkts = append(pkts, nodePacket{node: c.name, Packet: p})
		}
	}
	slices.SortStableFunc(pkts, func(a, b nodePacket) int { return a.Time.Compare(b.Time) })
	return pkts, none
}

// printOnNodes prints, under a failed connection's lines as the client saw
// them (conn), its packets on the nodes of cs, each with the node, the
// interface and the direction, the time from event, and the connection
// tracking entries the nodes still have for it.
func (m *measurement) printOnNodes(ctx context.Context, conn []netlab.Packet, cs nodeCaptures, event time.Time) {
	client, ok := productlab.ClientEnd(conn)
	if len(cs) == 0 || !ok {
		return
	}
	// From just before the client's first packet (another connection may
	// have used the port before) until well after its last.
	from, to := conn[0].Time.Add(-50*time.Millisecond), conn[len(conn)-1].Time.Add(2*time.Second)
	pkts, none := onNodes(cs, client, from, to)
	if len(pkts) > 0 {
		fmt.Printf("    the same connection (client %s) on the nodes, every interface:\n", client)
	}
	for _, p := range pkts {
		fmt.Printf("      %+8s %s %s %s: %s\n", ms(p.Time.Sub(event)), p.node, p.Iface, p.Dir, p.Line)
	}
	for _, name := range none {
		fmt.Printf("    %s: no packet of the connection (client %s) on any interface\n", name, client)
	}
	for _, c := range cs {
		// A packet missing above may be the capture's loss.
		switch n, ok := c.capture.Dropped(); {
		case !ok:
			fmt.Printf("    %s: how many packets its capture dropped is unknown\n", c.name)
		case n > 0:
			fmt.Printf("    %s: its capture dropped %d packets in the trial\n", c.name, n)
		}
		fmt.Printf("    %s conntrack: %s\n", c.name, conntrack(ctx, c.node, client))
	}
}

// conntrack returns the connection tracking entries node has for TCP
// connections from client, one a line, or what went wrong.
func conntrack(ctx context.Context, node *netlab.Node, client netip.AddrPort) string {
	args := []string{"conntrack", "-L", "-p", "tcp", "--orig-src", client.Addr().String(),
		"--orig-port-src", strconv.Itoa(int(client.Port()))}
	if client.Addr().Is6() {
		args = append(args, "-f", "ipv6")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := node.Run(ctx, args...)
	if err != nil {
		return err.Error()
	}
	entries := conntrackEntries(out)
	if len(entries) == 0 {
		return "no entry"
	}
	return strings.Join(entries, "\n      ")
}

// conntrackEntries returns the entries of `conntrack -L`'s output (its
// standard output and error): every line but the summary
// "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.".
func conntrackEntries(out string) []string {
	var entries []string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "conntrack v") {
			entries = append(entries, line)
		}
	}
	return entries
}
