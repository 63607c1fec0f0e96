// Command soak is Herald's chaos soak (issue 14; run as root, from the e2e
// module):
//
//	go run ./cmd/soak -duration 3m -seed 1 [-rate 1] [-faults leader-sigkill,...] [-dir DIR]
//
// It builds the product lab (package productlab), then for -duration makes
// one seeded random change per step (-rate steps a second: Services created,
// edited and deleted, endpoints changed, pools resized and deleted) and, every
// few steps, a fault (the leader controller killed, a speaker killed or
// stopped, a node's link cut; each undone some steps later). About once a
// second it checks Herald's promises from outside, from the API and the wire
// (package soak). The same seed gives the same steps. It prints one line per
// step, fault and new violation, then the report, writes both to -dir, and
// exits 1 when an invariant was broken.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/soak"
)

func main() {
	var (
		opts   soak.Options
		faults string
	)
	flag.DurationVar(&opts.Duration, "duration", 3*time.Minute, "how long changes and faults go on")
	flag.Uint64Var(&opts.Seed, "seed", 1, "seed of the operations and faults: the same seed replays the same steps")
	flag.Float64Var(&opts.Rate, "rate", 1, "operations per second")
	flag.StringVar(&faults, "faults", joinFaults(soak.AllFaults), "comma-separated fault kinds to make (empty: none); also "+string(soak.FaultSpeakerFreeze)+" (SIGSTOP, then SIGCONT)")
	flag.DurationVar(&opts.Settle, "settle", 5*time.Second, "bound within which a change must show on the API and the wire")
	flag.DurationVar(&opts.FailoverBound, "failover-bound", 3*time.Second, "outage a probed Service may see after a fault on its node")
	flag.StringVar(&opts.Dir, "dir", "", "directory for the logs and the report (default a new temporary one)")
	flag.Parse()
	for _, f := range strings.Split(faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			opts.Faults = append(opts.Faults, soak.FaultKind(f))
		}
	}
	if err := checkFaults(opts.Faults); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(run(opts))
}

func run(opts soak.Options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		opts.Dir = d
	}
	sess, err := netlab.NewSession(ctx, "soak", opts.Dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sess.Close()
	logFile, err := os.Create(filepath.Join(opts.Dir, "soak.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()
	opts.Log = io.MultiWriter(os.Stdout, logFile)
	fmt.Fprintf(opts.Log, "soak: seed %d, duration %v, rate %v/s, faults %v; logs in %s\n",
		opts.Seed, opts.Duration, opts.Rate, opts.Faults, opts.Dir)

	report := soak.Run(ctx, sess, opts)
	fmt.Fprintln(opts.Log)
	report.Write(opts.Log)
	if ctx.Err() != nil {
		fmt.Fprintln(opts.Log, "soak: interrupted")
		return 1
	}
	if report.Failed() {
		return 1
	}
	return 0
}

func joinFaults(fs []soak.FaultKind) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}

func checkFaults(fs []soak.FaultKind) error {
	for _, f := range fs {
		known := false
		for _, k := range soak.KnownFaults {
			known = known || f == k
		}
		if !known {
			return fmt.Errorf("soak: unknown fault %q; known: %s", f, joinFaults(soak.KnownFaults))
		}
	}
	return nil
}
