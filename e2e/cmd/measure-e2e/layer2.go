package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// l2Kind is how a layer-2 trial makes the announcing node fail.
type l2Kind int

const (
	l2NodeFailure l2Kind = iota // LAN port off the bridge, then SIGKILL to the speaker
	l2Graceful                  // SIGTERM to the speaker
	l2SpeakerKill               // SIGKILL to the speaker, the node stays up
)

func (k l2Kind) String() string {
	return [...]string{"node failure", "graceful stop", "speaker killed, node up"}[k]
}

// layer2 runs the layer-2 trials against a Cluster-policy Service whose
// address node3 announces (pods on node1 and node2).
func (m *measurement) layer2(ctx context.Context) []*result {
	c := m.cfg
	if c.l2Trials+c.gracefulTrials+c.speakerKillTrials == 0 {
		return nil
	}
	l := m.lab
	addr := m.l2AddrRankingFirst(failNode)
	m.createService(ctx, serviceSpec{name: "l2", pool: l2Pool, addr: addr}, readyEndpoints(m.web...)...)
	owner := m.waitOwner(ctx, addr)
	fmt.Printf("\nlayer 2: Service default/l2 at %s (pods on node1, node2), announced by %s\n", addr, owner.Name())
	// ARP for the takeovers; the Service's TCP to show what a failed
	// connection looked like on the wire.
	capture := l.Client.Capture("eth0", fmt.Sprintf("arp or icmp6 or tcp port %d", servicePort))

	outage := map[l2Kind]*result{}
	takeover := map[l2Kind]*result{}
	for _, k := range []l2Kind{l2NodeFailure, l2Graceful, l2SpeakerKill} {
		outage[k] = &result{name: "layer 2, " + k.String() + ": client TCP outage"}
		takeover[k] = &result{name: "layer 2, " + k.String() + ": kill to the new owner's " + m.unsolicited() + " at the client"}
	}
	outage[l2NodeFailure].target = "p99 < 300 ms"
	outage[l2Graceful].target = "< 0.5 s"
	outage[l2SpeakerKill].target = "0 (kube-proxy still forwards)"
	for _, k := range []l2Kind{l2NodeFailure, l2Graceful, l2SpeakerKill} {
		trials := map[l2Kind]int{l2NodeFailure: c.l2Trials, l2Graceful: c.gracefulTrials, l2SpeakerKill: c.speakerKillTrials}[k]
		for i := range trials {
			owner = m.l2Trial(ctx, k, i, trials, addr, owner, capture, outage[k], takeover[k])
		}
	}
	return []*result{outage[l2NodeFailure], takeover[l2NodeFailure], outage[l2Graceful], takeover[l2Graceful],
		outage[l2SpeakerKill], takeover[l2SpeakerKill]}
}

// l2Trial makes owner fail the way k says while the client probes addr,
// records the outage and the takeover, brings the node back, and returns who
// owns addr afterwards.
func (m *measurement) l2Trial(ctx context.Context, k l2Kind, i, trials int, addr netip.Addr, owner *netlab.Node,
	capture *netlab.Capture, outage, takeover *result) *netlab.Node {
	l := m.lab
	p := l.Probe(addr, servicePort, m.cfg.interval, m.cfg.timeout)
	time.Sleep(500 * time.Millisecond)
	if productlab.FailedAfter(p.Attempts(), time.Time{}) > 0 {
		fmt.Printf("  warning: %d probes failed before the event\n", productlab.FailedAfter(p.Attempts(), time.Time{}))
	}
	event := time.Now()
	switch k {
	case l2NodeFailure:
		if err := owner.LAN.Detach(); err != nil {
			m.fatalf("%v", err)
		}
		l.KillSpeaker(owner)
	case l2Graceful:
		l.StopSpeaker(owner)
	case l2SpeakerKill:
		l.KillSpeaker(owner)
	}
	// The client recovers (or, speaker killed, never notices); then wait for
	// the takeover to show on the wire, and a little more.
	ok := recovered(p, event, 15*time.Second)
	var grat netlab.Packet
	gotGrat := false
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pkts, err := capture.Packets()
		if err != nil {
			m.fatalf("%v", err)
		}
		if grat, gotGrat = productlab.Gratuitous(pkts, addr, event, owner.LAN.MAC.String()); gotGrat {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	as := p.Stop()
	failed := productlab.FailedAfter(as, event)
	line := fmt.Sprintf("layer 2, %s, trial %d/%d: owner %s; ", k, i+1, trials, owner.Name()) +
		outage.record(as, event, ok, 15*time.Second)
	if gotGrat {
		takeover.add(grat.Time.Sub(event))
		newOwner := "?"
		if n := m.nodeOfMAC(grat.Src.String()); n != nil {
			newOwner = n.Name()
		}
		line += fmt.Sprintf("; %s from %s after %s", m.unsolicited(), newOwner, ms(grat.Time.Sub(event)))
	} else {
		takeover.lost++
		line += "; no " + m.unsolicited() + " from another node within 15s"
	}
	fmt.Println(line)
	if failed > 0 {
		m.printTroubled(ctx, capture, netip.AddrPortFrom(addr, servicePort), event, event.Add(2*time.Second))
	}

	// Bring the node back: its port on the bridge, its speaker running and
	// ready, one node answering for the address.
	if k == l2NodeFailure {
		if err := owner.LAN.Attach(); err != nil {
			m.fatalf("%v", err)
		}
	}
	l.StartSpeaker(owner)
	l.WaitSpeakerReady(owner)
	return m.waitOwner(ctx, addr)
}

// waitOwner waits (60 s at most) until exactly one node answers ARP for addr,
// the same one three times in a row, and returns it.
func (m *measurement) waitOwner(ctx context.Context, addr netip.Addr) *netlab.Node {
	l := m.lab
	var last *netlab.Node
	steady := 0
	var why string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var macs []net.HardwareAddr
		var err error
		if addr.Is4() {
			macs, err = l.Client.ARPAll(ctx, addr, 300*time.Millisecond)
		} else {
			macs, err = l.NDPAll(ctx, addr)
		}
		switch {
		case err != nil:
			why = err.Error()
			steady = 0
		case len(macs) != 1:
			why = fmt.Sprintf("%d MACs answer: %v", len(macs), macs)
			steady = 0
		default:
			n := m.nodeOfMAC(macs[0].String())
			if n == nil {
				why = fmt.Sprintf("%s answers, no node's MAC", macs[0])
				steady = 0
				break
			}
			if n == last {
				steady++
			} else {
				last, steady = n, 1
			}
			if steady >= 3 {
				return n
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.fatalf("no single steady owner of %s after 60s: %s", addr, why)
	return nil
}

// nodeOfMAC returns the node whose LAN interface has mac, or nil.
func (m *measurement) nodeOfMAC(mac string) *netlab.Node {
	for _, n := range m.lab.Cluster.Nodes {
		if strings.EqualFold(n.LAN.MAC.String(), mac) {
			return n
		}
	}
	return nil
}

// printTroubled prints, from the client's capture, each connection begun from 1 s
// before event until until that was reset or got no SYN-ACK: its packets,
// with the time from the event and the nodes (by MAC) they went to and came from.
func (m *measurement) printTroubled(ctx context.Context, capture *netlab.Capture, service netip.AddrPort, event, until time.Time) {
	pkts, err := capture.Packets()
	if err != nil {
		m.fatalf("%v", err)
	}
	m.printConnections(ctx, pkts, nil, service, event, until)
}

// printConnections prints the troubled connections of pkts (see
// printTroubled), each followed by what the stopped captures of nodes saw of
// it (see printOnNodes).
func (m *measurement) printConnections(ctx context.Context, pkts []netlab.Packet, nodes nodeCaptures, service netip.AddrPort, event, until time.Time) {
	for _, conn := range productlab.TroubledConnections(pkts, service, event.Add(-time.Second), until) {
		fmt.Println("    a failed connection on the wire:")
		for _, p := range conn {
			fmt.Printf("      %+8s %s > %s: %s\n", ms(p.Time.Sub(event)), m.hostOfMAC(p.Src), m.hostOfMAC(p.Dst), p.Line)
		}
		m.printOnNodes(ctx, conn, nodes, event)
	}
}

// hostOfMAC names the node, client or router with the Ethernet address mac,
// or returns mac.
func (m *measurement) hostOfMAC(mac net.HardwareAddr) string {
	if n := m.nodeOfMAC(mac.String()); n != nil {
		return n.Name()
	}
	for _, h := range []*netlab.Host{m.lab.Client, m.lab.Cluster.Router.Host} {
		for _, link := range h.Links() {
			if slices.Equal(link.MAC, mac) {
				return h.Name()
			}
		}
	}
	return mac.String()
}

// unsolicited names the announcement a new owner sends: a gratuitous ARP
// reply over IPv4, an unsolicited neighbour advertisement over IPv6.
func (m *measurement) unsolicited() string {
	if m.cfg.ipv6 {
		return "unsolicited neighbour advertisement"
	}
	return "gratuitous ARP"
}
