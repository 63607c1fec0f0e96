package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// memory creates n IPv6 Services with perService endpoints each (spread
// over the nodes), waits until the speakers announce all of them, and
// prints each speaker's resident memory.
func (m *measurement) memory(ctx context.Context, n, perService int) {
	l := m.lab
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
			break
		}
		if time.Now().After(deadline) {
			m.fatal("memory: speakers announce %v of %d addresses after 5 minutes\n%s", total, n, l.Logs())
		}
		time.Sleep(time.Second)
	}
	time.Sleep(5 * time.Second) // a few resyncs, status writes and GC cycles
	fmt.Println()
	fmt.Printf("| node | announced (NDP) | VmRSS | VmHWM | reconcile mean |\n|---|---|---|---|---|\n")
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
