package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
func (m *measurement) memory(ctx context.Context, n, perService, reactionTrials int, dir string) {
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
				addr := nthAddr(netlab.L2PoolV6.Addr(), 100+i)
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
		total := 0.0
		for _, node := range l.Nodes {
			v, err := l.Metric(ctx, node, "herald_speaker_announced_addresses", `protocol="ndp"`)
			if err == nil {
				total += v
			}
		}
		if int(total) >= n {
			fmt.Printf("memory: speakers started and announced all %d addresses in %v\n", n, time.Since(start).Round(100*time.Millisecond))
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
	fmt.Printf("| node | announced (NDP) | VmRSS | VmHWM | mean reconcile since start |\n|---|---|---|---|---|\n")
	for _, node := range l.Nodes {
		rss, hwm := procMemory(node.Speaker.Pid())
		v, _ := l.Metric(ctx, node, "herald_speaker_announced_addresses", `protocol="ndp"`)
		sum, _ := l.Metric(ctx, node, "herald_speaker_reconcile_duration_seconds_sum")
		cnt, _ := l.Metric(ctx, node, "herald_speaker_reconcile_duration_seconds_count")
		mean := time.Duration(0)
		if cnt > 0 {
			mean = time.Duration(sum / cnt * float64(time.Second))
		}
		fmt.Printf("| %s | %v | %s | %s | mean %v |\n", node.Name, v, rss, hwm, mean.Round(time.Millisecond))
	}

	fmt.Println()
	fmt.Printf("| node | heap in use | heap objects | next GC at | GC cycles |\n|---|---|---|---|---|\n")
	for _, node := range l.Nodes {
		inuse, _ := l.Metric(ctx, node, "go_memstats_heap_inuse_bytes")
		objects, _ := l.Metric(ctx, node, "go_memstats_heap_objects")
		next, _ := l.Metric(ctx, node, "go_memstats_next_gc_bytes")
		cycles, _ := l.Metric(ctx, node, "go_gc_duration_seconds_count")
		fmt.Printf("| %s | %.1f MiB | %.0f | %.1f MiB | %.0f |\n", node.Name, inuse/(1<<20), objects, next/(1<<20), cycles)
	}
	m.heapProfile(ctx, l.Nodes[0], dir)

	// The reaction time at this scale, and the steady-state reconcile time.
	r := m.reaction(ctx, reactionTrials)
	r.name += fmt.Sprintf(", with %d Services", n)
	sum1, cnt1 := reconcileTotals(ctx, l)
	fmt.Println()
	fmt.Println("| measurement | trials | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Println(r.row())
	if cnt1 > cnt0 {
		fmt.Printf("\nmean reconcile during the reaction trials: %v over %v reconciles\n",
			time.Duration((sum1-sum0)/(cnt1-cnt0)*float64(time.Second)).Round(time.Millisecond), cnt1-cnt0)
	}
}

// reconcileTotals sums the reconcile-duration histogram's sum and count over
// the speakers.
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
// execs it in place).
func procMemory(pid int) (rss, hwm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	return rss, hwm
}

// heapProfile saves node's speaker heap profile (after a GC: /debug/pprof/heap?gc=1)
// in dir and prints its top entries by live bytes.
func (m *measurement) heapProfile(ctx context.Context, node *speakerlab.Node, dir string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+speakerlab.MetricsAddr+"/debug/pprof/heap?gc=1", nil)
	resp, err := node.Host.HTTPClient(30 * time.Second).Do(req)
	if err != nil {
		fmt.Printf("memory: heap profile of %s: %v\n", node.Name, err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(dir, "heap-"+node.Name+".pb.gz")
	f, err := os.Create(path)
	if err != nil {
		m.fatal("memory: %v", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		m.fatal("memory: save heap profile: %v", err)
	}
	f.Close()
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", "-sample_index=inuse_space", path).CombinedOutput()
	fmt.Printf("\nmemory: %s's live heap (%s):\n%s\n", node.Name, path, out)
	if err != nil {
		fmt.Printf("memory: go tool pprof: %v\n", err)
	}
}
