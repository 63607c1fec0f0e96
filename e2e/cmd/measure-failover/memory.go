package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// memory stops the speakers, creates n IPv6 Services with perService
// endpoints each (spread over the nodes), starts the speakers again, waits
// until they announce all of them, and prints each speaker's resident
// memory (now and at its peak, which includes the initial list) and how
// long they took to announce everything; then it runs reactionTrials
// reaction trials at that scale. It saves each speaker's heap profile in dir
// and prints where the live heap is (go tool pprof -top).
func (m *measurement) memory(ctx context.Context, n, perService, reactionTrials int, dir string, profile bool) {
	l := m.lab
	for _, node := range l.Nodes {
		if err := l.StopSpeaker(node); err != nil {
			m.fatal("%v", err)
		}
	}
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n || ctx.Err() != nil {
					return
				}
				name := fmt.Sprintf("mem-%05d", i)
				addr := netlab.NthAddr(netlab.L2PoolV6.Addr(), 100+i)
				if err := l.CreateService(ctx, speakerlab.ServiceSpec{Name: name, Addresses: []netip.Addr{addr}}); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
				eps := make([]speakerlab.EndpointState, perService)
				for j := range eps {
					eps[j] = speakerlab.EndpointState{Node: l.Nodes[(i+j)%len(l.Nodes)].Name}
				}
				if err := l.SetEndpoints(ctx, name, discoveryv1.AddressTypeIPv6, eps...); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
				if d := done.Add(1); d%1000 == 0 {
					fmt.Printf("memory: %d Services written (%v)\n", d, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		m.fatal("memory: %v", err)
	default:
	}
	fmt.Printf("memory: %d Services and %d endpoints written in %v\n", n, n*perService, time.Since(start).Round(time.Second))
	start = time.Now()
	for _, node := range l.Nodes {
		l.StartSpeaker(node)
	}

	// Wait until the speakers announce every address between them.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		total := m.announced(ctx)
		if int(total) >= n {
			fmt.Printf("memory: %s's speakers started and announced all %d addresses in %v\n", m.impl.name, n, time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			m.fatal("memory: speakers announce %v of %d addresses after 5 minutes\n%s", total, n, l.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // a few resyncs, status writes and GC cycles
	sum0, cnt0 := reconcileTotals(ctx, l)
	fmt.Println()
	fmt.Printf("| node | announced (NDP) | VmRSS | VmHWM | RssAnon | RssFile | mean reconcile since start | error lines in its log |\n|---|---|---|---|---|---|---|---|\n")
	for _, node := range l.Nodes {
		rss, hwm, anon, file := procMemory(node.Speaker.Pid())
		v, _ := l.Metric(ctx, node, m.impl.announced, m.impl.announcedLabels...)
		mean := "not exported"
		if m.impl.reconcile {
			sum, _ := l.Metric(ctx, node, "herald_speaker_reconcile_duration_seconds_sum")
			cnt, _ := l.Metric(ctx, node, "herald_speaker_reconcile_duration_seconds_count")
			d := time.Duration(0)
			if cnt > 0 {
				d = time.Duration(sum / cnt * float64(time.Second))
			}
			mean = d.Round(time.Millisecond).String()
		}
		errs, first := errorLines(node.Speaker.Log())
		fmt.Printf("| %s | %v | %s | %s | %s | %s | %s | %d |\n", node.Name, v, rss, hwm, anon, file, mean, errs)
		if errs > 0 {
			fmt.Printf("memory: %s's first error line: %s\n", node.Name, first)
		}
	}
	if m.impl.name == herald.name {
		// What each speaker claimed at start and handed back when the
		// others joined (the start-up wait keeps it at 0).
		for _, node := range l.Nodes {
			gained, _ := l.Metric(ctx, node, "herald_speaker_layer2_ownership_changes_total", `change="gained"`)
			lost, _ := l.Metric(ctx, node, "herald_speaker_layer2_ownership_changes_total", `change="lost"`)
			fmt.Printf("memory: %s took %v addresses since its start and handed %v of them over\n", node.Name, gained, lost)
		}
	}
	m.sampleAnswers(ctx, n)

	fmt.Println()
	fmt.Printf("| node | heap in use | heap objects | next GC at | GC cycles |\n|---|---|---|---|---|\n")
	for _, node := range l.Nodes {
		inuse, _ := l.Metric(ctx, node, "go_memstats_heap_inuse_bytes")
		objects, _ := l.Metric(ctx, node, "go_memstats_heap_objects")
		next, _ := l.Metric(ctx, node, "go_memstats_next_gc_bytes")
		cycles, _ := l.Metric(ctx, node, "go_gc_duration_seconds_count")
		fmt.Printf("| %s | %.1f MiB | %.0f | %.1f MiB | %.0f |\n", node.Name, inuse/(1<<20), objects, next/(1<<20), cycles)
	}
	if profile {
		m.heapProfile(ctx, l.Nodes[0], dir)
	}

	// The reaction time at this scale, and the steady-state reconcile time.
	// With the profiling endpoint, node1's CPU profile covers the trials
	// (each takes the reaction and the pause, about half a second).
	profiled := make(chan struct{})
	if profile {
		go func() {
			defer close(profiled)
			m.cpuProfile(ctx, l.Nodes[0], dir, time.Duration(reactionTrials)*(m.impl.reactionPause+100*time.Millisecond))
		}()
	} else {
		close(profiled)
	}
	cpu0, t0 := labCPU(), time.Now()
	r := m.reaction(ctx, reactionTrials)
	r.name += fmt.Sprintf(", with %d Services (%s)", n, m.impl.name)
	printCPU(cpu0, labCPU(), reactionTrials, time.Since(t0))
	<-profiled
	sum1, cnt1 := reconcileTotals(ctx, l)
	fmt.Println()
	fmt.Println("| measurement | trials | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Println(r.row())
	if m.impl.reconcile && cnt1 > cnt0 {
		fmt.Printf("\nmean reconcile during the reaction trials: %v over %v reconciles\n",
			time.Duration((sum1-sum0)/(cnt1-cnt0)*float64(time.Second)).Round(time.Millisecond), cnt1-cnt0)
	}
	// VmHWM is the peak since the process started: now it covers the
	// start, the initial list and the reaction trials.
	fmt.Println()
	fmt.Printf("| node | VmHWM over the whole run (start, initial list, reaction trials) | VmRSS now |\n|---|---|---|\n")
	for _, node := range l.Nodes {
		rss, hwm, _, _ := procMemory(node.Speaker.Pid())
		fmt.Printf("| %s | %s | %s |\n", node.Name, hwm, rss)
	}
}

// announced returns how many of the memory run's addresses the speakers
// announce between them, by their metrics.
func (m *measurement) announced(ctx context.Context) float64 {
	total := 0.0
	for _, node := range m.lab.Nodes {
		if v, err := m.lab.Metric(ctx, node, m.impl.announced, m.impl.announcedLabels...); err == nil {
			total += v
		}
	}
	return total
}

// sampleAnswers asks, from the client, for 20 of the n addresses spread
// over the range, and prints for how many exactly one node answers ndisc6
// and to how many the client kernel's own neighbour discovery resolves a
// node's MAC: the metrics say an address was handled, this says the LAN
// hears it. Both are asked because they can differ: ndisc6 reports no
// answer to MetalLB's advertisements, which the kernel takes.
func (m *measurement) sampleAnswers(ctx context.Context, n int) {
	const samples = 20
	byNdisc, byKernel := 0, 0
	var wrong []string
	for k := range samples {
		i := 1 + k*(n-1)/(samples-1)
		addr := netlab.NthAddr(netlab.L2PoolV6.Addr(), 100+i)
		got, err := m.lab.Answering(ctx, addr)
		ndiscOK := err == nil && len(got) == 1 && m.lab.Node(got[0]) != nil
		if ndiscOK {
			byNdisc++
		}
		node, kerr := m.kernelNeighbor(ctx, addr)
		if kerr == nil {
			byKernel++
		}
		if !ndiscOK || kerr != nil {
			wrong = append(wrong, fmt.Sprintf("mem-%05d (%v): ndisc6 %v %v, kernel %q %v", i, addr, got, err, node, kerr))
		}
	}
	fmt.Printf("memory: from the client, of %d sampled addresses exactly one node answers ndisc6 for %d; the kernel resolves %d to a node's MAC\n", samples, byNdisc, byKernel)
	for _, w := range wrong {
		fmt.Printf("memory:   %s\n", w)
	}
}

// kernelNeighbor has the client's kernel resolve addr afresh (one ping: the
// kernel solicits it; no echo reply comes, since no node holds the address)
// and returns the node whose MAC its neighbour cache then holds.
func (m *measurement) kernelNeighbor(ctx context.Context, addr netip.Addr) (string, error) {
	c := m.lab.Client
	if _, err := c.Run(ctx, "ip", "-6", "neigh", "flush", "to", addr.String()); err != nil {
		return "", err
	}
	_, _ = c.Run(ctx, "ping", "-6", "-c", "1", "-W", "1", addr.String())
	out, err := c.Run(ctx, "ip", "-6", "neigh", "show", "to", addr.String())
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		if hw, err := net.ParseMAC(f[i+1]); err == nil {
			if node := m.lab.NodeByMAC(hw); node != nil {
				return node.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no node's MAC in the neighbour cache: %q", strings.TrimSpace(out))
}

// reconcileTotals sums the reconcile-duration histogram's sum and count over
// the speakers (zero for a speaker that does not export it).
func reconcileTotals(ctx context.Context, l *speakerlab.Lab) (sum, count float64) {
	for _, node := range l.Nodes {
		s, _ := l.Metric(ctx, node, "herald_speaker_reconcile_duration_seconds_sum")
		c, _ := l.Metric(ctx, node, "herald_speaker_reconcile_duration_seconds_count")
		sum += s
		count += c
	}
	return sum, count
}

// procMemory returns VmRSS and VmHWM of pid (the speaker: `ip netns exec`
// execs it in place), and the two parts of VmRSS: RssAnon (the Go heap,
// stacks and the runtime's own memory) and RssFile (the executable's pages
// mapped in, which every process of the same binary shares).
func procMemory(pid int) (rss, hwm, anon, file string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", "?", "?", "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch v = strings.TrimSpace(v); k {
		case "VmRSS":
			rss = v
		case "VmHWM":
			hwm = v
		case "RssAnon":
			anon = v
		case "RssFile":
			file = v
		}
	}
	return rss, hwm, anon, file
}

// heapProfile saves node's speaker heap profile (after a GC: /debug/pprof/heap?gc=1)
// in dir and prints its top entries by live bytes.
func (m *measurement) heapProfile(ctx context.Context, node *speakerlab.Node, dir string) {
	m.profile(ctx, node, "/debug/pprof/heap?gc=1", filepath.Join(dir, "heap-"+node.Name+".pb.gz"), "live heap", "-sample_index=inuse_space")
}

// cpuProfile profiles node's speaker for d, saves the profile in dir and
// prints its top entries by CPU, cumulative (where the time goes).
func (m *measurement) cpuProfile(ctx context.Context, node *speakerlab.Node, dir string, d time.Duration) {
	secs := int(d.Round(time.Second) / time.Second)
	m.profile(ctx, node, fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(secs, 1)), filepath.Join(dir, "cpu-"+node.Name+".pb.gz"), "CPU, by cumulative time", "-cum")
}

// profile saves the pprof profile at path of node's speaker's metrics
// address to file and prints its top entries, sorted as args say.
func (m *measurement) profile(ctx context.Context, node *speakerlab.Node, path, file, what string, args ...string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+speakerlab.MetricsAddr+path, nil)
	resp, err := node.Host.HTTPClient(5 * time.Minute).Do(req)
	if err != nil {
		fmt.Printf("memory: profile %s of %s: %v\n", path, node.Name, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		m.fatal("memory: %v", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		m.fatal("memory: save profile: %v", err)
	}
	f.Close()
	out, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-top", "-nodecount=30"}, append(args, file)...)...).CombinedOutput()
	fmt.Printf("\nmemory: %s's %s (%s):\n%s\n", node.Name, what, file, out)
	if err != nil {
		fmt.Printf("memory: go tool pprof: %v\n", err)
	}
}
