package main

import (
	"fmt"
	"io"
	"time"
)

// report gathers every phase's outcome.
type report struct {
	latency            *latencyResult
	baseline           *creation
	bulk               *creation
	restart            *restartResult
	memoryAfterBulk    *memoryResult
	memoryAfterRestart *memoryResult
	backlog            *backlogResult
	loadEnd            string
}

// percentile returns the nearest-rank percentile p (0-100) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.999999) - 1
	i = max(0, min(i, len(ds)-1))
	return ds[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (r report) print(w io.Writer, services int) {
	fmt.Fprintf(w, "\n| measurement | result | target |\n|---|---|---|\n")
	if l := r.latency; l != nil {
		p99 := percentile(l.Latencies, 99)
		fmt.Fprintf(w, "| creation to address, %d Services at %.0f/s: p50 / p99 / max | %s / %s / %s | p99 < 100 ms: %s |\n",
			l.Services, l.Rate, ms(percentile(l.Latencies, 50)), ms(p99), ms(l.Latencies[len(l.Latencies)-1]),
			verdict(p99 < 100*time.Millisecond))
		fmt.Fprintf(w, "| apiserver writes per new Service (its create left out) | %s | one claim, one status |\n", l.Writes)
	}
	if b := r.bulk; b != nil {
		fmt.Fprintf(w, "| %d Services by 32 clients: all addressed after | %s (create phase %s, last address %s after the last create) | < 60 s: %s |\n",
			b.Services, secs(b.AllAddressed), secs(b.End.Sub(b.Start)), secs(b.AfterLastWrite), verdict(b.AllAddressed < time.Minute))
		line := fmt.Sprintf("| creates/s with the controller | %.0f/s (apiserver CPU %s, controller CPU %s until all addressed, %d retries)",
			b.rate(), secs(b.ApiserverCPU), secs(b.ControllerCPU), b.Retries)
		if base := r.baseline; base != nil {
			line += fmt.Sprintf("; without: %.0f/s (apiserver CPU %s, %d retries); cost %.0f%% of create throughput",
				base.rate(), secs(base.ApiserverCPU), base.Retries, 100*(1-b.rate()/base.rate()))
		}
		fmt.Fprintln(w, line+" | |")
	}
	if m := r.memoryAfterBulk; m != nil {
		fmt.Fprintf(w, "| controller memory at %d Services, after the bulk: VmRSS (VmHWM, Go heap in use) | %s (%s, %s) | < 150 MiB: %s |\n",
			m.Services, mib(float64(m.Usage.RSS)), mib(float64(m.Usage.HWM)), mib(m.Usage.GoHeapUsed), verdict(m.Usage.RSS < 150<<20))
	}
	if rs := r.restart; rs != nil {
		fmt.Fprintf(w, "| restart with %d Services: process start to /readyz (import %s; logged %s; %d allocations) | %s | < 5 s: %s |\n",
			rs.Services, secs(rs.ImportDuration), rs.ImportLogged, rs.Imported, secs(rs.ReadyAfter), verdict(rs.ReadyAfter < 5*time.Second))
		fmt.Fprintf(w, "| after the restart, every Service reconciled (%s after start): addresses changed / resourceVersions changed / missing | %d / %d / %d | 0: %s |\n",
			secs(rs.ReconciledAfter), len(rs.ChangedAddress), rs.ChangedVersion, rs.MissingAfter,
			verdict(len(rs.ChangedAddress) == 0 && rs.ChangedVersion == 0 && rs.MissingAfter == 0))
		for i, c := range rs.ChangedAddress {
			if i == 5 {
				fmt.Fprintf(w, "  ... and %d more\n", len(rs.ChangedAddress)-5)
				break
			}
			fmt.Fprintf(w, "  changed: %s\n", c)
		}
	}
	if m := r.memoryAfterRestart; m != nil {
		fmt.Fprintf(w, "| controller memory at %d Services, after the restart: VmRSS (VmHWM, Go heap in use) | %s (%s, %s) | < 150 MiB: %s |\n",
			m.Services, mib(float64(m.Usage.RSS)), mib(float64(m.Usage.HWM)), mib(m.Usage.GoHeapUsed), verdict(m.Usage.RSS < 150<<20))
	}
	if b := r.backlog; b != nil {
		fmt.Fprintf(w, "| backlog: %d Services without an address, a new controller started: all addressed after (ready after) | %s (%s) | < 60 s: %s |\n",
			b.Services, secs(b.AllAddressed), secs(b.ReadyAfter), verdict(b.AllAddressed < time.Minute))
		line := fmt.Sprintf("| the controller's writes for them: kube-apiserver CPU | %s, %.1f ms per Service (controller CPU %s)",
			secs(b.ApiserverCPU), float64(b.ApiserverCPU)/float64(time.Millisecond)/float64(b.Services), secs(b.ControllerCPU))
		if base := r.baseline; base != nil {
			line += fmt.Sprintf("; creating a Service cost it %.1f ms on average without the controller",
				float64(base.ApiserverCPU)/float64(time.Millisecond)/float64(base.Services))
		}
		fmt.Fprintln(w, line+" | |")
	}
	fmt.Fprintf(w, "\n%d Services in the end; load average at the end %s\n", services, r.loadEnd)
}
