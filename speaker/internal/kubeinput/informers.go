package kubeinput

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldinformers "github.com/herald-dev/herald/config/generated/informers/externalversions"
	heraldv1alpha1informers "github.com/herald-dev/herald/config/generated/informers/externalversions/config/v1alpha1"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// Factories are the shared informer factories the speaker's caches come
// from: every kind the speaker reads, trimmed by TransformObject.
type Factories struct {
	Kube   informers.SharedInformerFactory
	Herald heraldinformers.SharedInformerFactory
	// Secrets caches the password Secrets, of one namespace, that this
	// node's BGPPeers name; nil when the speaker reads none.
	Secrets *SecretCache
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
		f.Secrets = NewSecretCache(kube, namespace, tf)
	}
	return f
}

// OwnStatusOnly makes f's SpeakerStatus informer watch node's record only
// (a field selector on its name): a speaker compares its own record with
// what it wrote and reads the others' only when it marks gone speakers (a
// list, from one speaker at a time). Watching every record would send each
// speaker's every status write to every speaker: events that grow with the
// square of the node count. Call it before NewInformers.
func OwnStatusOnly(f Factories, node string) {
	f.Herald.InformerFor(&v1alpha1.SpeakerStatus{}, func(c heraldclient.Interface, resync time.Duration) cache.SharedIndexInformer {
		return heraldv1alpha1informers.NewFilteredSpeakerStatusInformer(c, resync, cache.Indexers{}, func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", node).String()
		})
	})
}

// Informers are the informers and listers the speaker reads. Made by
// NewInformers before the factories start; the caller adds its handlers,
// then starts the factories.
type Informers struct {
	Services  cache.Store // *CachedService
	Slices    cache.Store // *CachedSlice
	Claims    cache.Store // *CachedClaim
	Nodes     corelisters.NodeLister
	Secrets   corelisters.SecretLister // nil without a Secret cache
	Pools     heraldlisters.IPPoolLister
	L2Ads     heraldlisters.L2AdvertisementLister
	Peers     heraldlisters.BGPPeerLister
	BGPAds    heraldlisters.BGPAdvertisementLister
	Statuses  heraldlisters.SpeakerStatusLister
	Namespace string // where Secrets are read
	// Interner holds the node names the caches share; nil in tests that
	// fill caches by hand.
	Interner *Interner
	// SecretCache is what Secrets reads, nil without one: the caller adds
	// its handlers there (its informers come and go with the names).
	SecretCache *SecretCache

	ServiceInformer, SliceInformer, NodeInformer, ClaimInformer cache.SharedIndexInformer
	// ConfigInformers are the informers of the configuration model's
	// inputs: IPPools, L2Advertisements, BGPPeers, BGPAdvertisements (the
	// Secrets are SecretCache's).
	ConfigInformers []cache.SharedIndexInformer
	PeerInformer    cache.SharedIndexInformer
	StatusInformer  cache.SharedIndexInformer
}

// NewInformers registers the speaker's informers with f. The Services,
// EndpointSlices and AddressClaims are cached as CachedService,
// CachedSlice and CachedClaim (TransformObject), so their informers have
// no typed listers; nor do they have an index: not the factories'
// namespace index, which the speaker never reads, nor one by Service for
// the EndpointSlices (an index costs a set per value: at 10,000 Services,
// megabytes; Summaries keeps its own, see sliceIndex).
func NewInformers(f Factories, namespace string) *Informers {
	h := f.Herald.Herald().V1alpha1()
	c := f.Kube.Core().V1()
	noIndex := cache.Indexers{}
	services := f.Kube.InformerFor(&corev1.Service{}, func(k kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewServiceInformer(k, metav1.NamespaceAll, resync, noIndex)
	})
	slices := f.Kube.InformerFor(&discoveryv1.EndpointSlice{}, func(k kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return discoveryinformers.NewEndpointSliceInformer(k, metav1.NamespaceAll, resync, noIndex)
	})
	claims := f.Herald.InformerFor(&v1alpha1.AddressClaim{}, func(hc heraldclient.Interface, resync time.Duration) cache.SharedIndexInformer {
		return heraldv1alpha1informers.NewAddressClaimInformer(hc, resync, noIndex)
	})
	in := &Informers{
		Services: services.GetStore(), Slices: slices.GetStore(), Claims: claims.GetStore(), Nodes: c.Nodes().Lister(),
		Pools: h.IPPools().Lister(), L2Ads: h.L2Advertisements().Lister(), Peers: h.BGPPeers().Lister(),
		BGPAds: h.BGPAdvertisements().Lister(), Statuses: h.SpeakerStatuses().Lister(), Namespace: namespace,
		ServiceInformer: services, SliceInformer: slices,
		NodeInformer: c.Nodes().Informer(), ClaimInformer: claims,
		ConfigInformers: []cache.SharedIndexInformer{
			h.IPPools().Informer(), h.L2Advertisements().Informer(), h.BGPPeers().Informer(), h.BGPAdvertisements().Informer(),
		},
		StatusInformer: h.SpeakerStatuses().Informer(), Interner: f.Interner,
		PeerInformer: h.BGPPeers().Informer(),
	}
	if f.Secrets != nil {
		in.Secrets, in.SecretCache = f.Secrets, f.Secrets
	}
	return in
}

// FollowPeers keeps the Secret cache on the password Secrets of the BGPPeers that
// select node (config.PasswordSecrets): it recomputes them whenever a BGPPeer or
// node's Node changes, so a Secret no peer of this node names is never listed,
// watched or cached. Call it before the factories start; without a Secret cache it
// does nothing.
func (in *Informers) FollowPeers(node string) error {
	if in.SecretCache == nil {
		return nil
	}
	// One refresh at a time, so that a refresh reading older caches cannot
	// overwrite a newer one's names.
	var mu sync.Mutex
	refresh := func() {
		mu.Lock()
		defer mu.Unlock()
		peers, _ := in.Peers.List(labels.Everything())
		var nodeLabels map[string]string
		if n, err := in.Nodes.Get(node); err == nil {
			nodeLabels = n.Labels
		}
		in.SecretCache.Want(config.PasswordSecrets(peers, in.Namespace, nodeLabels))
	}
	onPeer := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { refresh() },
		UpdateFunc: func(any, any) { refresh() },
		DeleteFunc: func(any) { refresh() },
	}
	// Only this node's labels matter; a tombstone may be it.
	nodeChanged := func(obj any) {
		if n, ok := obj.(*corev1.Node); !ok || n.Name == node {
			refresh()
		}
	}
	onNode := cache.ResourceEventHandlerFuncs{
		AddFunc:    nodeChanged,
		UpdateFunc: func(_, o any) { nodeChanged(o) },
		DeleteFunc: nodeChanged,
	}
	if _, err := in.PeerInformer.AddEventHandler(onPeer); err != nil {
		return fmt.Errorf("kubeinput: watch BGPPeers: %w", err)
	}
	if _, err := in.NodeInformer.AddEventHandler(onNode); err != nil {
		return fmt.Errorf("kubeinput: watch Nodes: %w", err)
	}
	return nil
}

// Caches returns the caches Service summaries are read from.
func (in *Informers) Caches() Caches {
	return Caches{Services: in.Services, Slices: in.Slices, Claims: in.Claims}
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
