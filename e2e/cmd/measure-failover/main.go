// Command measure-failover measures Herald's layer-2 speaker in the network
// lab (run as root, from the e2e module):
//
//	go run ./cmd/measure-failover [-trials 20] [-graceful-trials 20] [-reaction-trials 50] [-memory [-services 10000] [-endpoints 5] [-scale-reaction-trials 10] [-heap-profile=false]] [-speaker herald|metallb] [-speaker-args FLAGS]
//
// It starts a control plane and three node hosts running herald-speaker (see
// package speakerlab) and a client that probes a load-balancer address
// continuously, by ARP (a request every 10 ms from a packet socket) and TCP
// (a new connection every 10 ms, 150 ms timeout, to a listener standing in
// for kube-proxy and a pod). It reports, as p50/p99/max over the trials:
//
//   - node failure: kill -9 the announcing speaker and cut its node's link
//     from the bridge; the client-observed outage (last answer before the
//     kill to first answer after, by ARP and by TCP) and the takeover time
//     (kill until tcpdump on the client sees the new owner's gratuitous ARP);
//   - graceful stop: SIGTERM the announcing speaker; the same outages;
//   - reaction: an EndpointSlice change moving a Local Service's only
//     endpoint, until the client sees the new node's gratuitous ARP (the API
//     write included);
//   - with -memory: the speakers' resident memory with -services Services
//     (IPv6, so the pool is large enough) and -endpoints endpoints each,
//     how long they took to announce all of them after a start, how many of
//     20 sampled addresses exactly one node answers by NDP, and the reaction
//     at that scale.
//
// Between trials the node comes back and the address returns to it.
//
// With -speaker metallb the same lab runs MetalLB's speaker instead
// (v0.15.3, built from go.universe.tf/metallb by package e2e/metallb, one per
// node, without memberlist), configured with the same pools as one
// IPAddressPool and an L2Advertisement; its controller does not run, since
// the lab writes every Service's address for both. The reaction and memory
// measurements are the same, but for the pause between reaction trials (6 s
// instead of 400 ms, see metalLB) and Herald's reconcile times, which
// MetalLB does not export; the failover trials rely on Herald's ranking and
// membership and are refused (-trials 0 -graceful-trials 0).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/e2e/metallb"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
	"github.com/herald-dev/herald/speaker"
)

func main() {
	trials := flag.Int("trials", 20, "node-failure trials")
	graceful := flag.Int("graceful-trials", 20, "graceful-stop trials")
	reaction := flag.Int("reaction-trials", 50, "EndpointSlice reaction trials")
	memory := flag.Bool("memory", false, "also measure resident memory with -services Services")
	services := flag.Int("services", 10000, "Services for -memory")
	endpoints := flag.Int("endpoints", 5, "endpoints per Service for -memory")
	scaleReaction := flag.Int("scale-reaction-trials", 10, "EndpointSlice reaction trials with the -memory Services in place")
	heapProfile := flag.Bool("heap-profile", true, "with -memory: run the speakers with --profiling, save the first one's heap profile (building it costs that speaker memory) and its CPU profile over the scale reaction trials")
	dir := flag.String("dir", "", "directory for logs (default a temporary one)")
	speakerEnv := flag.String("speaker-env", "", "extra environment for the speakers, space-separated (for example GOMEMLIMIT=80MiB)")
	speakerArgs := flag.String("speaker-args", "", "extra flags for herald-speaker, space-separated (for example --startup-member-wait=0, to compare with the start-up wait off)")
	speakerImpl := flag.String("speaker", "herald", "the speaker to measure: herald, or metallb (MetalLB's speaker, built from go.universe.tf/metallb; -reaction-trials and -memory only)")
	flag.Parse()

	impl := herald
	switch *speakerImpl {
	case "herald":
	case "metallb":
		impl = metalLB
		if *trials > 0 || *graceful > 0 {
			fmt.Fprintln(os.Stderr, "-speaker metallb: the failover trials rely on Herald's ranking and membership; set -trials 0 -graceful-trials 0")
			os.Exit(2)
		}
	default:
		fmt.Fprintf(os.Stderr, "-speaker %q: want herald or metallb\n", *speakerImpl)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dir == "" {
		d, err := os.MkdirTemp("", "measure-failover-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	sess, err := netlab.NewSession(ctx, "measure-failover", *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer sess.Close()
	m := &measurement{sess: sess, impl: impl}
	opts := speakerlab.Options{Dir: filepath.Join(*dir, "logs"), SpeakerEnv: strings.Fields(*speakerEnv), SpeakerArgs: strings.Fields(*speakerArgs)}
	if *memory && *heapProfile {
		// The memory run saves the first speaker's heap profile.
		opts.SpeakerArgs = append(opts.SpeakerArgs, "--profiling")
	}
	var mlb metallb.Binaries
	if impl.name == metalLB.name {
		mlb = metallb.Build(sess)
		// MetalLB's speakers start once its configuration is in place.
		opts.Speaker, opts.NoSpeakers = metalLBSpeaker(mlb), true
	}
	m.lab = speakerlab.New(sess, opts)
	fmt.Printf("lab up; logs in %s\n", *dir)
	if impl.name == metalLB.name {
		m.setUpMetalLB(ctx, mlb)
		fmt.Printf("MetalLB %s's speakers up (%s)\n", metallb.Version, mlb.Speaker)
	}
	m.setUp(ctx)

	var results []result
	if *trials > 0 {
		results = append(results, m.failover(ctx, *trials, false)...)
	}
	if *graceful > 0 {
		results = append(results, m.failover(ctx, *graceful, true)...)
	}
	if *reaction > 0 {
		results = append(results, m.reaction(ctx, *reaction))
	}
	fmt.Println()
	fmt.Println("| measurement | trials | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range results {
		fmt.Println(r.row())
	}
	if *memory {
		m.memory(ctx, *services, *endpoints, *scaleReaction, *dir, *heapProfile)
	}
}

type measurement struct {
	sess    *netlab.Session
	impl    implementation
	lab     *speakerlab.Lab
	watch   *speakerlab.ARPWatcher
	addr    netip.Addr // the Cluster Service's address, for failover
	local   netip.Addr // the Local Service's address, for reaction
	ranking []string
	tcpdump *netlab.Process

	mu      sync.Mutex
	arp     []speakerlab.ARPFrame // frames about addr or local
	tcpOK   []tcpProbe            // successful TCP probes
	probing bool
}

func (m *measurement) fatal(format string, args ...any) { m.sess.Fatalf(format, args...) }

func (m *measurement) setUp(ctx context.Context) {
	l := m.lab
	m.addr = netlab.NthAddr(netlab.L2PoolV4.Addr(), 10)
	m.local = netlab.NthAddr(netlab.L2PoolV4.Addr(), 11)
	l.AddVIP(m.addr)
	if err := l.CreateService(ctx, speakerlab.ServiceSpec{Name: "failover", Addresses: []netip.Addr{m.addr}}); err != nil {
		m.fatal("%v", err)
	}
	if err := l.SetEndpoints(ctx, "failover", discoveryv1.AddressTypeIPv4, speakerlab.EndpointState{Node: "node1"}); err != nil {
		m.fatal("%v", err)
	}
	if err := l.CreateService(ctx, speakerlab.ServiceSpec{Name: "reaction", Local: true, Addresses: []netip.Addr{m.local}}); err != nil {
		m.fatal("%v", err)
	}
	m.ranking = speaker.Ranking(m.addr, l.NodeNames())
	w, err := l.WatchARP()
	if err != nil {
		m.fatal("%v", err)
	}
	m.sess.Cleanup(w.Close)
	m.watch = w
	w.OnFrame(func(f speakerlab.ARPFrame) {
		if f.SenderIP != m.addr && f.SenderIP != m.local {
			return
		}
		m.mu.Lock()
		m.arp = append(m.arp, f)
		m.mu.Unlock()
	})
	m.tcpdump = l.Client.StartProcess(netlab.ProcessSpec{Name: "tcpdump", Args: []string{
		"tcpdump", "-i", l.ClientLink.Name, "-n", "-e", "-l", "-tt", "--immediate-mode", "arp"}})
	if err := m.tcpdump.WaitLog(ctx, "listening on"); err != nil {
		m.fatal("%v", err)
	}
	go m.probeLoop(ctx)
	owner := m.ranking[0]
	if m.impl.name != herald.name {
		owner = "" // another implementation elects otherwise
	}
	m.waitOwner(ctx, m.addr, owner)
}

// tcpProbe is a successful TCP probe: when it started, which node answered.
type tcpProbe struct {
	start time.Time
	node  string
}

// probeLoop sends an ARP request for addr and opens a TCP connection to it
// every 10 ms while probing is on.
func (m *measurement) probeLoop(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		on := m.probing
		m.mu.Unlock()
		if !on {
			continue
		}
		_ = m.watch.Request(m.addr)
		go func() {
			start := time.Now()
			pctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
			defer cancel()
			if node, err := m.lab.ConnectVIP(pctx, m.addr); err == nil {
				m.mu.Lock()
				m.tcpOK = append(m.tcpOK, tcpProbe{start, node})
				m.mu.Unlock()
			}
		}()
	}
}

// waitOwner waits until only node's MAC (any one node's when node is "")
// answers ARP for addr, steadily for a second.
func (m *measurement) waitOwner(ctx context.Context, addr netip.Addr, node string) {
	mac := "any node's MAC"
	if node != "" {
		mac = m.lab.Node(node).Link.MAC.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	var steadyOn string // the node answering alone since steadySince
	var steadySince time.Time
	for time.Now().Before(deadline) {
		got, err := m.lab.Answering(ctx, addr)
		if err == nil && len(got) == 1 && m.lab.Node(got[0]) != nil && (node == "" || got[0] == node) {
			if got[0] != steadyOn {
				steadyOn, steadySince = got[0], time.Now()
			}
			if time.Since(steadySince) > time.Second {
				return
			}
		} else {
			steadyOn = ""
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.fatal("%s is not answered by %s (%s) alone after 30s\n%s", addr, node, mac, m.lab.Logs())
}

// failover runs node-failure (graceful false) or graceful-stop trials.
func (m *measurement) failover(ctx context.Context, trials int, graceful bool) []result {
	kind := "node failure (kill -9 + link cut)"
	if graceful {
		kind = "graceful stop (SIGTERM)"
	}
	arpOut := result{name: kind + ": client ARP outage"}
	tcpOut := result{name: kind + ": client TCP outage"}
	takeover := result{name: kind + ": kill to new owner's gratuitous ARP (tcpdump)"}
	owner := m.lab.Node(m.ranking[0])
	next := m.lab.Node(m.ranking[1])
	for i := range trials {
		m.mu.Lock()
		m.arp, m.tcpOK, m.probing = nil, nil, true
		m.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		// The failure instant: the link is cut first (the node is gone for
		// its neighbours), then the speaker is killed.
		kill := time.Now()
		if graceful {
			if err := m.lab.StopSpeaker(owner); err != nil {
				m.fatal("stop speaker: %v", err)
			}
		} else {
			if err := owner.Link.Detach(); err != nil {
				m.fatal("%v", err)
			}
			m.lab.KillSpeaker(owner)
		}
		// Probe until TCP works again through the next node, and a bit more.
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if m.recovered(kill, next.Name) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		m.mu.Lock()
		m.probing = false
		frames, oks := slices.Clone(m.arp), slices.Clone(m.tcpOK)
		m.mu.Unlock()

		var arpOld, arpNew, tcpOld, tcpNew []time.Time
		for _, f := range frames {
			if f.SenderIP != m.addr || !f.Reply {
				continue
			}
			switch f.SenderMAC.String() {
			case owner.Link.MAC.String():
				arpOld = append(arpOld, f.At)
			case next.Link.MAC.String():
				arpNew = append(arpNew, f.At)
			}
		}
		for _, p := range oks {
			switch p.node {
			case owner.Name:
				tcpOld = append(tcpOld, p.start)
			case next.Name:
				tcpNew = append(tcpNew, p.start)
			}
		}
		a, okA := outage(arpOld, arpNew, kill)
		t, okT := outage(tcpOld, tcpNew, kill)
		g, okG := m.firstGratuitous(kill, next.Link.MAC.String())
		if !okA || !okT || !okG {
			m.fatal("trial %d: no recovery seen (ARP %v, TCP %v, gratuitous %v)\n%s", i, okA, okT, okG, m.lab.Logs())
		}
		arpOut.add(a)
		tcpOut.add(t)
		takeover.add(g.Sub(kill))
		fmt.Printf("%s trial %d: ARP outage %v, TCP outage %v, takeover %v\n", kind, i+1, a.Round(time.Millisecond), t.Round(time.Millisecond), g.Sub(kill).Round(time.Millisecond))

		if !graceful {
			if err := owner.Link.Attach(); err != nil {
				m.fatal("%v", err)
			}
		}
		m.lab.StartSpeaker(owner)
		m.lab.WaitReady(owner)
		m.lab.WaitMembers(len(m.lab.Nodes))
		m.waitOwner(ctx, m.addr, owner.Name)
	}
	return []result{arpOut, tcpOut, takeover}
}

// recovered reports whether a TCP probe that started after kill reached node.
func (m *measurement) recovered(kill time.Time, node string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.tcpOK {
		if p.start.After(kill) && p.node == node {
			return true
		}
	}
	return false
}

// outage returns the client-observed outage of a failover at kill: from
// the last answer of the old owner to the first answer of the new one after
// kill. It is zero when the new owner answered before the old one stopped.
func outage(old, new []time.Time, kill time.Time) (time.Duration, bool) {
	var first time.Time
	for _, t := range new {
		if t.After(kill) && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	var last time.Time
	for _, t := range old {
		if t.Before(first) && t.After(last) {
			last = t
		}
	}
	if first.IsZero() || last.IsZero() {
		return 0, false
	}
	return max(0, first.Sub(last)), true
}

// firstGratuitous reads tcpdump's log for the first gratuitous ARP from
// mac for m.addr after kill.
func (m *measurement) firstGratuitous(kill time.Time, mac string) (time.Time, bool) {
	f, err := os.Open(m.tcpdump.LogPath())
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	a := m.addr.String()
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		// A gratuitous packet goes to the broadcast address; replies to the
		// client's own requests do not count.
		if len(fields) < 4 || !strings.EqualFold(fields[1], mac) || !strings.HasPrefix(fields[3], "ff:ff:ff:ff:ff:ff") {
			continue
		}
		grat := strings.Contains(line, "Reply "+a+" is-at") || strings.Contains(line, "who-has "+a+" ") && strings.Contains(line, "tell "+a+",")
		if !grat {
			continue
		}
		sec, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if at.After(kill) {
			return at, true
		}
	}
	return time.Time{}, false
}

// reaction moves the Local Service's only endpoint between two nodes and
// times each change until the client sees the new node's gratuitous ARP.
func (m *measurement) reaction(ctx context.Context, trials int) result {
	r := result{name: "EndpointSlice change to new ARP owner (gratuitous ARP at the client)"}
	a, b := m.lab.Nodes[0], m.lab.Nodes[1]
	if err := m.lab.SetEndpoints(ctx, "reaction", discoveryv1.AddressTypeIPv4, speakerlab.EndpointState{Node: a.Name}); err != nil {
		m.fatal("%v", err)
	}
	m.waitOwner(ctx, m.local, a.Name)
	var slow []string
	for i := range trials {
		to := b
		if i%2 == 1 {
			to = a
		}
		seen := make(chan time.Time, 1)
		mac := to.Link.MAC.String()
		m.watch.OnFrame(func(f speakerlab.ARPFrame) {
			if f.SenderIP == m.local && f.Gratuitous() && f.SenderMAC.String() == mac {
				select {
				case seen <- f.At:
				default:
				}
			}
		})
		start := time.Now()
		if err := m.lab.SetEndpoints(ctx, "reaction", discoveryv1.AddressTypeIPv4, speakerlab.EndpointState{Node: to.Name}); err != nil {
			m.fatal("%v", err)
		}
		select {
		case at := <-seen:
			r.add(at.Sub(start))
			if d := at.Sub(start); d >= 100*time.Millisecond {
				slow = append(slow, fmt.Sprintf("%s at %s", d.Round(time.Millisecond), start.UTC().Format("15:04:05.000")))
			}
		case <-time.After(10 * time.Second):
			m.fatal("reaction trial %d: no gratuitous ARP from %s within 10s\n%s", i, to.Name, m.lab.Logs())
		}
		time.Sleep(m.impl.reactionPause)
	}
	fmt.Printf("reaction: %d trials, %v apart\n", trials, m.impl.reactionPause)
	if len(slow) > 0 {
		fmt.Printf("reaction: trials of 100 ms or more (to find them in the speaker logs): %s\n", strings.Join(slow, ", "))
	}
	return r
}

type result struct {
	name string
	ds   []time.Duration
}

func (r *result) add(d time.Duration) { r.ds = append(r.ds, d) }

// percentile returns the nearest-rank percentile p (0-100).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func (r result) row() string {
	f := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	var most time.Duration // no trials (-scale-reaction-trials 0): slices.Max would panic
	if len(r.ds) > 0 {
		most = slices.Max(r.ds)
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s |", r.name, len(r.ds), f(percentile(r.ds, 50)), f(percentile(r.ds, 99)), f(most))
}
