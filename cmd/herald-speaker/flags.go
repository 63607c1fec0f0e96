package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/herald-dev/herald/cmd/internal/daemon"
	"github.com/herald-dev/herald/speaker"
)

// metricsPort is the port of /metrics, /healthz and /readyz.
const metricsPort = 7473

// options are the command line, parsed.
type options struct {
	cfg         speaker.Config
	log         daemon.LogOptions
	metricsAddr string
	profiling   bool
	gcPercent   int
	takeover    time.Duration
	startupWait time.Duration
}

// defaultMetricsAddress is where /metrics, /healthz and /readyz listen unless
// --metrics-address says otherwise: the node's own address ($HERALD_NODE_IP, which
// the DaemonSet sets from the downward API's status.hostIP) and metricsPort. The
// speaker uses the host network, so every interface of the node would otherwise
// serve them, including ones that face other networks. Without $HERALD_NODE_IP
// (outside Kubernetes) it is every address.
func defaultMetricsAddress(nodeIP string) string {
	return net.JoinHostPort(nodeIP, strconv.Itoa(metricsPort))
}

// parseFlags parses args, with defaults from getenv; on --help it prints the usage to
// out and returns pflag.ErrHelp.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	cfg := &o.cfg
	fs := pflag.NewFlagSet("herald-speaker", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: herald-speaker [flags]\n\n"+
			"Announces this node's share of Herald's load-balancer addresses (ARP for IPv4,\n"+
			"NDP for IPv6) and records it in the SpeakerStatus named after the node.\n"+
			"Speakers find each other through the Node objects' InternalIPs and keep a\n"+
			"gossip membership on --memberlist-port (UDP and TCP): open it between nodes.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.NodeName, "node-name", getenv("NODE_NAME"), "name of the Node this speaker runs on (default $NODE_NAME)")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty uses the in-cluster service account")
	fs.StringVar(&cfg.LoadBalancerClass, "load-balancer-class", "", "serve only Services with this spec.loadBalancerClass; empty serves the Services without a class")
	fs.StringVar(&cfg.Namespace, "namespace", getenv("POD_NAMESPACE"), "namespace Herald runs in, where BGP password Secrets are read (default $POD_NAMESPACE)")
	fs.StringVar(&o.metricsAddr, "metrics-address", defaultMetricsAddress(getenv("HERALD_NODE_IP")),
		"address serving /metrics, /healthz and /readyz; empty disables it. Its default is the node's own address $HERALD_NODE_IP (the DaemonSet sets it from status.hostIP), port 7473; every address when $HERALD_NODE_IP is unset")
	fs.BoolVar(&o.profiling, "profiling", false, "also serve Go's profiles (/debug/pprof/) on the metrics address")
	fs.StringVar(&o.log.Format, "log-format", "json", "log format: json or text")
	fs.StringVar(&o.log.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.MemberlistBindAddr, "memberlist-bind-address", "0.0.0.0", "address the speaker membership listens on")
	fs.IntVar(&cfg.MemberlistPort, "memberlist-port", 7946, "UDP and TCP port of the speaker membership, the same on every node")
	fs.StringVar(&cfg.MemberlistAdvertiseAddr, "memberlist-advertise-address", "", "address other speakers reach this one at (default this Node's first InternalIP)")
	fs.StringVar(&cfg.MemberlistKeysDir, "memberlist-keys-dir", "", "directory where the gossip key Secret is mounted (entries key, key-<suffix> and primary; docs/reference.md), reread every second so keys rotate without a restart")
	fs.StringVar(&cfg.MemberlistSecretKeyFile, "memberlist-secret-key-file", "", "file holding one fixed 16, 24 or 32-byte key (raw or base64) that encrypts membership traffic, when --memberlist-keys-dir is not set; rotating it takes a restart that splits the membership")
	fs.StringSliceVar(&cfg.MemberlistJoin, "memberlist-join", nil, "extra host:port addresses of speakers to join, besides the Nodes' InternalIPs")
	fs.DurationVar(&cfg.MemberlistProbeInterval, "memberlist-probe-interval", 0, "membership probe interval; a dead speaker is detected in about 5 to 8 intervals (default 200ms)")
	fs.IntVar(&cfg.HeartbeatPort, "heartbeat-port", 7947, "UDP port of the fast failure detector, the same on every node: each layer-2 address's owner sends heartbeats to the node that would take it over, which takes it when they stop; -1 turns it off and leaves failure detection to membership (about a second)")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 25*time.Millisecond, "time between two heartbeats to each watching node")
	fs.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", 175*time.Millisecond, "silence after which a node is presumed dead and its layer-2 addresses taken over; at least 3 heartbeat intervals (docs/speaker.md weighs it against false alarms)")
	fs.DurationVar(&o.takeover, "takeover-delay", speaker.DefaultTakeoverDelay, "for externalTrafficPolicy Local: how long a node whose first local endpoint just became ready waits before it takes an address (layer 2) or adds its route (BGP) while another node still forwards, so its kube-proxy has programmed the endpoint first; above kube-proxy's --iptables-min-sync-period; 0 disables")
	fs.DurationVar(&o.startupWait, "startup-member-wait", speaker.DefaultStartupMemberWait, "at start, when no other speaker runs yet (the whole cluster restarts), wait at most this long before announcing anything for the speakers of the Nodes that have a SpeakerStatus record to join, so this one does not claim their addresses until they do; a speaker that finds one already running never waits; 0 turns it off")
	fs.DurationVar(&cfg.StatusInterval, "status-interval", time.Second, "minimum time between two writes of this node's SpeakerStatus record (a burst of changes costs one write); a node announcing thousands of addresses writes a record of some 100 bytes per address each time")
	fs.BoolVar(&cfg.ProbeKubeProxy, "probe-kube-proxy", false, "probe kube-proxy's health checks on this node (healthCheckNodePort /healthz for externalTrafficPolicy Local, the node health port for every Service) and withdraw when it says the node cannot serve")
	fs.IntVar(&cfg.KubeProxyHealthPort, "kube-proxy-health-port", 10256, "kube-proxy's node health port (its --healthz-bind-address port)")
	fs.DurationVar(&cfg.DrainWindow, "drain-window", 0, "after this node takes a layer-2 address over from a node that is still up (a graceful stop, a rollout), or goes on advertising a BGP address that such a node withdrew while still serving it (its last local pod terminating), forward for this long the TCP connections it has no state for to that node, so they are not reset (docs/speaker.md, \"Draining planned moves\"); needs CAP_NET_ADMIN (deploy/components/drain). 0 turns it off")
	fs.Uint32Var(&cfg.DrainMark, "drain-mark", speaker.DefaultDrainMark, "with --drain-window: the packet and connection mark bit of drained connections; it must be unused by other software on the node (kube-proxy uses 0x4000 and 0x8000)")
	fs.IntVar(&cfg.DrainRouteTable, "drain-route-table", speaker.DefaultDrainRouteTable, "with --drain-window: the routing table of drained connections' routes; it must be unused on the node")
	fs.IntVar(&o.gcPercent, "gc-percent", 0, "Go garbage collection target, as GOGC (the heap grows to live data x (1 + gc-percent/100) between collections); 0 keeps $GOGC or Go's default, 100. 50 kept the resident memory under 150 MiB at 10,000 Services in the lab, but the reaction p99 was worse there (docs/speaker.md); ignored when $GOGC is set")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.startupWait < 0 {
		return o, fmt.Errorf("--startup-member-wait=%v: want a duration, or 0 for off", o.startupWait)
	}
	if cfg.StatusInterval <= 0 {
		return o, fmt.Errorf("--status-interval=%v: want a positive duration", cfg.StatusInterval)
	}
	if cfg.HeartbeatPort > 65535 || cfg.HeartbeatPort < -1 {
		return o, fmt.Errorf("--heartbeat-port=%d: want a port, or -1 for off", cfg.HeartbeatPort)
	}
	if cfg.HeartbeatInterval <= 0 || cfg.HeartbeatTimeout < 3*cfg.HeartbeatInterval {
		return o, fmt.Errorf("--heartbeat-timeout=%v must be at least 3 times --heartbeat-interval=%v (and the interval positive)", cfg.HeartbeatTimeout, cfg.HeartbeatInterval)
	}
	return o, nil
}
