package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// bgpNodeFailure runs the BGP+BFD node-failure trials against a
// Cluster-policy Service that every node advertises (pods on node1 and
// node2), with the client's flow steered through node3.
func (m *measurement) bgpNodeFailure(ctx context.Context) *result {
	trials := m.cfg.bgpTrials
	if trials == 0 {
		return nil
	}
	l := m.lab
	r := &result{name: "BGP + BFD 300 ms x 3, node failure (the flow's node cut off, speaker SIGKILL): client TCP outage", target: "p99 < 1.5 s"}
	addr := m.createService(ctx, serviceSpec{name: "bgp-cluster", pool: routedPool}, readyEndpoints(m.web...)...)
	prefix := netip.PrefixFrom(addr, 32)
	fail := l.Node(failNode)
	fmt.Printf("\nBGP: Service default/bgp-cluster at %s (Cluster policy, pods on node1, node2); failing %s\n", addr, fail.Name())
	for i := range trials {
		m.waitBGPSteady(ctx, prefix, l.Cluster.Nodes...)
		src := m.steer(ctx, addr, fail)
		p := l.Probe(addr, servicePort, m.cfg.interval, m.cfg.timeout)
		time.Sleep(500 * time.Millisecond)
		pre := productlab.FailedAfter(p.Attempts(), time.Time{})

		// Watch the router's kernel route lose the node, for the line below.
		var routeGone time.Time
		var wg sync.WaitGroup
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				hops, err := m.lab.RouterKernelNextHops(wctx, prefix)
				if err == nil && !slices.Contains(hops, fail.Addr4()) {
					routeGone = time.Now()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		event := time.Now()
		if err := fail.LAN.Detach(); err != nil {
			m.fatalf("%v", err)
		}
		l.KillSpeaker(fail)
		ok := recovered(p, event, 20*time.Second)
		wg.Wait()
		cancel()
		time.Sleep(500 * time.Millisecond)
		as := p.Stop()
		line := fmt.Sprintf("BGP node failure, trial %d/%d: client %s via %s; ", i+1, trials, src, fail.Name()) +
			r.record(as, event, ok, 20*time.Second)
		if !routeGone.IsZero() {
			line += fmt.Sprintf("; router's kernel route lost %s after %s", fail.Name(), ms(routeGone.Sub(event)))
		}
		if pre > 0 {
			line += fmt.Sprintf("; warning: %d probes failed before the failure", pre)
		}
		fmt.Println(line)

		if err := fail.LAN.Attach(); err != nil {
			m.fatalf("%v", err)
		}
		l.StartSpeaker(fail)
		l.WaitSpeakerReady(fail)
	}
	return r
}

// waitBGPSteady waits (3 minutes at most) until the router's kernel route to
// prefix goes through exactly the nodes want and every node's BGP session is
// established with BFD up, all of it without a break for m.cfg.settle.
func (m *measurement) waitBGPSteady(ctx context.Context, prefix netip.Prefix, want ...*netlab.Node) {
	l := m.lab
	r := l.Cluster.Router
	wantHops := nodeAddrs(want...)
	var since time.Time
	var why string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		why = ""
		hops, err := m.lab.RouterKernelNextHops(ctx, prefix)
		if err != nil {
			why = err.Error()
		} else if !slices.Equal(hops, wantHops) {
			why = fmt.Sprintf("router's kernel next hops %v, want %v", hops, wantHops)
		}
		if why == "" {
			why = m.sessionsDown(ctx, r)
		}
		if why != "" {
			since = time.Time{}
		} else if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) >= m.cfg.settle {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	m.fatalf("BGP not steady after 3 minutes: %s", why)
}

// sessionsDown describes the first node whose BGP session or BFD session at
// the router is not up, or returns "".
func (m *measurement) sessionsDown(ctx context.Context, r *netlab.Router) string {
	nbrs, err := r.Neighbors(ctx)
	if err != nil {
		return err.Error()
	}
	bfd, err := r.BFDPeers(ctx)
	if err != nil {
		return err.Error()
	}
	for _, n := range m.lab.Cluster.Nodes {
		i := slices.IndexFunc(nbrs, func(b netlab.BGPNeighbor) bool { return b.Address == n.Addr4() })
		if i < 0 || !nbrs[i].Established() {
			return fmt.Sprintf("BGP session with %s not established", n.Name())
		}
		j := slices.IndexFunc(bfd, func(b netlab.BFDPeer) bool { return b.Peer == n.Addr4() })
		if j < 0 || bfd[j].Status != "up" {
			return fmt.Sprintf("BFD session with %s not up", n.Name())
		}
	}
	return ""
}

// steer picks the client's source address for the routed pool so that the
// router's multipath hash sends the flow to addr through node via: the
// client's own address if it does, else the first of 198.51.100.20 and up
// (added to the client as needed) that does. It checks with a connection that
// the flow really went through via (kube-proxy masquerades Cluster-policy
// traffic, so the pod sees via's address) and returns the source.
func (m *measurement) steer(ctx context.Context, addr netip.Addr, via *netlab.Node) netip.Addr {
	l := m.lab
	c := l.Client
	cands := []netip.Addr{c.Addr4()}
	extra := netip.MustParseAddr("198.51.100.20")
	for range 30 {
		cands = append(cands, extra)
		extra = extra.Next()
	}
	var why []string
	for _, src := range cands {
		n, err := l.RouterPath(ctx, src, addr)
		if err != nil {
			m.fatalf("%v", err)
		}
		if n != via {
			continue
		}
		if src != c.Addr4() && !m.clientHas(ctx, src) {
			c.AddAddr("eth0", netip.PrefixFrom(src, netlab.LANv4.Bits()))
		}
		if _, err := c.Run(ctx, "ip", "route", "replace", netlab.RoutedPoolV4.String(),
			"via", l.Cluster.Router.Addr4().String(), "src", src.String()); err != nil {
			m.fatalf("%v", err)
		}
		reply, err := l.Connect(ctx, addr, servicePort)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", src, err))
			continue
		}
		if got := l.NodeOfAddr(reply.Client.Addr()); got != via {
			why = append(why, fmt.Sprintf("%s: the router says %s but the pod saw %s", src, via.Name(), reply.Client.Addr()))
			continue
		}
		return src
	}
	m.fatalf("no client source address takes the flow to %s through %s: %v", addr, via.Name(), why)
	return netip.Addr{}
}

// clientHas reports whether the client already has the address src.
func (m *measurement) clientHas(ctx context.Context, src netip.Addr) bool {
	out, err := m.lab.Client.Run(ctx, "ip", "-o", "addr", "show", "to", src.String())
	return err == nil && len(out) > 0
}

// lastEndpoint runs the last-local-endpoint trials (graceful: the way a pod
// is deleted; otherwise abruptly) against a Local-policy Service with one
// ready pod on each of node1 and node2, on the node the client's flow uses.
func (m *measurement) lastEndpoint(ctx context.Context, graceful bool) *result {
	trials := m.cfg.endpointTrials
	if trials == 0 {
		return nil
	}
	r := &result{name: "BGP, last local endpoint removed abruptly (gone from the EndpointSlice, server stopped): client TCP outage", target: "< 1 s"}
	if graceful {
		r.name = fmt.Sprintf("BGP, last local endpoint removed as a pod is deleted (terminating-serving %v, then gone): client TCP outage", m.cfg.grace)
		r.target = "0"
	}
	addr, pods := m.localService(ctx)
	for i := range trials {
		m.lastEndpointTrial(ctx, graceful, i, trials, addr, pods, r)
	}
	return r
}

// lastEndpointTrial removes the Local-policy Service's endpoint on the node
// the client's flow uses (see lastEndpoint) while the client probes addr,
// records the outage in r, prints the trial's line and, for a failed
// connection, how the router forwarded it, how the nodes answered, and what
// both pods' nodes saw of it on every interface (captures for this trial).
func (m *measurement) lastEndpointTrial(ctx context.Context, graceful bool, i, trials int, addr netip.Addr, pods []*netlab.Pod, r *result) {
	l := m.lab
	m.waitBGPSteady(ctx, netip.PrefixFrom(addr, 32), pods[0].Node, pods[1].Node)
	reply := l.WaitConnect(addr, servicePort, 30*time.Second, nil)
	x := slices.IndexFunc(pods, func(p *netlab.Pod) bool { return p.Name == reply.Pod })
	if x < 0 {
		m.fatalf("pod %q answered for %s, not one of the Service's", reply.Pod, addr)
	}
	gone, other := pods[x], pods[1-x]
	routerSays := "?"
	if n, err := l.RouterPath(ctx, reply.Client.Addr(), addr); err == nil {
		routerSays = n.Name()
	}

	// The router's capture shows to which node it forwarded each of the
	// client's packets, the client's the nodes' answers.
	// ICMP too: an error a node or the router answers with (a network
	// unreachable was seen once, from an unknown sender) is printed.
	filter := fmt.Sprintf("tcp port %d or icmp", servicePort)
	rcap, ccap := l.Cluster.Router.Capture("eth0", filter), l.Client.Capture("eth0", filter)
	defer rcap.Stop()
	defer ccap.Stop()
	nodes := m.captureNodes(pods[0].Node, pods[1].Node)
	defer nodes.stop()
	p := l.Probe(addr, servicePort, m.cfg.interval, m.cfg.timeout)
	time.Sleep(500 * time.Millisecond)
	pre := productlab.FailedAfter(p.Attempts(), time.Time{})
	event := time.Now()
	last := event
	if graceful {
		m.setEndpoints(ctx, "bgp-local", netlab.Endpoint{Pod: gone, State: netlab.EndpointTerminatingServing},
			netlab.Endpoint{Pod: other, State: netlab.EndpointReady})
		time.Sleep(m.cfg.grace)
		last = time.Now()
	}
	as, ok := m.podGone(ctx, "bgp-local", other, gone, p, last)
	failed := productlab.FailedAfter(as, event)
	line := fmt.Sprintf("BGP last local endpoint (%s), trial %d/%d: flow via %s (router: %s); ",
		map[bool]string{true: "graceful", false: "abrupt"}[graceful], i+1, trials, gone.Node.Name(), routerSays) +
		r.record(as, event, ok, 15*time.Second)
	if pre > 0 {
		line += fmt.Sprintf("; warning: %d probes failed before the removal", pre)
	}
	fmt.Println(line)
	m.printRouted(ctx, rcap, ccap, nodes, netip.AddrPortFrom(addr, servicePort), event, last.Add(2*time.Second), failed > 0)

	// The pod comes back (a new one in a real cluster): serving, ready.
	gone.Serve(productlab.WebPort)
	m.setEndpoints(ctx, "bgp-local", readyEndpoints(pods...)...)
}

// localService creates, on first use, the Local-policy Service bgp-local in
// the routed pool with one pod on each of node1 and node2, and returns its
// address and pods.
func (m *measurement) localService(ctx context.Context) (netip.Addr, []*netlab.Pod) {
	if m.localAddr.IsValid() {
		return m.localAddr, m.localPods
	}
	l := m.lab
	for _, n := range l.Cluster.Nodes[:2] {
		p := n.AddPod("bgp-local-" + n.Name())
		p.Serve(productlab.WebPort)
		m.localPods = append(m.localPods, p)
	}
	m.localAddr = m.createService(ctx, serviceSpec{name: "bgp-local", pool: routedPool, local: true}, readyEndpoints(m.localPods...)...)
	fmt.Printf("\nBGP: Service default/bgp-local at %s (Local policy, pods on node1, node2)\n", m.localAddr)
	return m.localAddr, m.localPods
}

// setEndpoints writes the Service's EndpointSlices.
func (m *measurement) setEndpoints(ctx context.Context, service string, eps ...netlab.Endpoint) {
	if err := m.lab.Cluster.SetEndpoints(ctx, namespace, service, eps...); err != nil {
		m.fatalf("%v", err)
	}
}

// podGone takes the last step of removing the pod gone: the Service's endpoints
// become left alone (ready), gone's server stops, and the client's prober p
// stops a second after the client recovered (15 s after last at most). It
// returns p's attempts and whether the client recovered.
func (m *measurement) podGone(ctx context.Context, service string, left, gone *netlab.Pod, p *productlab.Prober, last time.Time) ([]productlab.Attempt, bool) {
	m.setEndpoints(ctx, service, netlab.Endpoint{Pod: left, State: netlab.EndpointReady})
	if err := gone.Server.Stop(5 * time.Second); err != nil {
		fmt.Printf("  stop the server of %s: %v\n", gone.Name, err)
	}
	ok := recovered(p, last, 15*time.Second)
	time.Sleep(time.Second)
	return p.Stop(), ok
}

// printRouted stops the router's, the client's and the nodes' captures and,
// when troubled, prints each connection begun from 1 s before event until
// until that was reset or got no SYN-ACK, as the router forwarded it and the
// nodes answered (see printTroubled), and what the nodes saw of it (see
// printOnNodes).
func (m *measurement) printRouted(ctx context.Context, router, client *netlab.Capture, nodes nodeCaptures, service netip.AddrPort, event, until time.Time, troubled bool) {
	rp, err := router.Stop()
	if err != nil {
		m.fatalf("%v", err)
	}
	cp, err := client.Stop()
	if err != nil {
		m.fatalf("%v", err)
	}
	if err := nodes.stop(); err != nil {
		m.fatalf("%v", err)
	}
	if !troubled {
		return
	}
	// The router sees the client's packets and forwards them on the same
	// interface; the nodes answer the client directly.
	clientMAC := m.lab.Client.Links()[0].MAC
	pkts := rp
	for _, p := range cp {
		if !slices.Equal(p.Src, clientMAC) {
			pkts = append(pkts, p)
		}
	}
	slices.SortStableFunc(pkts, func(a, b netlab.Packet) int { return a.Time.Compare(b.Time) })
	m.printConnections(ctx, pkts, nodes, service, event, until)
	m.printICMP(pkts, event, until)
}

// printICMP prints the ICMP packets of pkts from 1 s before event until
// until, with the time from the event and the hosts (by MAC) they went from
// and to.
func (m *measurement) printICMP(pkts []netlab.Packet, event, until time.Time) {
	for _, p := range pkts {
		if !strings.Contains(p.Line, ": ICMP ") || p.Time.Before(event.Add(-time.Second)) || p.Time.After(until) {
			continue
		}
		fmt.Printf("    ICMP %+8s %s > %s: %s\n", ms(p.Time.Sub(event)), m.hostOfMAC(p.Src), m.hostOfMAC(p.Dst), p.Line)
	}
}
