package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// falseAlarms runs the lab for -false-alarm-duration with every node
// dropping -loss of the IP packets it receives from its LAN (iptables'
// statistic match: this kernel has no netem; loopback, where the metrics
// are read, is spared) and -burners processes spinning on the
// machine's CPUs, while layer-2 Services whose addresses every node owns
// some of stay put. It counts the layer-2 ownership changes (address
// moves) and the fast failure detector's verdicts on every node: the
// target is none.
func (m *measurement) falseAlarms(ctx context.Context) {
	c := m.cfg
	if c.falseAlarm <= 0 {
		return
	}
	l := m.lab
	nodes := l.Cluster.Nodes
	// One address ranked first by each node, so every node owns one and
	// watches another.
	var addrs []netip.Addr
	for i, n := range nodes {
		a := m.l2AddrRankingFirstFrom(n.Name(), 20)
		m.createService(ctx, serviceSpec{name: "calm-" + strconv.Itoa(i+1), pool: l2Pool, addr: a}, readyEndpoints(m.web...)...)
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		m.waitOwner(ctx, a)
	}
	series := []string{
		`herald_speaker_layer2_ownership_changes_total{change="gained"}`,
		`herald_speaker_heartbeat_verdicts_total{kind="presumed"}`,
		`herald_speaker_heartbeat_verdicts_total{kind="cleared"}`,
		`herald_speaker_heartbeat_verdicts_total{kind="expired"}`,
		`herald_speaker_heartbeat_verdicts_total{kind="spared"}`,
	}
	read := func() map[string]float64 {
		out := map[string]float64{}
		for _, n := range nodes {
			for _, s := range series {
				v, err := l.SpeakerMetric(ctx, n, s)
				if err != nil {
					m.fatalf("%v", err)
				}
				out[s] += v
			}
		}
		return out
	}
	before := read()

	drop := strconv.FormatFloat(c.loss, 'f', -1, 64)
	rules := [][]string{
		{"iptables", "-I", "INPUT", "!", "-i", "lo", "-m", "statistic", "--mode", "random", "--probability", drop, "-j", "DROP"},
		{"ip6tables", "-I", "INPUT", "!", "-i", "lo", "-m", "statistic", "--mode", "random", "--probability", drop, "-j", "DROP"},
	}
	for _, n := range nodes {
		for _, r := range rules {
			n.MustRun(r...)
		}
	}
	defer func() {
		for _, n := range nodes {
			for _, r := range rules {
				del := append([]string{r[0], "-D"}, r[2:]...)
				if out, err := n.Run(context.Background(), del...); err != nil {
					fmt.Printf("  warning: %v: %s\n", err, out)
				}
			}
		}
	}()
	burners := c.burners
	if burners < 0 {
		burners = runtime.NumCPU()
	}
	var procs []*exec.Cmd
	for range burners {
		cmd := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		// They die with this process, however it ends (m.fatalf exits
		// without running the deferred kill).
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			m.fatalf("start a CPU burner: %v", err)
		}
		procs = append(procs, cmd)
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	fmt.Printf("\nfalse alarms: %d nodes, %d addresses, %.0f%% of received IP packets dropped on every node, %d CPU burners on %d CPUs, for %v\n",
		len(nodes), len(addrs), 100*c.loss, burners, runtime.NumCPU(), c.falseAlarm)
	start := time.Now()
	probe := l.Probe(addrs[0], servicePort, 100*time.Millisecond, time.Second)
	for time.Since(start) < c.falseAlarm {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
		now := read()
		fmt.Printf("  after %v: moves %v, presumed %v, cleared %v, expired %v, spared %v, load average %s\n",
			time.Since(start).Round(time.Second), now[series[0]]-before[series[0]], now[series[1]]-before[series[1]],
			now[series[2]]-before[series[2]], now[series[3]]-before[series[3]], now[series[4]]-before[series[4]], loadAverage())
	}
	attempts := probe.Stop()
	after := read()
	failed := 0
	for _, a := range attempts {
		if !a.OK() {
			failed++
		}
	}
	fmt.Printf("false alarms over %v: address moves %v, verdicts presumed %v, cleared %v, expired %v, spared %v (silences the owner's kernel answered); client connections to %s: %d of %d failed (the loss drops some)\n",
		c.falseAlarm, after[series[0]]-before[series[0]], after[series[1]]-before[series[1]], after[series[2]]-before[series[2]],
		after[series[3]]-before[series[3]], after[series[4]]-before[series[4]], addrs[0], failed, len(attempts))
}
