package cloudprovider

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/tools/cache"
	cloud "k8s.io/cloud-provider"

	"github.com/herald-dev/herald/controller"
)

// ProviderName is the name Herald's provider is registered under: a
// cloud-controller-manager selects it with --cloud-provider=herald.
const ProviderName = "herald"

var registerOnce sync.Once

// Register adds Herald's provider to k8s.io/cloud-provider's registry under
// ProviderName; its factory reads the cloud-config with ParseConfig. Calling
// it more than once is harmless (the registry itself exits the process on a
// second registration of one name).
func Register() {
	registerOnce.Do(func() {
		cloud.RegisterCloudProvider(ProviderName, func(config io.Reader) (cloud.Interface, error) {
			cfg, err := ParseConfig(config)
			if err != nil {
				return nil, err
			}
			return New(cfg)
		})
	})
}

// Provider is Herald's cloud provider: a LoadBalancer over its own
// controller.Core whose every allocation is recorded in an AddressClaim
// (controller.Claims). Create it with New (or through the registry), call
// Initialize once, then use LoadBalancer.
type Provider struct {
	cfg  Config
	core *controller.Core
	// claims records the Core's decisions in AddressClaims; set before
	// ready is closed.
	claims *controller.Claims
	// claimIndexer is the AddressClaims cache that claims reads.
	claimIndexer cache.Indexer
	// services serialises the calls for one Service (the upstream
	// controller's and the claim repair's), as controller.Claims requires.
	services keyedMutex

	initialized atomic.Bool
	// ready is closed when the model is built and the allocations imported.
	ready chan struct{}
	// problem is the last reason the provider is not ready (or nil).
	problem atomic.Pointer[error]
	// modelDirty asks the model goroutine for a rebuild; it holds at most
	// one request, so a burst of changes costs one rebuild.
	modelDirty chan struct{}
}

var _ cloud.Interface = (*Provider)(nil)

// New returns a Provider configured by cfg (see Config for its defaults).
// It reaches no server until Initialize.
func New(cfg Config) (*Provider, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:        cfg,
		core:       controller.NewCore(""),
		ready:      make(chan struct{}),
		modelDirty: make(chan struct{}, 1),
	}
	p.setProblem(errNotInitialized)
	return p, nil
}

var errNotInitialized = errors.New("cloudprovider: not initialized: Initialize was not called")

// Core returns the allocation core the provider drives (for tests and
// metrics; decisions go through the LoadBalancer methods and are recorded
// in AddressClaims).
func (p *Provider) Core() *controller.Core { return p.core }

// Ready returns nil once the provider can allocate: the model is built and
// every existing allocation imported. Otherwise it says what it waits for.
func (p *Provider) Ready() error {
	select {
	case <-p.ready:
		return nil
	default:
	}
	if e := p.problem.Load(); e != nil && *e != nil {
		return *e
	}
	return errors.New("cloudprovider: allocations not imported yet")
}

func (p *Provider) setProblem(err error) { p.problem.Store(&err) }

// Initialize reads the client configuration (Config.RESTConfig, then
// Config.Kubeconfig, then clientBuilder) and starts, until stop is closed,
// the informers and the import that feed the Core. A failure is reported by
// Ready and by every LoadBalancer call. Only the first call has an effect.
func (p *Provider) Initialize(clientBuilder cloud.ControllerClientBuilder, stop <-chan struct{}) {
	if p.initialized.Swap(true) {
		return
	}
	if err := p.start(clientBuilder, stop); err != nil {
		p.setProblem(fmt.Errorf("cloudprovider: initialize: %w", err))
		p.cfg.Logger.Error("herald cloud provider failed to initialize", "err", err)
	}
}

// LoadBalancer returns Herald's LoadBalancer.
func (p *Provider) LoadBalancer() (cloud.LoadBalancer, bool) { return loadBalancer{p}, true }

// Instances is not supported.
func (p *Provider) Instances() (cloud.Instances, bool) { return nil, false }

// InstancesV2 is not supported.
func (p *Provider) InstancesV2() (cloud.InstancesV2, bool) { return nil, false }

// Zones is not supported.
func (p *Provider) Zones() (cloud.Zones, bool) { return nil, false }

// Clusters is not supported.
func (p *Provider) Clusters() (cloud.Clusters, bool) { return nil, false }

// Routes is not supported.
func (p *Provider) Routes() (cloud.Routes, bool) { return nil, false }

// ProviderName returns ProviderName.
func (p *Provider) ProviderName() string { return ProviderName }

// HasClusterID reports false: Herald's allocations do not depend on a
// cluster ID.
func (p *Provider) HasClusterID() bool { return false }
