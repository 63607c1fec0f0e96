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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldinformers "github.com/herald-dev/herald/config/generated/informers/externalversions"
	"github.com/herald-dev/herald/speaker/bgp"
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
	// MemberlistSecretKeyFile holds a 16, 24 or 32-byte key (raw or
	// base64) that encrypts membership traffic; empty: no encryption.
	MemberlistSecretKeyFile string
	// MemberlistJoin are extra host:port addresses to join, besides the
	// other Nodes' InternalIPs.
	MemberlistJoin []string
	// MemberlistProbeInterval is membership's probe interval (200 ms).
	MemberlistProbeInterval time.Duration

	// ProbeKubeProxy enables probing kube-proxy's health checks on this
	// node (see kubeProxyProber).
	ProbeKubeProxy bool
	// KubeProxyHealthPort is kube-proxy's node health port (10256).
	KubeProxyHealthPort int
	// KubeProxyProbeInterval is the time between probe rounds (1 s).
	KubeProxyProbeInterval time.Duration

	// TakeoverDelay is how long a node whose first ready endpoint of an
	// externalTrafficPolicy Local Service has just appeared waits before it
	// may take the Service's address (layer 2) or add its route (BGP) while
	// another node can already forward: kube-proxy on the new node needs a
	// sync to program the endpoint (see SettleTracker). Default
	// DefaultTakeoverDelay (2 s); negative disables it.
	TakeoverDelay time.Duration

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
	if c.KubeProxyHealthPort == 0 {
		c.KubeProxyHealthPort = 10256
	}
	if c.KubeProxyProbeInterval == 0 {
		c.KubeProxyProbeInterval = time.Second
	}
	if c.TakeoverDelay == 0 {
		c.TakeoverDelay = DefaultTakeoverDelay
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
	if c.Layer2.ConflictHoldoff == 0 {
		// Short enough that the other side's re-assertion within a settle
		// time (see handleConflict) is reported again.
		c.Layer2.ConflictHoldoff = 100 * time.Millisecond
	}
	return c
}

// ErrNoNodeName is returned by Run when Config.NodeName is empty.
var ErrNoNodeName = errors.New("speaker: no node name: set --node-name or the NODE_NAME environment variable")

// serviceIndex indexes EndpointSlices by namespace/service-name.
const serviceIndex = "service"

// Run runs the speaker until ctx is done, then hands its addresses over
// (leaves membership, keeps answering for HandoverGrace, stops) and
// returns. It returns early with an error when it cannot start.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.NodeName == "" {
		return ErrNoNodeName
	}
	log := cfg.Logger.With("node", cfg.NodeName)
	restCfg := cfg.RESTConfig
	if restCfg == nil {
		var err error
		if restCfg, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig); err != nil {
			return fmt.Errorf("speaker: load kubeconfig: %w", err)
		}
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.UserAgent = "herald-speaker/" + cfg.NodeName
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("speaker: kubernetes client: %w", err)
	}
	herald, err := heraldclient.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("speaker: herald client: %w", err)
	}
	var secretKey []byte
	if cfg.MemberlistSecretKeyFile != "" {
		if secretKey, err = readSecretKey(cfg.MemberlistSecretKeyFile); err != nil {
			return err
		}
	}

	s := &speaker{cfg: cfg, log: log, kube: kube, herald: herald, trigger: make(chan struct{}, 1), settled: make(chan netip.Addr, 64), interner: newInterner(), health: cfg.Health,
		sums: newSummaries(), inc: NewIncremental(), badClaims: newBadClaims(log)}
	s.configDirty.Store(true)
	if err := s.startInformers(ctx); err != nil {
		return err
	}
	self, err := s.waitForOwnNode(ctx)
	if err != nil {
		return err
	}
	advertise := cfg.MemberlistAdvertiseAddr
	if advertise == "" {
		a, ok := nodeAddress(self)
		if !ok {
			return fmt.Errorf("speaker: node %s has no InternalIP: set --memberlist-advertise-address", cfg.NodeName)
		}
		advertise = a.String()
	}
	s.nodeIP, _ = netip.ParseAddr(advertise)

	s.members, err = newMembership(MembershipConfig{
		Name: cfg.NodeName, BindAddr: cfg.MemberlistBindAddr, BindPort: cfg.MemberlistPort,
		AdvertiseAddr: advertise, SecretKey: secretKey, ProbeInterval: cfg.MemberlistProbeInterval,
		Logger: log.With("component", "memberlist"),
	}, s.poke)
	if err != nil {
		return err
	}
	joinCtx, cancelJoin := context.WithTimeout(ctx, 3*time.Second)
	n := s.joinPeers(joinCtx, true)
	cancelJoin()
	log.Info("joined speaker membership", "contacted", n, "members", len(s.members.Alive()), "advertise", advertise)

	annCtx, stopAnnouncer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAnnouncer()
	s.l2 = layer2.NewAnnouncer(annCtx, cfg.Layer2)
	s.announcers = []announcer{&layer2Announcer{a: s.l2}}
	// BGP: the GoBGP server starts with this node's first BGPPeer.
	var idAddrs []netip.Addr
	if a, ok := nodeAddress(self); ok {
		idAddrs = append(idAddrs, a)
	}
	s.bgp = newBGPAnnouncer(bgp.RouterIDFor(cfg.NodeName, append(idAddrs, s.nodeIP)), log.With("component", "bgp"),
		func(o bgp.Options) (bgpSpeaker, error) { return bgp.New(o) })
	s.announcers = append(s.announcers, s.bgp)

	s.metrics = newMetrics(cfg.Registry, s.l2.Stats, s.members.counts, s.badClaims.count)
	s.status = newStatusWriter(herald, s.statusLister, cfg.NodeName, cfg.StatusInterval, s.nodeUID, func(err error) {
		if err != nil {
			s.metrics.statusWrites.WithLabelValues("error").Inc()
			log.Warn("status write failed", "err", err)
			return
		}
		s.metrics.statusWrites.WithLabelValues("ok").Inc()
	})
	s.statusForHandlers.Store(s.status)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	s.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "herald-speaker", Host: cfg.NodeName})

	cfg.Health.resync.Store(int64(cfg.ResyncInterval))
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go s.status.run(bg)
	go s.joinLoop(bg)
	go s.janitorLoop(bg)
	if cfg.ProbeKubeProxy {
		go s.probeLoop(bg)
	}

	s.loop(ctx)

	// Hand over: leave membership so the others take over at once, keep
	// answering while they send their gratuitous packets, then stop.
	s.leaving.Store(true)
	stopBackground()
	start := time.Now()
	if err := s.members.Leave(time.Second); err != nil {
		log.Warn("leave membership", "err", err)
	}
	time.Sleep(cfg.HandoverGrace)
	stopAnnouncer()
	<-s.l2.Done()
	bgpCtx, cancelBGP := context.WithTimeout(context.Background(), 5*time.Second)
	s.bgp.Close(bgpCtx)
	cancelBGP()
	_ = s.members.Shutdown()
	log.Info("handed over", "after", time.Since(start))
	finalCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.status.finalWrite(finalCtx, time.Now()); err != nil {
		log.Warn("final status write failed", "err", err)
	}
	return nil
}

// startInformers starts the informers, trimmed by transformObject, and
// waits for the caches that the first reconcile needs. Secrets (BGP
// passwords) are not waited for: a speaker allowed no Secrets still
// announces at layer 2.
func (s *speaker) startInformers(ctx context.Context) error {
	tf := transformObject(s.interner)
	kf := informers.NewSharedInformerFactoryWithOptions(s.kube, 0, informers.WithTransform(tf))
	sf := informers.NewSharedInformerFactoryWithOptions(s.kube, 0, informers.WithTransform(tf), informers.WithNamespace(s.cfg.Namespace))
	hf := heraldinformers.NewSharedInformerFactoryWithOptions(s.herald, 0, heraldinformers.WithTransform(tf))

	svcInf := kf.Core().V1().Services()
	sliceInf := kf.Discovery().V1().EndpointSlices()
	nodeInf := kf.Core().V1().Nodes()
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{serviceIndex: sliceServiceKey}); err != nil {
		return fmt.Errorf("speaker: index EndpointSlices: %w", err)
	}
	s.services, s.slices, s.nodes = svcInf.Lister(), sliceInf.Informer().GetIndexer(), nodeInf.Lister()
	h := hf.Herald().V1alpha1()
	s.pools, s.l2ads, s.peers, s.bgpads = h.IPPools().Lister(), h.L2Advertisements().Lister(), h.BGPPeers().Lister(), h.BGPAdvertisements().Lister()
	s.statusLister = h.SpeakerStatuses().Lister()
	claimInf := h.AddressClaims()
	s.claims = claimInf.Lister()
	var secrets cache.SharedIndexInformer
	if s.cfg.Namespace != "" {
		secrets = sf.Core().V1().Secrets().Informer()
		s.secrets = sf.Core().V1().Secrets().Lister()
	}

	changed := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.poke() },
		UpdateFunc: func(any, any) { s.poke() },
		DeleteFunc: func(any) { s.poke() },
	}
	configChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.configDirty.Store(true); s.poke() },
		UpdateFunc: func(any, any) { s.configDirty.Store(true); s.poke() },
		DeleteFunc: func(any) { s.configDirty.Store(true); s.poke() },
	}
	// Services and EndpointSlices also mark their Service dirty, so the
	// reconcile rebuilds only the summaries of the Services that changed.
	serviceChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.sums.markService(o); s.poke() },
		UpdateFunc: func(_, o any) { s.sums.markService(o); s.poke() },
		DeleteFunc: func(o any) { s.sums.markService(o); s.poke() },
	}
	sliceChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.sums.markSlice(o); s.poke() },
		UpdateFunc: func(old, o any) { s.sums.markSlice(old); s.sums.markSlice(o); s.poke() },
		DeleteFunc: func(o any) { s.sums.markSlice(o); s.poke() },
	}
	// A claim marks the Services it lists (before and after an update)
	// dirty: they are the only ones whose addresses it decides.
	claimChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.badClaims.observe(o); s.sums.markClaim(o); s.poke() },
		UpdateFunc: func(old, o any) { s.badClaims.observe(o); s.sums.markClaim(old); s.sums.markClaim(o); s.poke() },
		DeleteFunc: func(o any) { s.badClaims.forget(o); s.sums.markClaim(o); s.poke() },
	}
	for _, w := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{{svcInf.Informer(), serviceChanged}, {sliceInf.Informer(), sliceChanged}, {nodeInf.Informer(), changed}, {claimInf.Informer(), claimChanged}} {
		if _, err := w.inf.AddEventHandler(w.h); err != nil {
			return fmt.Errorf("speaker: watch: %w", err)
		}
	}
	for _, inf := range []cache.SharedIndexInformer{h.IPPools().Informer(), h.L2Advertisements().Informer(), h.BGPPeers().Informer(), h.BGPAdvertisements().Informer()} {
		if _, err := inf.AddEventHandler(configChanged); err != nil {
			return fmt.Errorf("speaker: watch: %w", err)
		}
	}
	if secrets != nil {
		if _, err := secrets.AddEventHandler(configChanged); err != nil {
			return fmt.Errorf("speaker: watch: %w", err)
		}
	}
	own := func(obj any) {
		if o, ok := obj.(interface{ GetName() string }); ok && o.GetName() == s.cfg.NodeName {
			if w := s.statusForHandlers.Load(); w != nil {
				w.recheck()
			}
		}
	}
	if _, err := h.SpeakerStatuses().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: own, UpdateFunc: func(_, n any) { own(n) }, DeleteFunc: own,
	}); err != nil {
		return fmt.Errorf("speaker: watch: %w", err)
	}

	kf.Start(ctx.Done())
	hf.Start(ctx.Done())
	sf.Start(ctx.Done())
	s.log.Info("waiting for caches")
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("speaker: cache of %v did not sync: %w", typ, context.Cause(ctx))
		}
	}
	for typ, ok := range hf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("speaker: cache of %v did not sync: %w", typ, context.Cause(ctx))
		}
	}
	return nil
}

// sliceServiceKey indexes an EndpointSlice by its Service's namespace/name.
func sliceServiceKey(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name, ok := es.Labels[discoveryv1.LabelServiceName]
	if !ok {
		return nil, nil
	}
	return []string{es.Namespace + "/" + name}, nil
}

// waitForOwnNode waits until this node's Node is in the cache: without it
// the speaker cannot tell which advertisements select it.
func (s *speaker) waitForOwnNode(ctx context.Context) (*corev1.Node, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	logged := time.Now()
	for {
		if n, err := s.nodes.Get(s.cfg.NodeName); err == nil {
			return n, nil
		}
		if time.Since(logged) > 10*time.Second {
			s.log.Warn("waiting for this node's Node object")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("speaker: waiting for Node %s: %w", s.cfg.NodeName, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// nodeAddress returns a Node's first InternalIP, IPv4 first.
func nodeAddress(n *corev1.Node) (netip.Addr, bool) {
	var v6 netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if ip.Unmap().Is4() {
			return ip.Unmap(), true
		}
		if !v6.IsValid() {
			v6 = ip
		}
	}
	return v6, v6.IsValid()
}

func (s *speaker) nodeUID() types.UID {
	if n, err := s.nodes.Get(s.cfg.NodeName); err == nil {
		return n.UID
	}
	return ""
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

// poke asks the loop to recompute the desired state. It never blocks: a
// pending request covers any number of changes (level-triggered).
func (s *speaker) poke() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Health tells whether the speaker works, for /healthz and /readyz.
type Health struct {
	ready atomic.Bool
	// lastLoop is when the last reconcile ran, with its monotonic clock
	// reading, so that a step of the wall clock (NTP, a VM resumed) never
	// makes a working speaker look stuck and get restarted.
	lastLoop atomic.Pointer[time.Time]
	resync   atomic.Int64 // time.Duration
}

// markLoop records that a reconcile ran now.
func (h *Health) markLoop() {
	now := time.Now()
	h.lastLoop.Store(&now)
}

// Healthy returns an error when the reconcile loop has not run for three
// resync intervals, by the monotonic clock.
func (h *Health) Healthy() error {
	last, resync := h.lastLoop.Load(), time.Duration(h.resync.Load())
	if last != nil && resync > 0 && time.Since(*last) > 3*resync {
		return fmt.Errorf("speaker: no reconcile since %v", last.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// Ready returns an error until the first desired state was applied.
func (h *Health) Ready() error {
	if !h.ready.Load() {
		return errors.New("speaker: desired state not applied yet")
	}
	return nil
}
