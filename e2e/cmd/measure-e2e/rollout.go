package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// rollout runs the layer-2 Local-policy rollout trials: a Service with
// externalTrafficPolicy Local whose one pod moves from node1 to node2 and
// back, each trial the way a Deployment's rolling update moves it (max surge
// one): the new pod becomes ready on the other node, -surge later the old
// one turns terminating but serving for -grace, then it is gone and its
// server stopped. Only the node with the ready pod may announce the address,
// so it moves with the pod; the client's connections across the move must
// all succeed.
func (m *measurement) rollout(ctx context.Context) *result {
	trials := m.cfg.rolloutTrials
	if trials == 0 {
		return nil
	}
	l := m.lab
	r := &result{name: fmt.Sprintf("layer 2, Local-policy rollout to another node (new pod ready, %v later the old one terminating-serving %v, then gone): client TCP outage", m.cfg.surge, m.cfg.grace), target: "0 failed connections in 100 trials"}
	nodes := l.Cluster.Nodes[:2]
	var pods []*netlab.Pod
	for _, n := range nodes {
		pods = append(pods, n.AddPod("l2-local-"+n.Name()))
	}
	pods[0].Serve(productlab.WebPort)
	addr := m.createService(ctx, serviceSpec{name: "l2-local", pool: l2Pool, local: true}, readyEndpoints(pods[0])...)
	fmt.Printf("\nlayer 2: Service default/l2-local at %s (Local policy), its pod moving between %s and %s\n", addr, nodes[0].Name(), nodes[1].Name())
	capture := l.Client.Capture("eth0", fmt.Sprintf("arp or tcp port %d", servicePort))
	defer capture.Stop()
	for i := range trials {
		m.rolloutTrial(ctx, i, trials, addr, pods[i%2], pods[1-i%2], capture, r)
	}
	return r
}

// rolloutTrial moves the Service's one pod from from to to (see rollout)
// while the client probes addr, records the outage in r, and prints the
// trial's line; a failed connection as the client's capture saw it and as
// both nodes did (a capture on every interface of each, for this trial).
func (m *measurement) rolloutTrial(ctx context.Context, i, trials int, addr netip.Addr, from, to *netlab.Pod,
	capture *netlab.Capture, r *result) {
	l := m.lab
	if owner := m.waitOwner(ctx, addr); owner != from.Node {
		m.fatalf("%s announces %s, want %s (its only ready pod's node)", owner.Name(), addr, from.Node.Name())
	}
	to.Serve(productlab.WebPort)
	nodes := m.captureNodes(from.Node, to.Node)
	defer nodes.stop()
	p := l.Probe(addr, servicePort, m.cfg.interval, m.cfg.timeout)
	time.Sleep(500 * time.Millisecond)
	pre := productlab.FailedAfter(p.Attempts(), time.Time{})
	event := time.Now()
	m.setEndpoints(ctx, "l2-local", netlab.Endpoint{Pod: from, State: netlab.EndpointReady}, netlab.Endpoint{Pod: to, State: netlab.EndpointReady})
	time.Sleep(m.cfg.surge)
	m.setEndpoints(ctx, "l2-local", netlab.Endpoint{Pod: from, State: netlab.EndpointTerminatingServing}, netlab.Endpoint{Pod: to, State: netlab.EndpointReady})
	time.Sleep(m.cfg.grace)
	last := time.Now()
	as, ok := m.podGone(ctx, "l2-local", to, from, p, last)
	if err := nodes.stop(); err != nil {
		m.fatalf("%v", err)
	}
	failed := productlab.FailedAfter(as, event)
	line := fmt.Sprintf("layer 2 Local rollout, trial %d/%d: %s to %s; ", i+1, trials, from.Node.Name(), to.Node.Name()) +
		r.record(as, event, ok, 15*time.Second)
	pkts, err := capture.Packets()
	if err != nil {
		m.fatalf("%v", err)
	}
	if grat, ok := productlab.Gratuitous(pkts, addr, event, from.Node.LAN.MAC.String()); ok {
		line += fmt.Sprintf("; gratuitous ARP from %s after %s", m.nodeName(grat.Src.String()), ms(grat.Time.Sub(event)))
	}
	if pre > 0 {
		line += fmt.Sprintf("; warning: %d probes failed before the event", pre)
	}
	fmt.Println(line)
	if failed > 0 {
		m.printConnections(ctx, pkts, nodes, netip.AddrPortFrom(addr, servicePort), event, last.Add(2*time.Second))
	}
}

// nodeName names the node whose LAN interface has mac, or returns mac.
func (m *measurement) nodeName(mac string) string {
	if n := m.nodeOfMAC(mac); n != nil {
		return n.Name()
	}
	return mac
}
