// Command measure-e2e measures the whole product as a client sees it (run as
// root, from the e2e module):
//
//	go run ./cmd/measure-e2e [-l2-trials 20] [-graceful-trials 20] [-speaker-kill-trials 5] \
//	    [-bgp-trials 20] [-endpoint-trials 20] [-endpoint-abrupt=false] [-create-trials 20] \
//	    [-rollout-trials 20] [-drain 60s]
//
// It builds the product lab (package productlab): a real control plane, three
// nodes each running the real kube-proxy and herald-speaker, herald-controller,
// an FRR router (zebra, bfdd, bgpd; BFD 300 ms x 3 with every node) and a
// client on the LAN. The client observes every outage the way a user would:
// a new TCP connection to the Service's address every -interval (default
// 10 ms), each with -timeout (200 ms). A trial's outage is its longest run of
// failed connections: from the start of the run's first failed connection to
// the start of the next successful one (productlab.LongestOutage). Each trial
// prints one line; a summary table follows. p99 is by nearest rank: with 20
// trials it is the largest.
//
// Measurements, each over its own number of trials, as p50/p99/max:
//
//   - layer 2, node failure: the announcing node's LAN port is taken off the
//     bridge and its speaker killed with SIGKILL; the client's outage and the
//     takeover time (the kill until the client's tcpdump sees the new
//     owner's gratuitous ARP);
//   - layer 2, graceful stop: SIGTERM to the announcing speaker;
//   - layer 2, speaker killed with the node up (kube-proxy there still
//     forwards, so clients should see nothing);
//   - BGP with BFD, node failure, for a Cluster-policy Service advertised by
//     all three nodes (ECMP at the router): the node the client's flow goes
//     through is cut off and its speaker killed;
//   - BGP, the last local endpoint of a Local-policy Service removed on the
//     node the client's flow goes through: the way a pod is deleted
//     (terminating but serving for -grace, then gone and its server
//     stopped), and abruptly (gone and stopped at once);
//   - layer 2, a Local-policy rollout: the one pod of a Local Service moves
//     to another node as a rolling update moves it (the new pod ready, -surge
//     later the old one terminating but serving for -grace, then gone), and
//     the address with it;
//   - Service creation to the client's first successful connection, for a
//     layer-2 and a BGP Service (pods already serving; the EndpointSlices are
//     written right after the create, as the endpointslice controller would).
//
// A trial with a failed connection prints its packets as the client saw
// them (for BGP, the router too); in the rollout and last-endpoint trials
// also as the two pods' nodes saw them on every interface (a tcpdump -i any
// on each, for the trial), and the nodes' connection-tracking entries for it.
//
// The layer-2 and Cluster-policy BGP Services have their pods on node1 and
// node2 and are arranged so that the failing node is node3, which runs none
// of their pods: no kubelet or node lifecycle controller runs here, so a pod
// on a failed node would stay in the EndpointSlices and kube-proxy on the
// surviving nodes would keep sending some connections to it (in a real
// cluster for 40 s or more), which is not Herald's failover. For layer 2 the
// Service requests an address whose election ranks node3 first; for BGP the
// client's source address is chosen so that the router's multipath hash (L3,
// the kernel's default) sends the flow through node3, and each trial checks
// it (the router's `ip route get` and the source address the pod saw).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// config holds the command's flags.
type options struct {
	l2Trials, gracefulTrials, speakerKillTrials int
	bgpTrials, endpointTrials, createTrials     int
	interval, timeout, grace, settle            time.Duration
	dir                                         string
	nodes, burners                              int
	ipv6                                        bool
	falseAlarm                                  time.Duration
	loss                                        float64
	drain                                       time.Duration
	abrupt                                      bool
	rolloutTrials                               int
	surge                                       time.Duration
}

func main() {
	var cfg options
	flag.IntVar(&cfg.l2Trials, "l2-trials", 20, "layer-2 node-failure trials (0 skips)")
	flag.IntVar(&cfg.gracefulTrials, "graceful-trials", 20, "layer-2 graceful-stop trials")
	flag.IntVar(&cfg.speakerKillTrials, "speaker-kill-trials", 5, "layer-2 'speaker killed, node up' trials")
	flag.IntVar(&cfg.bgpTrials, "bgp-trials", 20, "BGP+BFD node-failure trials")
	flag.IntVar(&cfg.endpointTrials, "endpoint-trials", 20, "BGP last-local-endpoint trials, each way (graceful and abrupt)")
	flag.BoolVar(&cfg.abrupt, "endpoint-abrupt", true, "also run the abrupt last-local-endpoint trials (false: only the graceful ones)")
	flag.IntVar(&cfg.rolloutTrials, "rollout-trials", 0, "layer-2 Local-policy rollout trials (0 skips)")
	flag.DurationVar(&cfg.surge, "surge", time.Second, "rollout: how long both pods are ready before the old one turns terminating")
	flag.IntVar(&cfg.createTrials, "create-trials", 20, "Service creation trials, each of layer 2 and BGP")
	flag.DurationVar(&cfg.interval, "interval", 10*time.Millisecond, "the client's probing interval")
	flag.DurationVar(&cfg.timeout, "timeout", 200*time.Millisecond, "timeout of each probe connection")
	flag.DurationVar(&cfg.grace, "grace", 3*time.Second, "how long a deleted pod stays terminating but serving")
	flag.DurationVar(&cfg.settle, "settle", 5*time.Second, "how long BGP and BFD must stay up before a BGP trial")
	flag.StringVar(&cfg.dir, "dir", "", "directory for logs (default a new temporary one)")
	flag.BoolVar(&cfg.ipv6, "ipv6", false, "layer-2 phases over IPv6 (NDP) instead of IPv4 (ARP)")
	flag.IntVar(&cfg.nodes, "nodes", 3, "node hosts in the lab (at least 3)")
	flag.DurationVar(&cfg.falseAlarm, "false-alarm-duration", 0, "run the false-alarm phase this long: packet loss and CPU burners, counting address moves (0 skips)")
	flag.Float64Var(&cfg.loss, "loss", 0.1, "false-alarm phase: the share of received IP packets every node drops")
	flag.IntVar(&cfg.burners, "burners", -1, "false-alarm phase: CPU-burning processes (default one per CPU)")
	flag.DurationVar(&cfg.drain, "drain", 0, "run every speaker with --drain-window set to this (0: the drain is off, the speakers' default)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "measure-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cfg.dir = d
	}
	sess, err := netlab.NewSession(ctx, "measure-e2e", cfg.dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer sess.Close()

	started := time.Now()
	fmt.Printf("measure-e2e: started %s on %d CPUs, load average %s; building the lab, logs in %s\n",
		started.UTC().Format(time.RFC3339), runtime.NumCPU(), loadAverage(), cfg.dir)
	var speakerArgs []string
	if cfg.drain > 0 {
		speakerArgs = append(speakerArgs, fmt.Sprintf("--drain-window=%v", cfg.drain))
	}
	fmt.Printf("speaker flags: %v\n", speakerArgs)
	l := productlab.New(sess, productlab.Options{Dir: cfg.dir, Nodes: cfg.nodes, SpeakerArgs: speakerArgs})
	m := &measurement{cfg: cfg, sess: sess, lab: l}
	m.setUp(ctx)
	fmt.Printf("lab up after %v (prefix %s)\n", time.Since(started).Round(time.Second), l.Cluster.Lab.Prefix())

	var results []*result
	results = append(results, m.layer2(ctx)...)
	results = append(results, m.rollout(ctx))
	results = append(results, m.createServices(ctx, false)...)
	results = append(results, m.bgpNodeFailure(ctx))
	results = append(results, m.lastEndpoint(ctx, true))
	if cfg.abrupt {
		results = append(results, m.lastEndpoint(ctx, false))
	}
	results = append(results, m.createServices(ctx, true)...)
	m.falseAlarms(ctx)

	fmt.Printf("\nfinished %s after %v, load average %s\n\n", time.Now().UTC().Format(time.RFC3339),
		time.Since(started).Round(time.Second), loadAverage())
	fmt.Println("| measurement | trials | p50 | p99 | max | target |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		if r != nil && (len(r.ds) > 0 || r.lost > 0) {
			fmt.Println(r.row())
		}
	}
	fmt.Println()
	for _, r := range results {
		if r != nil && r.connections() != "" {
			fmt.Println(r.connections())
		}
	}
}

// loadAverage returns the machine's 1, 5 and 15 minute load averages.
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
