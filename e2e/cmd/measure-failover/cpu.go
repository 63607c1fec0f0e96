package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
)

// labCPU returns the CPU time (user and system) each of the lab's processes
// has used so far: this command and every process it started, directly or
// not (the control plane, the speakers), keyed by program and node
// ("kube-apiserver", "herald-speaker node1").
func labCPU() map[string]time.Duration {
	type proc struct {
		stat netlab.ProcStat
		name string
	}
	procs := map[int]proc{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := netlab.ReadProcStat(pid)
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		procs[pid] = proc{stat: st, name: procName(cmdline)}
	}
	self := os.Getpid()
	descends := func(pid int) bool {
		for range 64 { // a bound against a cycle read across a pid's reuse
			if pid == self {
				return true
			}
			p, ok := procs[pid]
			if !ok || pid <= 1 {
				return false
			}
			pid = p.stat.PPid
		}
		return false
	}
	out := map[string]time.Duration{}
	for pid, p := range procs {
		if p.name != "" && descends(pid) {
			out[p.name] += p.stat.CPU
		}
	}
	return out
}

// procName names a process by its command line: the program, less the
// content hash of the lab's speaker binaries (herald-speaker-42f89101), and
// its --node-name. Wrappers that only exec or wait (ip netns exec, sh) are
// named too; they use next to nothing.
func procName(cmdline []byte) string {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) == 0 || args[0] == "" {
		return ""
	}
	name := filepath.Base(args[0])
	if i := strings.LastIndexByte(name, '-'); i > 0 && strings.HasPrefix(name, "herald-") {
		name = name[:i]
	}
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "--node-name="); ok {
			name += " " + v
		}
	}
	return name
}

// printCPU prints the CPU each lab process used between two labCPU readings,
// in total and per trial, busiest first.
func printCPU(before, after map[string]time.Duration, trials int, took time.Duration) {
	names := make([]string, 0, len(after))
	for n := range after {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return int(after[b] - before[b] - (after[a] - before[a])) })
	fmt.Printf("\nCPU used during the %d reaction trials (%v), by process:\n\n", trials, took.Round(100*time.Millisecond))
	fmt.Println("| process | CPU | per trial | share of the wall time |")
	fmt.Println("|---|---|---|---|")
	var total time.Duration
	for _, n := range names {
		d := after[n] - before[n]
		total += d
		fmt.Printf("| %s | %v | %v | %.0f%% |\n", n, d, d/time.Duration(max(trials, 1)), 100*d.Seconds()/took.Seconds())
	}
	fmt.Printf("| all | %v | %v | %.0f%% (of %d cores: %d%%) |\n", total, total/time.Duration(max(trials, 1)), 100*total.Seconds()/took.Seconds(), runtime.NumCPU(), 100*runtime.NumCPU())
}
