package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/herald-dev/herald/cmd/internal/daemon"
	"github.com/herald-dev/herald/controller"
)

// options are the command line, parsed.
type options struct {
	kubeconfig         string
	apiQPS             float32
	apiBurst           int
	metricsAddr        string
	profiling          bool
	log                daemon.LogOptions
	class              string
	namespace          string
	memberlist         string
	memberlistRecreate bool
	workers            int
	resync             time.Duration
	leaderElect        controller.LeaderElection
	leaderEnabled      bool
}

// defaultNamespace is the namespace Herald runs in: $POD_NAMESPACE (set
// from the downward API in the Deployment) or herald-system.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "herald-system"
}

// defaultMetricsAddress is where /metrics, /healthz and /readyz listen unless
// --metrics-bind-address says otherwise: the pod's own address ($HERALD_POD_IP, set
// from the downward API's status.podIP) and port 7472, rather than every interface of
// the pod; every address when podIP is empty (outside Kubernetes).
func defaultMetricsAddress(podIP string) string {
	return net.JoinHostPort(podIP, "7472")
}

// parseFlags parses args; on --help it prints the usage to out and returns
// pflag.ErrHelp.
func parseFlags(name string, args []string, out io.Writer) (options, error) {
	var o options
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s [flags]\n\n"+
			"herald-controller allocates addresses from Herald's IPPools to Services of type\n"+
			"LoadBalancer (status.loadBalancer.ingress) and to spec.externalIPs, and keeps the\n"+
			"status of IPPools, L2Advertisements, BGPPeers and BGPAdvertisements. Run two replicas:\n"+
			"one leads (a Lease), the other takes over if it goes.\n\nFlags:\n", name)
		fs.PrintDefaults()
	}
	ns := defaultNamespace()
	fs.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"),
		"Path of a kubeconfig file ($KUBECONFIG when set). Empty: the in-cluster service account.")
	fs.Float32Var(&o.apiQPS, "kube-api-qps", 300, "Requests per second the controller may send to the apiserver (Events have their own, lower budget).")
	fs.IntVar(&o.apiBurst, "kube-api-burst", 600, "Requests the controller may send to the apiserver in a burst above --kube-api-qps.")
	fs.StringVar(&o.class, "load-balancer-class", "",
		"The spec.loadBalancerClass of the Services to serve. Empty: serve only Services without a class, and the\n"+
			"spec.externalIPs of Services that are not of type LoadBalancer.")
	fs.StringVar(&o.namespace, "namespace", ns,
		"The namespace Herald runs in, where a BGPPeer's passwordSecretRef without a namespace points; $POD_NAMESPACE when set.")
	fs.StringVar(&o.memberlist, "memberlist-secret-name", "herald-memberlist",
		"Secret in --namespace holding the speakers' gossip keys: the leader creates it with one random 32-byte key\n"+
			"(entry \"key\") when it is missing and no SpeakerStatus shows speakers using keys, and never changes an\n"+
			"existing one. Deleted while speakers use keys, it is reported (Event MemberlistSecretMissing), not made\n"+
			"again. Empty: leave it to the user.")
	fs.BoolVar(&o.memberlistRecreate, "memberlist-secret-recreate", false,
		"Create a missing --memberlist-secret-name Secret with a new key even while speakers use keys; they rotate to it.")
	fs.IntVar(&o.workers, "workers", controller.DefaultWorkers, "Number of Services reconciled in parallel.")
	fs.DurationVar(&o.resync, "resync", 10*time.Minute,
		"How often every object is reconciled again even without a change; 0 disables it.")
	fs.BoolVar(&o.profiling, "profiling", false, "also serve Go's profiles (/debug/pprof/) on the metrics address")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", defaultMetricsAddress(os.Getenv("HERALD_POD_IP")),
		"Address serving /metrics, /healthz and /readyz (ready once the caches are synced and, on the leader,\n"+
			"existing allocations are imported). Empty disables it. Its default is the pod's own address\n"+
			"$HERALD_POD_IP (the Deployment sets it from status.podIP), port 7472; every address when unset.")
	fs.StringVar(&o.log.Format, "log-format", "json", "Log format: json or text.")
	fs.StringVar(&o.log.Level, "log-level", "info", "Log level: debug, info, warn or error.")
	fs.BoolVar(&o.leaderEnabled, "leader-elect", true,
		"Act only while holding the Lease, so that of several replicas exactly one writes. Disable only for a single replica.")
	fs.StringVar(&o.leaderElect.LeaseName, "leader-elect-lease-name", "herald-controller", "Name of the Lease used for leader election.")
	fs.StringVar(&o.leaderElect.LeaseNamespace, "leader-elect-lease-namespace", ns,
		"Namespace of the Lease used for leader election; $POD_NAMESPACE when set.")
	fs.StringVar(&o.leaderElect.Identity, "leader-elect-identity", os.Getenv("POD_NAME"),
		"This replica's name in the Lease: $POD_NAME when set, else the hostname plus a random suffix.")
	fs.DurationVar(&o.leaderElect.LeaseDuration, "leader-elect-lease-duration", controller.DefaultLeaseDuration,
		"How long standbys wait after the last renewal before taking over a Lease; a standby takes over within\n"+
			"about this plus the retry period when the leader dies, and within the retry period when it steps down.")
	fs.DurationVar(&o.leaderElect.RenewDeadline, "leader-elect-renew-deadline", controller.DefaultRenewDeadline,
		"How long the leader keeps failing to renew before it stops acting; shorter than the lease duration.")
	fs.DurationVar(&o.leaderElect.RetryPeriod, "leader-elect-retry-period", controller.DefaultRetryPeriod,
		"How often the leader renews and standbys try to acquire the Lease.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.leaderElect.Enabled = o.leaderEnabled
	return o, nil
}
