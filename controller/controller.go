package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldinformers "github.com/herald-dev/herald/config/generated/informers/externalversions"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
)

// ErrLostLeadership is returned by Run when the replica stopped holding the
// Lease while it was meant to keep running. The process should exit: a
// replica that lost the Lease may hold stale allocation state.
var ErrLostLeadership = errors.New("controller: lost leadership")

// objectKey names one of Herald's cluster-scoped objects in the object
// queue; the zero key stands for "rebuild the configuration model".
type objectKey struct {
	Kind string
	Name string
}

var modelKey = objectKey{}

// Controller reconciles Services, IPPools and Herald's other resources.
// Create it with New, serve Ready on /readyz, then call Run once.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	core *Core
	m    *metrics

	kube   kubernetes.Interface
	herald versioned.Interface
	// events is a client of its own for Events, with a smaller request
	// budget, so that a burst of decisions never delays status writes.
	events kubernetes.Interface

	kubeInformers   informers.SharedInformerFactory
	secretInformers informers.SharedInformerFactory
	heraldInformers heraldinformers.SharedInformerFactory
	services        corelisters.ServiceLister
	namespaces      corelisters.NamespaceLister
	secrets         corelisters.SecretLister
	nodes           corelisters.NodeLister
	pools           heraldlisters.IPPoolLister
	l2s             heraldlisters.L2AdvertisementLister
	peers           heraldlisters.BGPPeerLister
	bgpAds          heraldlisters.BGPAdvertisementLister
	// speakerStatuses are the nodes' records, trimmed to their conditions and
	// BGP sessions: a BGPPeer's BFDUp condition comes from them.
	speakerStatuses heraldlisters.SpeakerStatusLister
	claims          *Claims
	orphans         orphans
	synced          []cache.InformerSynced

	svcQueue workqueue.TypedRateLimitingInterface[string]
	objQueue workqueue.TypedRateLimitingInterface[objectKey]
	recorder record.EventRecorder

	// waiting holds the keys of Services that lack an address capacity could
	// give them; they are reconciled again when capacity may have appeared.
	waitingMu sync.Mutex
	waiting   map[string]struct{}

	// poolsFingerprint describes the pools of the model in use, to tell a
	// pool change from another configuration change.
	poolsFingerprint string

	cachesSynced atomic.Bool
	leading      atomic.Bool
	imported     atomic.Bool
	ran          atomic.Bool
}

// New builds a Controller: its clients, informers and metrics. Nothing runs
// until Run.
func New(cfg Config) (*Controller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	kubeCfg := rest.CopyConfig(cfg.RESTConfig)
	kubeCfg.ContentType = runtime.ContentTypeProtobuf
	kubeCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	kubeCfg.UserAgent = FieldManager
	kube, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		return nil, fmt.Errorf("controller: kubernetes client: %w", err)
	}
	eventsCfg := rest.CopyConfig(kubeCfg)
	eventsCfg.QPS, eventsCfg.Burst = eventsQPS, eventsBurst
	events, err := kubernetes.NewForConfig(eventsCfg)
	if err != nil {
		return nil, fmt.Errorf("controller: events client: %w", err)
	}
	heraldCfg := rest.CopyConfig(cfg.RESTConfig)
	heraldCfg.UserAgent = FieldManager
	herald, err := versioned.NewForConfig(heraldCfg)
	if err != nil {
		return nil, fmt.Errorf("controller: herald client: %w", err)
	}
	c := &Controller{
		cfg:     cfg,
		log:     cfg.Logger,
		core:    NewCore(cfg.LoadBalancerClass),
		kube:    kube,
		herald:  herald,
		events:  events,
		waiting: make(map[string]struct{}),
		svcQueue: workqueue.NewTypedRateLimitingQueueWithConfig(newRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "services"}),
		objQueue: workqueue.NewTypedRateLimitingQueueWithConfig(newRateLimiter[objectKey](),
			workqueue.TypedRateLimitingQueueConfig[objectKey]{Name: "objects"}),
	}
	if c.m, err = newMetrics(cfg.Registerer, c.core); err != nil {
		return nil, fmt.Errorf("controller: register metrics: %w", err)
	}
	c.setupInformers()
	return c, nil
}

// The Events client's request budget. Events are best effort: when a burst
// of decisions outruns it, the recorder queues and eventually drops some;
// every decision is also in the Service's condition.
const (
	eventsQPS   = 50
	eventsBurst = 100
)

// Core returns the allocation core the controller drives.
func (c *Controller) Core() *Core { return c.core }

// newRateLimiter retries one failing key with exponential backoff from 5 ms
// to one minute, and all keys together at no more than 50 per second
// (bursts of 500), to spare the apiserver.
func newRateLimiter[T comparable]() workqueue.TypedRateLimiter[T] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[T](5*time.Millisecond, time.Minute),
		&workqueue.TypedBucketRateLimiter[T]{Limiter: newBucket(50, 500)},
	)
}

func randomSuffix() string { return utilrand.String(8) }

// Ready reports nil when the replica can do its job: its caches are synced
// and, when it leads, every existing allocation has been imported. A standby
// replica with synced caches is ready to take over.
func (c *Controller) Ready() error {
	switch {
	case !c.cachesSynced.Load():
		return errors.New("informer caches are not synced yet")
	case c.leading.Load() && !c.imported.Load():
		return errors.New("leading, but existing allocations are not imported yet")
	}
	return nil
}

// Leading reports whether this replica is the active one.
func (c *Controller) Leading() bool { return c.leading.Load() }

// Run runs the controller until ctx is done: informers at once, and, while
// this replica leads (always, without leader election), the import and the
// workers. On ctx's end it stops the workers, then gives up the Lease so a
// standby takes over at once. It returns nil after ctx ends, and
// ErrLostLeadership when the Lease was lost. Call it once.
func (c *Controller) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errors.New("controller: Run called twice")
	}
	defer c.svcQueue.ShutDown()
	defer c.objQueue.ShutDown()

	informerCtx, stopInformers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInformers()
	c.kubeInformers.StartWithContext(informerCtx)
	c.secretInformers.StartWithContext(informerCtx)
	c.heraldInformers.StartWithContext(informerCtx)
	defer c.kubeInformers.Shutdown()
	defer c.secretInformers.Shutdown()
	defer c.heraldInformers.Shutdown()
	defer stopInformers()
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			c.cachesSynced.Store(true)
			c.log.Info("informer caches synced")
		}
	}()

	if !c.cfg.LeaderElection.Enabled {
		err := c.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return c.runElected(ctx)
}

// lead does the active replica's work until ctx is done: wait for the
// caches, build the model, import the allocations, then run the workers.
func (c *Controller) lead(ctx context.Context) error {
	c.leading.Store(true)
	c.m.leader.Set(1)
	defer func() {
		c.leading.Store(false)
		c.m.leader.Set(0)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("controller: caches not synced: %w", ctx.Err())
	}
	c.cachesSynced.Store(true)
	start := time.Now()
	if err := c.syncModel(); err != nil {
		c.log.Warn("configuration problems", "err", err)
	}
	var rep ImportReport
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		if rep, err = c.importAllocations(ctx); err != nil {
			c.log.Warn("import of existing allocations failed, will retry", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("controller: import: %w", err)
	}
	took := time.Since(start)
	c.m.importDuration.Set(took.Seconds())
	c.m.importedAllocs.Set(float64(rep.Allocations))
	for _, e := range rep.Conflicts {
		c.log.Warn("import conflict", "err", e)
	}
	c.log.Info("imported existing allocations", "services", rep.Services, "allocations", rep.Allocations,
		"conflicts", len(rep.Conflicts), "displaced", len(rep.Displaced), "took", took)
	if name := c.cfg.MemberlistSecretName; name != "" {
		// First in the object queue: the speakers wait for this Secret.
		c.objQueue.Add(objectKey{kindMemberlistSecret, name})
	}
	c.imported.Store(true)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.events.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: FieldManager})
	c.claims.SetRecorder(c.recorder)

	c.enqueueAll()
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() { c.runServiceWorker(ctx) })
	}
	wg.Go(func() { c.runObjectWorker(ctx) })
	wg.Go(func() { wait.UntilWithContext(ctx, c.repairClaims, claimRepairPeriod) })
	c.log.Info("controller running", "workers", c.cfg.Workers, "loadBalancerClass", c.cfg.LoadBalancerClass)
	<-ctx.Done()
	c.svcQueue.ShutDown()
	c.objQueue.ShutDown()
	wg.Wait()
	c.log.Info("controller stopped")
	return nil
}

// enqueueAll queues every Service and every Herald object.
func (c *Controller) enqueueAll() {
	svcs, _ := c.services.List(labelsEverything())
	for _, s := range svcs {
		c.enqueueService(s)
	}
	c.objQueue.Add(modelKey)
	c.enqueueObjectsStatus()
}

func (c *Controller) enqueueObjectsStatus() {
	pools, _ := c.pools.List(labelsEverything())
	for _, p := range pools {
		c.objQueue.Add(objectKey{config.KindIPPool, p.Name})
	}
	l2s, _ := c.l2s.List(labelsEverything())
	for _, a := range l2s {
		c.objQueue.Add(objectKey{config.KindL2Advertisement, a.Name})
	}
	peers, _ := c.peers.List(labelsEverything())
	for _, p := range peers {
		c.objQueue.Add(objectKey{config.KindBGPPeer, p.Name})
	}
	ads, _ := c.bgpAds.List(labelsEverything())
	for _, a := range ads {
		c.objQueue.Add(objectKey{config.KindBGPAdvertisement, a.Name})
	}
}

func (c *Controller) enqueueService(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.svcQueue.Add(key)
}

// poolsChanged schedules a status refresh of every pool, at most once a
// second per pool, after allocations changed.
func (c *Controller) poolsChanged() {
	pools, _ := c.pools.List(labelsEverything())
	for _, p := range pools {
		c.objQueue.AddAfter(objectKey{config.KindIPPool, p.Name}, poolStatusDelay)
	}
}

// poolStatusDelay batches pool status writes while allocations churn.
const poolStatusDelay = 500 * time.Millisecond

// setWaiting records whether the Service key waits for capacity.
func (c *Controller) setWaiting(key string, waiting bool) {
	c.waitingMu.Lock()
	defer c.waitingMu.Unlock()
	if waiting {
		c.waiting[key] = struct{}{}
	} else {
		delete(c.waiting, key)
	}
}

// kickWaiting queues the Services waiting for capacity, except skip.
func (c *Controller) kickWaiting(skip string) {
	c.waitingMu.Lock()
	keys := make([]string, 0, len(c.waiting))
	for k := range c.waiting {
		if k != skip {
			keys = append(keys, k)
		}
	}
	c.waitingMu.Unlock()
	c.kick(keys)
}

// kick queues the Services keys.
func (c *Controller) kick(keys []string) {
	for _, k := range keys {
		c.svcQueue.Add(k)
	}
}

func (c *Controller) runServiceWorker(ctx context.Context) {
	for {
		key, quit := c.svcQueue.Get()
		if quit {
			return
		}
		start := time.Now()
		err := c.syncService(ctx, key)
		c.m.reconcileDuration.WithLabelValues("Service").Observe(time.Since(start).Seconds())
		handleErr(c, ctx, c.svcQueue, key, err, "Service", "service", key)
		c.svcQueue.Done(key)
	}
}

func (c *Controller) runObjectWorker(ctx context.Context) {
	for {
		key, quit := c.objQueue.Get()
		if quit {
			return
		}
		kind := key.Kind
		if key == modelKey {
			kind = "Config"
		}
		start := time.Now()
		err := c.syncObject(ctx, key)
		c.m.reconcileDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		handleErr(c, ctx, c.objQueue, key, err, kind, "kind", kind, "name", key.Name)
		c.objQueue.Done(key)
	}
}

// A panic in a reconcile is not recovered: the Core may be half changed, so
// the process crashes (as utilruntime.HandleCrash does) and the restarted
// replica imports the allocations afresh from the AddressClaims.

// handleErr forgets a key that synced, and requeues one that failed with
// rate-limited backoff.
func handleErr[T comparable](c *Controller, ctx context.Context, q workqueue.TypedRateLimitingInterface[T], key T, err error, kind string, attrs ...any) {
	if err == nil {
		q.Forget(key)
		return
	}
	if ctx.Err() != nil {
		return
	}
	c.m.reconcileErrors.WithLabelValues(kind).Inc()
	c.log.Warn("reconcile failed, will retry", append(attrs, "err", err, "retries", q.NumRequeues(key))...)
	q.AddRateLimited(key)
}

// syncObject reconciles one entry of the object queue.
func (c *Controller) syncObject(ctx context.Context, key objectKey) error {
	switch key.Kind {
	case "":
		return c.syncModelAndRequeue()
	case config.KindIPPool:
		return c.syncPool(ctx, key.Name)
	case config.KindL2Advertisement, config.KindBGPPeer, config.KindBGPAdvertisement:
		return c.syncObjectStatus(ctx, key)
	case kindMemberlistSecret:
		return c.syncMemberlistSecret(ctx, key.Name)
	}
	return nil
}
