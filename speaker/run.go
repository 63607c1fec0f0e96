package speaker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/herald-dev/herald/speaker/bgp"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/events"
	"github.com/herald-dev/herald/speaker/internal/heartbeat"
	"github.com/herald-dev/herald/speaker/internal/kubeclient"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/membership"
	"github.com/herald-dev/herald/speaker/internal/reconcile"
	"github.com/herald-dev/herald/speaker/internal/report"
	"github.com/herald-dev/herald/speaker/layer2"
)

// Config configures Run. Zero durations take the defaults shown.
type Config struct {
	// NodeName is the node this speaker runs on (required).
	NodeName string
	// Kubeconfig is a kubeconfig file; empty means in-cluster configuration.
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig.
	RESTConfig *rest.Config
	// LoadBalancerClass is the spec.loadBalancerClass this speaker serves;
	// empty serves the Services without one.
	LoadBalancerClass string
	// Namespace is the namespace Herald runs in, where BGP password
	// Secrets are read (the only namespace the speaker reads Secrets in).
	Namespace string

	// Health, when set, is kept up to date for the caller's /healthz and
	// /readyz.
	Health *Health
	// Logger receives the speaker's logs; nil uses slog.Default().
	Logger *slog.Logger
	// Registry receives the metrics; nil makes a private one.
	Registry *prometheus.Registry

	// MemberlistBindAddr and MemberlistPort are where membership listens
	// (default 0.0.0.0:7946).
	MemberlistBindAddr string
	MemberlistPort     int
	// MemberlistAdvertiseAddr is the address other speakers reach this one
	// at; default this Node's first InternalIP.
	MemberlistAdvertiseAddr string
	// MemberlistKeysDir is where the gossip key Secret is mounted (one file
	// per entry, see membership.ParseKeySet). It is reread every second, so
	// keys are added, made primary and removed without a restart. Empty:
	// MemberlistSecretKeyFile decides.
	MemberlistKeysDir string
	// MemberlistSecretKeyFile holds one fixed 16, 24 or 32-byte key (raw or
	// base64) that encrypts membership traffic, used when MemberlistKeysDir
	// is empty; both empty: no encryption.
	MemberlistSecretKeyFile string
	// MemberlistJoin are extra host:port addresses to join, besides the
	// other Nodes' InternalIPs.
	MemberlistJoin []string
	// MemberlistProbeInterval is membership's probe interval (200 ms).
	MemberlistProbeInterval time.Duration

	// HeartbeatPort is the UDP port of the fast failure detector (package
	// heartbeat), the same on every node; negative turns it off and leaves
	// failure detection to membership. Default 7947.
	HeartbeatPort int
	// HeartbeatInterval is the time between two heartbeats (25 ms), and
	// HeartbeatTimeout the silence after which a node is presumed dead
	// (175 ms).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration

	// ProbeKubeProxy enables probing kube-proxy's health checks on this
	// node (see internal/probe).
	ProbeKubeProxy bool
	// KubeProxyHealthPort is kube-proxy's node health port (10256).
	KubeProxyHealthPort int
	// KubeProxyProbeInterval is the time between probe rounds (1 s).
	KubeProxyProbeInterval time.Duration

	// TakeoverDelay is how long a node whose first ready endpoint of an
	// externalTrafficPolicy Local Service has just appeared waits before it
	// may take the Service's address (layer 2) or add its route (BGP) while
	// another node can already forward: kube-proxy on the new node needs a
	// sync to program the endpoint (see decide.SettleTracker). Default
	// DefaultTakeoverDelay (2 s); negative disables it.
	TakeoverDelay time.Duration

	// StartupMemberWait bounds how long a starting speaker that finds no
	// running speaker waits, before its first reconcile, for the speakers
	// it can expect (those of the Nodes with a SpeakerStatus record; see
	// decide.StartupWait) to join membership. Default
	// DefaultStartupMemberWait; negative turns the wait off (the speaker
	// then joins for up to 3 s and reconciles).
	StartupMemberWait time.Duration

	// ConflictHold is how long an address lost in a conflict is held back
	// when membership cannot tell whether the winner lives (5 s).
	ConflictHold time.Duration
	// HandoverGrace is how long a stopping speaker keeps answering after
	// leaving membership, so its successor's gratuitous packets overlap
	// its last answers (300 ms).
	HandoverGrace time.Duration
	// StatusInterval is the minimum time between two writes of this node's
	// SpeakerStatus (1 s).
	StatusInterval time.Duration
	// ResyncInterval recomputes the desired state even without a change,
	// picking up interface changes (10 s).
	ResyncInterval time.Duration

	// DrainWindow, when positive, turns the drain on: for this long after
	// this node takes a layer-2 address over from a node that is still up
	// (a graceful stop, a rollout), the connections it has no state for
	// are forwarded to that node (package internal/drain). It needs
	// CAP_NET_ADMIN; without it the speaker logs so and works without.
	DrainWindow time.Duration
	// DrainMark is the packet and connection mark bit of drained flows
	// (DefaultDrainMark) and DrainRouteTable their routing table
	// (DefaultDrainRouteTable): both must be unused on the node.
	DrainMark       uint32
	DrainRouteTable int

	// Layer2 tunes the layer-2 announcer.
	Layer2 layer2.Config
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Health == nil {
		c.Health = &Health{}
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.MemberlistBindAddr == "" {
		c.MemberlistBindAddr = "0.0.0.0"
	}
	if c.MemberlistPort == 0 {
		c.MemberlistPort = 7946
	}
	if c.HeartbeatPort == 0 {
		c.HeartbeatPort = 7947
	}
	if c.KubeProxyHealthPort == 0 {
		c.KubeProxyHealthPort = 10256
	}
	if c.KubeProxyProbeInterval == 0 {
		c.KubeProxyProbeInterval = time.Second
	}
	if c.TakeoverDelay == 0 {
		c.TakeoverDelay = DefaultTakeoverDelay
	}
	if c.StartupMemberWait == 0 {
		c.StartupMemberWait = DefaultStartupMemberWait
	}
	if c.ConflictHold == 0 {
		c.ConflictHold = 5 * time.Second
	}
	if c.HandoverGrace == 0 {
		c.HandoverGrace = 300 * time.Millisecond
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Second
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 10 * time.Second
	}
	if c.DrainMark == 0 {
		c.DrainMark = DefaultDrainMark
	}
	if c.DrainRouteTable == 0 {
		c.DrainRouteTable = DefaultDrainRouteTable
	}
	if c.Layer2.ConflictHoldoff == 0 {
		// Short enough that the other side's re-assertion within a settle
		// time (see handleConflict) is reported again.
		c.Layer2.ConflictHoldoff = 100 * time.Millisecond
	}
	return c
}

// ErrNoNodeName is returned by Run when Config.NodeName is empty.
var ErrNoNodeName = errors.New("speaker: no node name: set --node-name or the NODE_NAME environment variable")

// Run runs the speaker until ctx is done, then hands its addresses over
// (leaves membership, keeps answering for HandoverGrace, stops) and
// returns. It returns early with an error when it cannot start.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.NodeName == "" {
		return ErrNoNodeName
	}
	log := cfg.Logger.With("node", cfg.NodeName)
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	in, err := startInputs(ctx, cfg, client, log)
	if err != nil {
		return err
	}
	keys, initialKeys, err := loadGossipKeys(cfg, log)
	if err != nil {
		return err
	}
	members, nodeIP, err := joinMembership(cfg, in, initialKeys, keys.poke, log)
	if err != nil {
		return err
	}
	keys.members = members
	annCtx, stopAnnouncer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAnnouncer()
	l2 := layer2.NewAnnouncer(annCtx, cfg.Layer2)
	metrics := report.NewMetrics(cfg.Registry, l2.Stats, members.Counts, in.badClaims.Count)
	recorder := startRecorder(cfg, client, metrics, log)
	defer closeRecorder(recorder)
	fast, err := startHeartbeats(cfg, members, nodeIP, in.changes.Poke, metrics, log)
	if err != nil {
		_ = members.Shutdown()
		return err
	}
	drainer, kernels := startDrain(cfg, nodeIP, metrics, log)
	loop, status := newLoop(cfg, in, client.SpeakerStatuses(), members, fast, l2, nodeIP, recorder, metrics, log)
	if drainer != nil {
		loop.SetDrain(drainer, kernels)
	}
	keys.status = status
	report.RegisterGossipKeyMetrics(cfg.Registry, keys.report)
	keysCtx, stopKeys := context.WithCancel(ctx)
	defer stopKeys()
	go keys.run(keysCtx)

	// Join, and wait for the speakers starting beside this one, before the
	// first reconcile, so it does not claim their addresses meanwhile.
	loop.AwaitPeers(ctx, cfg.StartupMemberWait)

	loop.Run(ctx)

	// Hand over: leave membership so the others take over at once, keep
	// answering while they send their gratuitous packets, then stop.
	start := time.Now()
	if err := members.Leave(time.Second); err != nil {
		log.Warn("leave membership", "err", err)
	}
	time.Sleep(cfg.HandoverGrace)
	stopAnnouncer()
	<-l2.Done()
	if drainer != nil {
		if err := drainer.Close(); err != nil {
			log.Warn("remove drains", "err", err)
		}
	}
	bgpCtx, cancelBGP := context.WithTimeout(context.Background(), 5*time.Second)
	loop.Close(bgpCtx)
	cancelBGP()
	if fast != nil {
		_ = fast.Close()
	}
	_ = members.Shutdown()
	log.Info("handed over", "after", time.Since(start))
	finalCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := status.FinalWrite(finalCtx, time.Now()); err != nil {
		log.Warn("final status write failed", "err", err)
	}
	return nil
}

// inputs are the speaker's started informers, the handlers that tell the
// loop what changed, and this node's Node.
type inputs struct {
	informers *kubeinput.Informers
	changes   *reconcile.Changes
	badClaims *kubeinput.BadClaims
	self      *corev1.Node
}

// startInputs starts the informers, with the loop's handlers, and waits
// for the caches and this node's Node.
func startInputs(ctx context.Context, cfg Config, client *kubeclient.Client, log *slog.Logger) (inputs, error) {
	inf := kubeinput.NewInformers(client.ListWatches(cfg.NodeName, cfg.Namespace), cfg.Namespace, kubeinput.NewInterner())
	in := inputs{informers: inf, badClaims: kubeinput.NewBadClaims(log)}
	in.changes = reconcile.NewChanges(cfg.NodeName, kubeinput.NewSummaries(decide.NewSettleTracker(cfg.TakeoverDelay)), in.badClaims)
	if err := in.changes.Register(inf); err != nil {
		return inputs{}, fmt.Errorf("speaker: %w", err)
	}
	if err := inf.FollowPeers(cfg.NodeName); err != nil {
		return inputs{}, fmt.Errorf("speaker: %w", err)
	}
	inf.Start(ctx)
	log.Info("waiting for caches")
	if err := inf.WaitForCacheSync(ctx); err != nil {
		return inputs{}, fmt.Errorf("speaker: %w", err)
	}
	self, err := waitForOwnNode(ctx, inf, cfg.NodeName, log)
	if err != nil {
		return inputs{}, err
	}
	in.self = self
	return in, nil
}

// joinMembership starts membership at this node's address (the Node's
// first InternalIP unless configured), which it returns, encrypted with
// keys; keysChanged is called when its keyring changes.
func joinMembership(cfg Config, in inputs, keys membership.KeySet, keysChanged func(), log *slog.Logger) (*membership.Membership, netip.Addr, error) {
	advertise := cfg.MemberlistAdvertiseAddr
	if advertise == "" {
		a, ok := kubeinput.NodeAddress(in.self)
		if !ok {
			return nil, netip.Addr{}, fmt.Errorf("speaker: node %s has no InternalIP: set --memberlist-advertise-address", cfg.NodeName)
		}
		advertise = a.String()
	}
	nodeIP, _ := netip.ParseAddr(advertise)
	members, err := membership.New(membership.Config{
		Name: cfg.NodeName, BindAddr: cfg.MemberlistBindAddr, BindPort: cfg.MemberlistPort,
		AdvertiseAddr: advertise, Keys: keys, KeysChanged: keysChanged, ProbeInterval: cfg.MemberlistProbeInterval,
		Logger: log.With("component", "memberlist"),
	}, in.changes.Poke)
	return members, nodeIP, err
}

// startHeartbeats starts the fast failure detector at nodeIP, unless it
// is turned off (nil, nil).
func startHeartbeats(cfg Config, members *membership.Membership, nodeIP netip.Addr, changed func(), metrics *report.Metrics,
	log *slog.Logger) (*heartbeat.Heartbeats, error) {
	if cfg.HeartbeatPort < 0 {
		return nil, nil
	}
	// A silent peer's kernel is asked before it is presumed dead; without
	// the raw socket, silence alone decides (more false alarms when nodes
	// are starved of CPU).
	var prober heartbeat.Prober
	if echo, err := heartbeat.ListenEcho(nodeIP); err != nil {
		log.Warn("fast failure detector: silent nodes' kernels are not probed, so a node starved of CPU can be presumed dead", "err", err)
	} else {
		prober = echo
	}
	h, err := heartbeat.Start(heartbeat.Config{
		Name: cfg.NodeName, Listen: netip.AddrPortFrom(nodeIP, uint16(cfg.HeartbeatPort)),
		Interval: cfg.HeartbeatInterval, Timeout: cfg.HeartbeatTimeout, Prober: prober,
		Alive:   func(n string) bool { return members.Alive()[n] },
		Changed: changed,
		Observe: func(c heartbeat.Change) { metrics.HeartbeatVerdicts.WithLabelValues(c.Kind.String()).Inc() },
		Logger:  log.With("component", "heartbeat"),
	})
	if err != nil {
		return nil, fmt.Errorf("speaker: fast failure detector (set --heartbeat-port=-1 to turn it off): %w", err)
	}
	return h, nil
}

// newLoop makes the status writer and the reconcile loop.
func newLoop(cfg Config, in inputs, statuses report.StatusClient, members *membership.Membership, fast *heartbeat.Heartbeats,
	l2 *layer2.Announcer, nodeIP netip.Addr, recorder *events.Recorder, metrics *report.Metrics,
	log *slog.Logger) (*reconcile.Loop, *report.StatusWriter) {
	status := report.NewStatusWriter(statuses, in.informers.Statuses, cfg.NodeName, cfg.StatusInterval, nodeUID(in.informers, cfg.NodeName), func(err error) {
		if err != nil {
			metrics.StatusWrites.WithLabelValues("error").Inc()
			log.Warn("status write failed", "err", err)
			return
		}
		metrics.StatusWrites.WithLabelValues("ok").Inc()
	})
	// BGP: the GoBGP server starts with this node's first BGPPeer.
	var idAddrs []netip.Addr
	if a, ok := kubeinput.NodeAddress(in.self); ok {
		idAddrs = append(idAddrs, a)
	}
	loop := reconcile.New(reconcile.Config{
		NodeName: cfg.NodeName, LoadBalancerClass: cfg.LoadBalancerClass, Namespace: cfg.Namespace,
		ConflictHold: cfg.ConflictHold, ResyncInterval: cfg.ResyncInterval,
		ProbeKubeProxy: cfg.ProbeKubeProxy, NodeIP: nodeIP, KubeProxyHealthPort: cfg.KubeProxyHealthPort,
		KubeProxyProbeInterval: cfg.KubeProxyProbeInterval,
		MemberlistPort:         cfg.MemberlistPort, MemberlistJoin: cfg.MemberlistJoin,
		DrainWindow: cfg.DrainWindow,
	}, reconcile.Deps{
		Log: log, Informers: in.informers, Changes: in.changes, Members: members, Layer2: l2,
		FastDetector: fastDetector(fast),
		BGP:          func(o bgp.Options) (reconcile.BGPSpeaker, error) { return bgp.New(o) },
		RouterID:     bgp.RouterIDFor(cfg.NodeName, append(idAddrs, nodeIP)),
		Status:       status, Metrics: metrics, Health: cfg.Health, Recorder: recorder,
	})
	return loop, status
}

// startRecorder starts the recorder of the speaker's Events, which counts
// the events it drops in metrics.
func startRecorder(cfg Config, client *kubeclient.Client, metrics *report.Metrics, log *slog.Logger) *events.Recorder {
	for _, r := range events.DropReasons {
		metrics.EventsDropped.WithLabelValues(string(r))
	}
	return events.Start(client.Events(), events.Config{
		Source:  corev1.EventSource{Component: "herald-speaker", Host: cfg.NodeName},
		Dropped: func(r events.DropReason) { metrics.EventsDropped.WithLabelValues(string(r)).Inc() },
		Log:     log.With("component", "events"),
	})
}

// closeRecorder writes the Events still queued when the speaker stops, for
// at most 2 s.
func closeRecorder(r *events.Recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.Close(ctx)
}

// fastDetector returns h as the loop's FastDetector: nil (not a typed nil)
// when it is off.
func fastDetector(h *heartbeat.Heartbeats) reconcile.FastDetector {
	if h == nil {
		return nil
	}
	return h
}

// newClient returns the speaker's API client of cfg.
func newClient(cfg Config) (*kubeclient.Client, error) {
	restCfg := cfg.RESTConfig
	if restCfg == nil {
		var err error
		if restCfg, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig); err != nil {
			return nil, fmt.Errorf("speaker: load kubeconfig: %w", err)
		}
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.UserAgent = "herald-speaker/" + cfg.NodeName
	client, err := kubeclient.New(restCfg)
	if err != nil {
		return nil, fmt.Errorf("speaker: %w", err)
	}
	return client, nil
}

// waitForOwnNode waits until this node's Node is in the cache: without it
// the speaker cannot tell which advertisements select it.
func waitForOwnNode(ctx context.Context, inf *kubeinput.Informers, name string, log *slog.Logger) (*corev1.Node, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	logged := time.Now()
	for {
		if n, err := inf.Nodes.Get(name); err == nil {
			return n, nil
		}
		if time.Since(logged) > 10*time.Second {
			log.Warn("waiting for this node's Node object")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("speaker: waiting for Node %s: %w", name, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// nodeUID returns a function giving the UID of Node name, "" while unknown.
func nodeUID(inf *kubeinput.Informers, name string) func() types.UID {
	return func() types.UID {
		if n, err := inf.Nodes.Get(name); err == nil {
			return n.UID
		}
		return ""
	}
}

// readSecretKey reads a membership key: 16, 24 or 32 raw bytes, or their
// base64 encoding.
func readSecretKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("speaker: read memberlist secret key: %w", err)
	}
	valid := func(k []byte) bool { return len(k) == 16 || len(k) == 24 || len(k) == 32 }
	if trimmed := strings.TrimSpace(string(b)); trimmed != "" {
		if k, err := base64.StdEncoding.DecodeString(trimmed); err == nil && valid(k) {
			return k, nil
		}
	}
	if valid(b) {
		return b, nil
	}
	return nil, fmt.Errorf("speaker: memberlist secret key in %s: want 16, 24 or 32 bytes, raw or base64", path)
}
