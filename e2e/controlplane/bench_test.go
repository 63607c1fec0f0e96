package controlplane_test

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// BenchmarkStart measures how long a control plane takes from Start to ready: etcd and
// kube-apiserver started, /readyz ok, Herald's CRDs Established. Stopping is not timed.
// It reports the mean as ready-s, the slowest start as max-ready-s, and the CPU time etcd
// and kube-apiserver used until ready as cpu-s: the wall time depends on what else the
// machine runs, the CPU time much less. The sub-benchmark without-crds shows how much of
// that the CRDs take.
//
//	go test -run '^$' -bench BenchmarkStart -benchtime 10x ./controlplane/
func BenchmarkStart(b *testing.B) {
	controlplane.RequireBinaries(b, "")
	b.Run("with-crds", func(b *testing.B) { benchmarkStart(b, controlplane.Options{}) })
	b.Run("without-crds", func(b *testing.B) { benchmarkStart(b, controlplane.Options{SkipCRDs: true}) })
}

func benchmarkStart(b *testing.B, opts controlplane.Options) {
	var total, slowest, cpu time.Duration
	for b.Loop() {
		cp, err := controlplane.Start(b.Context(), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		total += cp.ReadyAfter
		slowest = max(slowest, cp.ReadyAfter)
		for _, pid := range cp.PIDs() {
			cpu += cpuTime(b, pid)
		}
		if err := cp.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "ready-s")
	b.ReportMetric(slowest.Seconds(), "max-ready-s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s")
}

// cpuTime returns the user and system CPU time process pid has used, from /proc.
func cpuTime(b *testing.B, pid int) time.Duration {
	st, err := netlab.ReadProcStat(pid)
	if err != nil {
		b.Fatal(err)
	}
	return st.CPU
}
