package kubeinput

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/kubeclient"
)

// Informers are the informers and listers the speaker reads, every kind
// trimmed by TransformObject. Made by NewInformers; the caller adds its
// handlers, then starts them (Start).
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
	// StatusInformer holds this node's SpeakerStatus only
	// (kubeclient.ListWatches.OwnStatus).
	StatusInformer cache.SharedIndexInformer

	// all are the informers Start starts and WaitForCacheSync waits for:
	// every one but the Secret cache's.
	all []cache.SharedIndexInformer
}

// NewInformers returns the speaker's informers of the kinds lw lists and
// watches, with the transforms of in; Secrets are read in namespace only
// (none when empty or when lw has no Secret). The Services, EndpointSlices
// and AddressClaims are cached as CachedService, CachedSlice and
// CachedClaim (TransformObject), so their informers have no typed listers;
// nor do they have an index: not the namespace index, which the speaker
// never reads, nor one by Service for the EndpointSlices (an index costs a
// set per value: at 10,000 Services, megabytes; Summaries keeps its own,
// see sliceIndex). The others keep the namespace index their listers use.
func NewInformers(lw kubeclient.ListWatches, namespace string, in *Interner) *Informers {
	tf := TransformObject(in)
	noIndex := cache.Indexers{}
	byNamespace := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	inf := &Informers{Namespace: namespace, Interner: in}
	add := func(lw cache.ListerWatcher, obj runtime.Object, indexers cache.Indexers) cache.SharedIndexInformer {
		i := cache.NewSharedIndexInformerWithOptions(lw, obj, cache.SharedIndexInformerOptions{Indexers: indexers})
		_ = i.SetTransform(tf) // fails only once started
		inf.all = append(inf.all, i)
		return i
	}
	inf.ServiceInformer = add(lw.Services, &corev1.Service{}, noIndex)
	inf.SliceInformer = add(lw.EndpointSlices, &discoveryv1.EndpointSlice{}, noIndex)
	inf.ClaimInformer = add(lw.AddressClaims, &v1alpha1.AddressClaim{}, noIndex)
	inf.NodeInformer = add(lw.Nodes, &corev1.Node{}, byNamespace)
	pools := add(lw.IPPools, &v1alpha1.IPPool{}, byNamespace)
	l2Ads := add(lw.L2Advertisements, &v1alpha1.L2Advertisement{}, byNamespace)
	inf.PeerInformer = add(lw.BGPPeers, &v1alpha1.BGPPeer{}, byNamespace)
	bgpAds := add(lw.BGPAdvertisements, &v1alpha1.BGPAdvertisement{}, byNamespace)
	inf.StatusInformer = add(lw.OwnStatus, &v1alpha1.SpeakerStatus{}, noIndex)
	inf.ConfigInformers = []cache.SharedIndexInformer{pools, l2Ads, inf.PeerInformer, bgpAds}

	inf.Services, inf.Slices, inf.Claims = inf.ServiceInformer.GetStore(), inf.SliceInformer.GetStore(), inf.ClaimInformer.GetStore()
	inf.Nodes = corelisters.NewNodeLister(inf.NodeInformer.GetIndexer())
	inf.Pools = heraldlisters.NewIPPoolLister(pools.GetIndexer())
	inf.L2Ads = heraldlisters.NewL2AdvertisementLister(l2Ads.GetIndexer())
	inf.Peers = heraldlisters.NewBGPPeerLister(inf.PeerInformer.GetIndexer())
	inf.BGPAds = heraldlisters.NewBGPAdvertisementLister(bgpAds.GetIndexer())
	inf.Statuses = heraldlisters.NewSpeakerStatusLister(inf.StatusInformer.GetIndexer())
	if namespace != "" && lw.Secret != nil {
		inf.SecretCache = NewSecretCache(lw.Secret, namespace, tf)
		inf.Secrets = inf.SecretCache
	}
	return inf
}

// Start runs the informers, and the Secret cache's, until ctx is done.
func (in *Informers) Start(ctx context.Context) {
	for _, i := range in.all {
		go i.RunWithContext(ctx)
	}
	if in.SecretCache != nil {
		in.SecretCache.Start(ctx)
	}
}

// WaitForCacheSync waits until the started informers' caches are synced:
// all but the Secrets (BGP passwords), which a speaker allowed no Secrets
// does not need to announce at layer 2. It returns an error when ctx ends
// first.
func (in *Informers) WaitForCacheSync(ctx context.Context) error {
	synced := make([]cache.InformerSynced, len(in.all))
	for i, inf := range in.all {
		synced[i] = inf.HasSynced
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("kubeinput: caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}

// FollowPeers keeps the Secret cache on the password Secrets of the BGPPeers that
// select node (config.PasswordSecrets): it recomputes them whenever a BGPPeer or
// node's Node changes, so a Secret no peer of this node names is never listed,
// watched or cached. Call it before Start; without a Secret cache it
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
