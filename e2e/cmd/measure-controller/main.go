// Command measure-controller measures herald-controller against a real
// kube-apiserver and etcd (package controlplane), from the e2e module:
//
//	go run ./cmd/measure-controller [-latency-services 1000] [-rate 100] [-bulk-services 10000] [-clients 32]
//
// It builds cmd/herald-controller and runs it as its own process (with
// leader election, as deployed), so that its resident memory is its own.
// Services are of type LoadBalancer, IPv6 single-stack, with
// allocateLoadBalancerNodePorts: false, and get addresses from one IPPool
// of 2001:db8:100::/112 (65,536 addresses of the documentation prefix; no
// packet is ever sent to them: nothing here announces anything). It prints:
//
//   - latency: time from each Service's creation (the create response) to
//     the watch event that shows an address in its status, p50/p99/max over
//     -latency-services Services created at -rate per second;
//   - bulk: -bulk-services Services created by -clients clients as fast as
//     the apiserver accepts them; the time until all have addresses, and
//     the creates per second with the controller running and, on a fresh
//     control plane (with as many Services as the latency phase left,
//     created first), without it: the apiserver throughput the controller
//     costs, with the CPU time of the apiserver and the controller;
//   - restart: SIGTERM, then a new process: time from its start to /readyz
//     (import done) and the import's own duration, then, once it has
//     reconciled every Service, how many addresses or resourceVersions
//     changed (none should);
//   - memory: the controller's VmRSS and VmHWM after the bulk and after the
//     restart;
//   - backlog: the controller stopped, the status of every bulk Service
//     cleared, a new controller started: the time until every one has an
//     address again, which is the controller's own throughput, apart from
//     the apiserver's cost of creating Services (kube-apiserver 1.37's
//     ClusterIP allocator lists every IPAddress on each create, so creating
//     Services slows down as they add up).
//
// The machine's load average is printed with each phase: the figures are
// only as good as the CPU the machine had to spare.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	latencyServices int
	rate            float64
	bulkServices    int
	clients         int
	baseline        bool
	restart         bool
	backlog         bool
	binary          string
	dir             string
	workers         int
	extraArgs       string
	profileDir      string
}

func main() {
	var o options
	flag.IntVar(&o.latencyServices, "latency-services", 1000, "Services created at -rate for the latency measurement (0 skips it)")
	flag.Float64Var(&o.rate, "rate", 100, "creates per second for the latency measurement")
	flag.IntVar(&o.bulkServices, "bulk-services", 10000, "Services created as fast as possible for the bulk measurement (0 skips it and the restart)")
	flag.IntVar(&o.clients, "clients", 32, "concurrent clients creating the bulk Services")
	flag.BoolVar(&o.baseline, "baseline", true, "also create the bulk Services on a fresh control plane without the controller, for the throughput it costs")
	flag.BoolVar(&o.restart, "restart", true, "restart the controller after the bulk and measure the import")
	flag.BoolVar(&o.backlog, "backlog", true, "last, clear the status of the bulk Services and time a new controller addressing them all")
	flag.StringVar(&o.binary, "controller-binary", "", "herald-controller binary to run (default: build cmd/herald-controller)")
	flag.StringVar(&o.dir, "dir", "", "directory for the controller's logs and binary (default: a temporary one, removed unless a phase failed)")
	flag.IntVar(&o.workers, "workers", 0, "the controller's --workers (0: its default)")
	flag.StringVar(&o.extraArgs, "controller-args", "", "extra flags for herald-controller, space-separated")
	flag.StringVar(&o.profileDir, "apiserver-profile", "", "directory for 20 s CPU profiles of kube-apiserver, taken when 70% of the bulk Services are created (baseline and bulk)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	keep := o.dir != ""
	if o.dir == "" {
		d, err := os.MkdirTemp("", "measure-controller-")
		if err != nil {
			fatalf("%v", err)
		}
		o.dir = d
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "measure-controller: %v\n(logs in %s)\n", err, o.dir)
		os.Exit(1)
	}
	if !keep {
		_ = os.RemoveAll(o.dir)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "measure-controller: "+format+"\n", args...)
	os.Exit(1)
}

// run does every phase and prints the report.
func run(ctx context.Context, o options) error {
	fmt.Printf("measure-controller: %s, %d CPUs, %s; load average %s\n", strings.Join(os.Args, " "), runtime.NumCPU(),
		runtime.Version(), loadAverage())
	bin := o.binary
	if bin == "" {
		var err error
		if bin, err = buildController(ctx, filepath.Join(o.dir, "herald-controller")); err != nil {
			return err
		}
	}
	var rep report

	if o.bulkServices > 0 && o.baseline {
		fmt.Printf("baseline: %d Services, %d clients, no controller, fresh control plane (load %s)\n", o.bulkServices, o.clients, loadAverage())
		b, err := baseline(ctx, o)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		rep.baseline = &b
	}

	lab, err := startLab(ctx, o, bin)
	if err != nil {
		return err
	}
	defer lab.close()

	if o.latencyServices > 0 {
		fmt.Printf("latency: %d Services at %.0f/s (load %s)\n", o.latencyServices, o.rate, loadAverage())
		l, err := lab.latency(ctx, o.latencyServices, o.rate)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		rep.latency = &l
	}
	if o.bulkServices > 0 {
		fmt.Printf("bulk: %d Services, %d clients (load %s)\n", o.bulkServices, o.clients, loadAverage())
		b, err := lab.bulk(ctx, o.bulkServices, o.clients)
		if err != nil {
			return fmt.Errorf("bulk: %w", err)
		}
		rep.bulk = &b
		m, err := lab.settledMemory(ctx)
		if err != nil {
			return fmt.Errorf("memory after bulk: %w", err)
		}
		rep.memoryAfterBulk = &m
		if o.restart {
			fmt.Printf("restart: %d Services (load %s)\n", lab.services(), loadAverage())
			r, err := lab.restartController(ctx)
			if err != nil {
				return fmt.Errorf("restart: %w", err)
			}
			rep.restart = &r
			m, err := lab.settledMemory(ctx)
			if err != nil {
				return fmt.Errorf("memory after restart: %w", err)
			}
			rep.memoryAfterRestart = &m
		}
		if o.backlog {
			fmt.Printf("backlog: statuses of %d Services cleared, controller restarted (load %s)\n", o.bulkServices, loadAverage())
			b, err := lab.backlog(ctx, o.clients)
			if err != nil {
				return fmt.Errorf("backlog: %w", err)
			}
			rep.backlog = &b
		}
	}
	rep.loadEnd = loadAverage()
	rep.print(os.Stdout, lab.services())
	return nil
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// since rounds a duration for printing.
func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
