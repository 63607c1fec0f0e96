package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	cloud "k8s.io/cloud-provider"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldinformers "github.com/herald-dev/herald/config/generated/informers/externalversions"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

// importRetry is how often a failed start-up import is tried again.
const importRetry = time.Second

// restConfig picks the client configuration: Config.RESTConfig, then
// Config.Kubeconfig, then the client builder.
func (p *Provider) restConfig(builder cloud.ControllerClientBuilder) (*rest.Config, error) {
	switch {
	case p.cfg.RESTConfig != nil:
		return rest.CopyConfig(p.cfg.RESTConfig), nil
	case p.cfg.Kubeconfig != "":
		cfg, err := clientcmd.BuildConfigFromFlags("", p.cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("read kubeconfig %s: %w", p.cfg.Kubeconfig, err)
		}
		return cfg, nil
	case builder != nil:
		cfg, err := builder.Config(p.cfg.ClientName)
		if err != nil {
			return nil, fmt.Errorf("client configuration %s from the client builder: %w", p.cfg.ClientName, err)
		}
		return cfg, nil
	}
	return nil, errors.New("no client configuration: no kubeconfig in the cloud config and no client builder")
}

// start builds the clients, then the informers, the claims and the
// goroutines that feed the Core, all until stop is closed.
func (p *Provider) start(builder cloud.ControllerClientBuilder, stop <-chan struct{}) error {
	restCfg, err := p.restConfig(builder)
	if err != nil {
		return err
	}
	restCfg.UserAgent = p.cfg.ClientName
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	// A cloud-controller-manager's client builder asks for protobuf, which
	// custom resources do not speak.
	heraldCfg := rest.CopyConfig(restCfg)
	heraldCfg.ContentType, heraldCfg.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	herald, err := versioned.NewForConfig(heraldCfg)
	if err != nil {
		return fmt.Errorf("herald client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stop
		cancel()
	}()
	return p.startWith(ctx, kube, herald)
}

// startWith starts, over the given clients and until ctx ends, informers
// for IPPools, Namespaces and AddressClaims, the controller.Claims that
// records the Core's decisions, the goroutine that builds the model,
// imports the allocations from the claims and keeps the model current, and
// the claim repair.
func (p *Provider) startWith(ctx context.Context, kube kubernetes.Interface, herald versioned.Interface) error {
	kf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(slimNamespace))
	hf := heraldinformers.NewSharedInformerFactoryWithOptions(herald, 0, heraldinformers.WithTransform(slimNamespace))
	nsInf := kf.Core().V1().Namespaces()
	poolInf := hf.Herald().V1alpha1().IPPools()
	claimInf := hf.Herald().V1alpha1().AddressClaims()
	if err := claimInf.Informer().AddIndexers(controller.ClaimIndexers()); err != nil {
		return fmt.Errorf("index addressclaims: %w", err)
	}
	in := inputs{namespaces: nsInf.Lister(), pools: poolInf.Lister()}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	p.claimIndexer = claimInf.Informer().GetIndexer()
	p.claims = controller.NewClaims(controller.ClaimsConfig{
		Client: herald, Kube: kube,
		Lister: claimInf.Lister(), Indexer: claimInf.Informer().GetIndexer(),
		Logger: p.cfg.Logger, FieldManager: p.cfg.ClientName,
	})
	p.claims.SetRecorder(broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: p.cfg.ClientName}))

	dirty := func() {
		select {
		case p.modelDirty <- struct{}{}:
		default:
		}
	}
	if _, err := poolInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { dirty() },
		UpdateFunc: func(any, any) { dirty() },
		DeleteFunc: func(any) { dirty() },
	}); err != nil {
		return fmt.Errorf("watch ippools: %w", err)
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { dirty() },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Namespace)
			n, ok2 := obj.(*corev1.Namespace)
			if !ok1 || !ok2 || !maps.Equal(o.Labels, n.Labels) {
				dirty()
			}
		},
		DeleteFunc: func(any) { dirty() },
	}); err != nil {
		return fmt.Errorf("watch namespaces: %w", err)
	}
	repairs := newRepairQueue()
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, obj any) { repairs.lost(old, obj) },
		DeleteFunc: func(obj any) { repairs.lost(obj, nil) },
	}); err != nil {
		return fmt.Errorf("watch addressclaims: %w", err)
	}

	kf.Start(ctx.Done())
	hf.Start(ctx.Done())
	p.setProblem(errors.New("cloudprovider: waiting for the IPPool, Namespace and AddressClaim caches"))
	go func() {
		<-ctx.Done()
		repairs.queue.ShutDown()
		broadcaster.Shutdown()
	}()
	go p.run(ctx, in, []cache.InformerSynced{nsInf.Informer().HasSynced, poolInf.Informer().HasSynced, claimInf.Informer().HasSynced})
	go p.runRepairs(ctx, kube, repairs)
	return nil
}

// inputs are the listers the configuration model is built from.
type inputs struct {
	namespaces corelisters.NamespaceLister
	pools      heraldlisters.IPPoolLister
}

// run is the one goroutine that installs models: the first, then the
// import from the AddressClaims, then a rebuild for each change, until ctx
// ends.
func (p *Provider) run(ctx context.Context, in inputs, synced []cache.InformerSynced) {
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	// Changes seen while the caches filled are in this first model.
	select {
	case <-p.modelDirty:
	default:
	}
	p.rebuildModel(in)
	start := time.Now()
	var rep controller.ImportReport
	err := wait.PollUntilContextCancel(ctx, importRetry, true, func(ctx context.Context) (bool, error) {
		var err error
		rep, err = p.claims.Import(ctx, p.core)
		if err != nil {
			p.setProblem(fmt.Errorf("cloudprovider: import of existing allocations: %w", err))
			p.cfg.Logger.Warn("import of existing allocations failed, will retry", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return
	}
	for _, e := range rep.Conflicts {
		p.cfg.Logger.Warn("import conflict", "err", e)
	}
	p.cfg.Logger.Info("imported existing allocations", "claims", rep.Claims, "services", rep.Services,
		"allocations", rep.Allocations, "fromStatus", len(rep.FromStatus), "staleHolders", len(rep.Stale),
		"conflicts", len(rep.Conflicts), "displaced", len(rep.Displaced), "took", time.Since(start))
	p.setProblem(nil)
	close(p.ready)

	for {
		select {
		case <-ctx.Done():
			return
		case <-p.modelDirty:
			p.rebuildModel(in)
		}
	}
}

// rebuildModel installs a model built from the listers.
func (p *Provider) rebuildModel(in inputs) {
	var s config.Snapshot
	s.IPPools, _ = in.pools.List(labels.Everything())
	s.Namespaces, _ = in.namespaces.List(labels.Everything())
	if err := p.core.SetModel(config.Build(s)); err != nil {
		// The pools left out are reported on the pools by herald-controller.
		p.cfg.Logger.Warn("configuration problems", "err", err)
	}
}

// slimNamespace keeps only what the model reads of a Namespace (its name
// and labels), and drops the managed fields of other objects.
func slimNamespace(obj any) (any, error) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels,
		}}, nil
	}
	if o, err := meta.Accessor(obj); err == nil {
		o.SetManagedFields(nil)
	}
	return obj, nil
}
