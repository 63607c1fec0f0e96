package kubeinput

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldinformers "github.com/herald-dev/herald/config/generated/informers/externalversions"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
)

// ServiceIndex indexes EndpointSlices by namespace/service-name.
const ServiceIndex = "service"

// Factories are the shared informer factories the speaker's caches come
// from: every kind the speaker reads, trimmed by TransformObject.
type Factories struct {
	Kube   informers.SharedInformerFactory
	Herald heraldinformers.SharedInformerFactory
	// Secrets watches the Secrets of one namespace (BGP passwords); nil
	// when the speaker reads none.
	Secrets informers.SharedInformerFactory
	// Interner holds the node names the EndpointSlice transform shares.
	Interner *Interner
}

// NewFactories returns the factories for the clients, with the transforms
// of in. Secrets are read only in namespace (none when empty).
func NewFactories(kube kubernetes.Interface, herald heraldclient.Interface, namespace string, in *Interner) Factories {
	tf := TransformObject(in)
	f := Factories{
		Interner: in,
		Kube:     informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(tf)),
		Herald:   heraldinformers.NewSharedInformerFactoryWithOptions(herald, 0, heraldinformers.WithTransform(tf)),
	}
	if namespace != "" {
		f.Secrets = informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(tf), informers.WithNamespace(namespace))
	}
	return f
}

// Informers are the informers and listers the speaker reads. Made by
// NewInformers before the factories start; the caller adds its handlers,
// then starts the factories.
type Informers struct {
	Services  corelisters.ServiceLister
	Slices    cache.Indexer // indexed by ServiceIndex
	Claims    heraldlisters.AddressClaimLister
	Nodes     corelisters.NodeLister
	Secrets   corelisters.SecretLister // nil without a Secrets factory
	Pools     heraldlisters.IPPoolLister
	L2Ads     heraldlisters.L2AdvertisementLister
	Peers     heraldlisters.BGPPeerLister
	BGPAds    heraldlisters.BGPAdvertisementLister
	Statuses  heraldlisters.SpeakerStatusLister
	Namespace string // where Secrets are read
	// Interner holds the node names the caches share; nil in tests that
	// fill caches by hand.
	Interner *Interner

	ServiceInformer, SliceInformer, NodeInformer, ClaimInformer cache.SharedIndexInformer
	// ConfigInformers are the informers of the configuration model's
	// inputs: IPPools, L2Advertisements, BGPPeers, BGPAdvertisements, and
	// Secrets when read.
	ConfigInformers []cache.SharedIndexInformer
	StatusInformer  cache.SharedIndexInformer
}

// NewInformers registers the speaker's informers with f and indexes the
// EndpointSlices by Service.
func NewInformers(f Factories, namespace string) (*Informers, error) {
	h := f.Herald.Herald().V1alpha1()
	c := f.Kube.Core().V1()
	in := &Informers{
		Services: c.Services().Lister(), Nodes: c.Nodes().Lister(), Claims: h.AddressClaims().Lister(),
		Pools: h.IPPools().Lister(), L2Ads: h.L2Advertisements().Lister(), Peers: h.BGPPeers().Lister(),
		BGPAds: h.BGPAdvertisements().Lister(), Statuses: h.SpeakerStatuses().Lister(), Namespace: namespace,
		ServiceInformer: c.Services().Informer(), SliceInformer: f.Kube.Discovery().V1().EndpointSlices().Informer(),
		NodeInformer: c.Nodes().Informer(), ClaimInformer: h.AddressClaims().Informer(),
		ConfigInformers: []cache.SharedIndexInformer{
			h.IPPools().Informer(), h.L2Advertisements().Informer(), h.BGPPeers().Informer(), h.BGPAdvertisements().Informer(),
		},
		StatusInformer: h.SpeakerStatuses().Informer(), Interner: f.Interner,
	}
	if err := in.SliceInformer.AddIndexers(cache.Indexers{ServiceIndex: SliceServiceKey}); err != nil {
		return nil, fmt.Errorf("kubeinput: index EndpointSlices: %w", err)
	}
	in.Slices = in.SliceInformer.GetIndexer()
	if f.Secrets != nil {
		in.Secrets = f.Secrets.Core().V1().Secrets().Lister()
		in.ConfigInformers = append(in.ConfigInformers, f.Secrets.Core().V1().Secrets().Informer())
	}
	return in, nil
}

// Caches returns the caches Service summaries are read from.
func (in *Informers) Caches() Caches {
	return Caches{Services: in.Services, Slices: in.Slices, Claims: in.Claims}
}

// SliceServiceKey indexes an EndpointSlice by its Service's namespace/name.
func SliceServiceKey(obj any) ([]string, error) {
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

// NodeAddress returns a Node's first InternalIP, IPv4 first.
func NodeAddress(n *corev1.Node) (netip.Addr, bool) {
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
