// Command measure-bgp measures Herald's BGP speaker against FRR in the network
// lab (as root): how long FRR keeps a failed node's next hop, with BFD and
// with the hold timer alone, and what advertising many addresses to two
// routers costs. It prints one line per trial and a summary.
//
//	cd e2e && go run ./bgp/cmd/measure-bgp -bfd-trials 20 -addresses 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/bgp"
	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// Config says what to measure; a count of 0 skips that measurement.
type Config struct {
	BFDTrials      int
	BFDInterval    time.Duration
	BFDStability   time.Duration
	CrashTrials    int
	HoldTrials     int
	Addresses      int
	ScaleStarts    int
	WithdrawTrials int
}

func main() {
	var c Config
	flag.IntVar(&c.BFDTrials, "bfd-trials", 20, "node failures (node cut off, then killed) with BFD -bfd-interval x 3")
	flag.DurationVar(&c.BFDInterval, "bfd-interval", 300*time.Millisecond, "BFD minimum receive and transmit interval (both ends; multiplier 3)")
	flag.DurationVar(&c.BFDStability, "bfd-stability", 0, "run one session with BFD -bfd-interval x 3 this long and count its drops (0: skip)")
	flag.IntVar(&c.CrashTrials, "crash-trials", 5, "speaker crashes (SIGKILL, the node stays up) with BFD -bfd-interval x 3")
	flag.IntVar(&c.HoldTrials, "hold-trials", 3, "node failures without BFD (hold time 9s)")
	flag.IntVar(&c.Addresses, "addresses", 10000, "addresses advertised to two routers")
	flag.IntVar(&c.ScaleStarts, "scale-starts", 3, "speaker starts with the addresses")
	flag.IntVar(&c.WithdrawTrials, "withdraw-trials", 20, "withdrawals of one address among the others")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, c))
}

func run(ctx context.Context, c Config) int {
	dir, err := os.MkdirTemp("", "measure-bgp-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure-bgp:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bfd := speakerbgp.BFD{Enabled: true, MinRx: c.BFDInterval, MinTx: c.BFDInterval, Multiplier: 3}
	var summary []string
	session := func(name string, f func(t netlab.T)) {
		s, err := netlab.NewSession(ctx, name, filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "measure-bgp:", err)
			os.Exit(1)
		}
		defer s.Close()
		f(s)
	}
	if c.BFDTrials > 0 {
		session("bfd", func(t netlab.T) {
			r := bgp.MeasureFailure(t, bgp.FailureOptions{Trials: c.BFDTrials, Cut: true, BFD: bfd, HoldTime: 90 * time.Second, Logf: t.Logf})
			summary = append(summary,
				"node failure, BFD "+c.BFDInterval.String()+" x 3, hold 90s: BGP table: "+r.BGPTable.String(),
				"node failure, BFD "+c.BFDInterval.String()+" x 3, hold 90s: kernel:    "+r.Kernel.String())
		})
	}
	if c.BFDStability > 0 {
		session("bfd-stability", func(t netlab.T) {
			r := bgp.MeasureStability(t, bgp.FailureOptions{BFD: bfd, HoldTime: 90 * time.Second, Logf: t.Logf}, c.BFDStability)
			summary = append(summary, fmt.Sprintf("BFD %v x 3 for %v: router drops %d, speaker BFD failures %d (drops as the session first came up: %d)",
				c.BFDInterval, r.Duration.Round(time.Second), r.RouterDrops, r.BFDFailures, r.FirstDrops))
		})
	}
	if c.CrashTrials > 0 {
		session("crash", func(t netlab.T) {
			r := bgp.MeasureFailure(t, bgp.FailureOptions{Trials: c.CrashTrials, BFD: bfd, HoldTime: 90 * time.Second, Logf: t.Logf})
			summary = append(summary, "speaker crash (SIGKILL), BFD "+c.BFDInterval.String()+" x 3: BGP table: "+r.BGPTable.String())
		})
	}
	if c.HoldTrials > 0 {
		session("hold", func(t netlab.T) {
			r := bgp.MeasureFailure(t, bgp.FailureOptions{Trials: c.HoldTrials, Cut: true, HoldTime: 9 * time.Second, Logf: t.Logf})
			summary = append(summary, "node failure, no BFD, hold 9s: BGP table: "+r.BGPTable.String())
		})
	}
	if c.Addresses > 0 && c.ScaleStarts > 0 {
		session("scale", func(t netlab.T) {
			r := bgp.MeasureScale(t, bgp.ScaleOptions{Addresses: c.Addresses, Starts: c.ScaleStarts, WithdrawTrials: c.WithdrawTrials, Logf: t.Logf})
			lo, hi := slices.Min(r.RSS), slices.Max(r.RSS)
			last := len(r.RSS) - 1
			summary = append(summary,
				fmt.Sprintf("%d addresses to 2 routers: start to converged: %s", c.Addresses, r.Converge),
				fmt.Sprintf("%d addresses to 2 routers: start to first Set returned: %s", c.Addresses, r.SetDone),
				fmt.Sprintf("%d addresses to 2 routers: start to both sessions Established: %s", c.Addresses, r.Established),
				fmt.Sprintf("%d addresses to 2 routers: RSS %s to %s over the starts (last: peak %s, Go heap in use %s, Go sys %s); same sessions without routes: RSS %s",
					c.Addresses, bgp.MiB(lo), bgp.MiB(hi), bgp.MiB(r.HWM[last]), bgp.MiB(r.HeapInuse[last]), bgp.MiB(r.Sys[last]), bgp.MiB(r.IdleRSS)))
			if len(r.Withdraw) > 0 {
				summary = append(summary,
					fmt.Sprintf("withdraw 1 of %d addresses, SIGHUP to gone from both routers: %s", c.Addresses, r.Withdraw),
					fmt.Sprintf("withdraw 1 of %d addresses, the speaker's Set: %s", c.Addresses, r.WithdrawApplied))
			}
		})
	}
	fmt.Println("\nsummary:")
	for _, line := range summary {
		fmt.Println("  " + line)
	}
	return 0
}
