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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
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

// start builds the clients and informers, and starts the goroutine that
// builds the model, imports the allocations and then keeps the model
// current, all until stop is closed.
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
	herald, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("herald client: %w", err)
	}
	kf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(slimNamespace))
	hf := heraldinformers.NewSharedInformerFactoryWithOptions(herald, 0, heraldinformers.WithTransform(slimNamespace))
	nsInf := kf.Core().V1().Namespaces()
	poolInf := hf.Herald().V1alpha1().IPPools()
	in := inputs{namespaces: nsInf.Lister(), pools: poolInf.Lister()}

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

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stop
		cancel()
	}()
	kf.Start(stop)
	hf.Start(stop)
	p.setProblem(errors.New("cloudprovider: waiting for the IPPool and Namespace caches"))
	go p.run(ctx, kube, in, []cache.InformerSynced{nsInf.Informer().HasSynced, poolInf.Informer().HasSynced})
	return nil
}

// inputs are the listers the configuration model is built from.
type inputs struct {
	namespaces corelisters.NamespaceLister
	pools      heraldlisters.IPPoolLister
}

// run is the one goroutine that installs models: the first, then the
// import, then a rebuild for each change, until ctx ends.
func (p *Provider) run(ctx context.Context, kube kubernetes.Interface, in inputs, synced []cache.InformerSynced) {
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
		svcs, err := controller.ListServicesForImport(ctx, kube)
		if err != nil {
			p.setProblem(fmt.Errorf("cloudprovider: import of existing allocations: %w", err))
			p.cfg.Logger.Warn("import of existing allocations failed, will retry", "err", err)
			return false, nil
		}
		rep = p.core.Import(svcs)
		return true, nil
	})
	if err != nil {
		return
	}
	for _, e := range rep.Conflicts {
		p.cfg.Logger.Warn("import conflict", "err", e)
	}
	p.cfg.Logger.Info("imported existing allocations", "services", rep.Services, "allocations", rep.Allocations,
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
