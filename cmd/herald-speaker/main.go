// Command herald-speaker runs Herald's speaker on one node: it announces
// the load-balancer addresses its node should announce, over ARP and NDP
// (layer 2), and keeps a SpeakerStatus record of them. Run it on every node,
// on the host network, with CAP_NET_RAW (a DaemonSet).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/herald-dev/herald/cmd/internal/daemon"
	"github.com/herald-dev/herald/speaker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "herald-speaker:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg         speaker.Config
		logOpts     daemon.LogOptions
		metricsAddr string
		gcPercent   int
		takeover    time.Duration
	)
	fs := pflag.NewFlagSet("herald-speaker", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: herald-speaker [flags]\n\n"+
			"Announces this node's share of Herald's load-balancer addresses (ARP for IPv4,\n"+
			"NDP for IPv6) and records it in the SpeakerStatus named after the node.\n"+
			"Speakers find each other through the Node objects' InternalIPs and keep a\n"+
			"gossip membership on --memberlist-port (UDP and TCP): open it between nodes.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of the Node this speaker runs on (default $NODE_NAME)")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty uses the in-cluster service account")
	fs.StringVar(&cfg.LoadBalancerClass, "load-balancer-class", "", "serve only Services with this spec.loadBalancerClass; empty serves the Services without a class")
	fs.StringVar(&cfg.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace Herald runs in, where BGP password Secrets are read (default $POD_NAMESPACE)")
	fs.StringVar(&metricsAddr, "metrics-address", ":7473", "address serving /metrics, /healthz and /readyz; empty disables it")
	fs.StringVar(&logOpts.Format, "log-format", "json", "log format: json or text")
	fs.StringVar(&logOpts.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.MemberlistBindAddr, "memberlist-bind-address", "0.0.0.0", "address the speaker membership listens on")
	fs.IntVar(&cfg.MemberlistPort, "memberlist-port", 7946, "UDP and TCP port of the speaker membership, the same on every node")
	fs.StringVar(&cfg.MemberlistAdvertiseAddr, "memberlist-advertise-address", "", "address other speakers reach this one at (default this Node's first InternalIP)")
	fs.StringVar(&cfg.MemberlistSecretKeyFile, "memberlist-secret-key-file", "", "file holding a 16, 24 or 32-byte key (raw or base64) that encrypts membership traffic; the same on every node")
	fs.StringSliceVar(&cfg.MemberlistJoin, "memberlist-join", nil, "extra host:port addresses of speakers to join, besides the Nodes' InternalIPs")
	fs.DurationVar(&cfg.MemberlistProbeInterval, "memberlist-probe-interval", 0, "membership probe interval; a dead speaker is detected in about 2 to 5 intervals (default 200ms)")
	fs.DurationVar(&takeover, "takeover-delay", speaker.DefaultTakeoverDelay, "for externalTrafficPolicy Local: how long a node whose first local endpoint just became ready waits before it takes an address (layer 2) or adds its route (BGP) while another node still forwards, so its kube-proxy has programmed the endpoint first; above kube-proxy's --iptables-min-sync-period; 0 disables")
	fs.BoolVar(&cfg.ProbeKubeProxy, "probe-kube-proxy", false, "probe kube-proxy's health checks on this node (healthCheckNodePort /healthz for externalTrafficPolicy Local, the node health port for every Service) and withdraw when it says the node cannot serve")
	fs.IntVar(&cfg.KubeProxyHealthPort, "kube-proxy-health-port", 10256, "kube-proxy's node health port (its --healthz-bind-address port)")
	fs.IntVar(&gcPercent, "gc-percent", 0, "Go garbage collection target, as GOGC (the heap grows to live data x (1 + gc-percent/100) between collections); 0 keeps $GOGC or Go's default, 100. 50 kept the resident memory under 150 MiB at 10,000 Services in the lab, but the reaction p99 was worse there (docs/speaker.md); ignored when $GOGC is set")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == pflag.ErrHelp {
			return nil
		}
		return err
	}

	if _, set := os.LookupEnv("GOGC"); !set && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}

	logger, err := daemon.NewLogger(os.Stderr, logOpts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	cfg.TakeoverDelay = takeover
	if takeover <= 0 {
		cfg.TakeoverDelay = -1 // speaker.Config: negative disables, zero is the default
	}
	cfg.Logger = logger
	cfg.Registry = daemon.NewRegistry()
	cfg.Health = &speaker.Health{}
	endpoint := daemon.Endpoint{Addr: metricsAddr, Gatherer: cfg.Registry, Healthy: cfg.Health.Healthy, Ready: cfg.Health.Ready}
	errc, err := endpoint.Serve(ctx)
	if err != nil {
		return err
	}
	go func() {
		for err := range errc {
			logger.Error("metrics endpoint", "err", err)
		}
	}()
	logger.Info("starting speaker", "node", cfg.NodeName, "loadBalancerClass", cfg.LoadBalancerClass)
	return speaker.Run(ctx, cfg)
}
