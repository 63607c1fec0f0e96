package controller

import (
	"maps"
	"slices"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldinformers "github.com/herald-dev/herald/config/generated/informers/externalversions"
	"github.com/herald-dev/herald/config/v1alpha1"
)

func newBucket(perSecond float64, burst int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

func labelsEverything() labels.Selector { return labels.Everything() }

// maxSecretValue bounds what the controller keeps of a Secret's values. It
// only checks that a BGPPeer's password key exists, is not empty and is not
// too long for TCP MD5 (80 bytes); the speaker reads the password itself.
const maxSecretValue = 1024

// setupInformers creates the informers and their event handlers. Objects
// are trimmed before they are cached: managed fields go, and Nodes,
// Namespaces and Secrets keep only what the configuration model reads.
func (c *Controller) setupInformers() {
	kf := informers.NewSharedInformerFactoryWithOptions(c.kube, c.cfg.Resync, informers.WithTransform(trimKubeObject))
	// Secrets are read in Herald's own namespace only, as the deployment's
	// RBAC allows: a BGPPeer's password Secret is expected there.
	sf := informers.NewSharedInformerFactoryWithOptions(c.kube, c.cfg.Resync, informers.WithTransform(trimKubeObject),
		informers.WithNamespace(c.cfg.Namespace))
	c.secretInformers = sf
	hf := heraldinformers.NewSharedInformerFactoryWithOptions(c.herald, c.cfg.Resync, heraldinformers.WithTransform(trimManagedFields))
	c.kubeInformers, c.heraldInformers = kf, hf

	svcInf := kf.Core().V1().Services()
	nsInf := kf.Core().V1().Namespaces()
	secInf := sf.Core().V1().Secrets()
	nodeInf := kf.Core().V1().Nodes()
	v1 := hf.Herald().V1alpha1()
	poolInf, l2Inf, peerInf, adInf := v1.IPPools(), v1.L2Advertisements(), v1.BGPPeers(), v1.BGPAdvertisements()
	c.services, c.namespaces, c.secrets, c.nodes = svcInf.Lister(), nsInf.Lister(), secInf.Lister(), nodeInf.Lister()
	c.pools, c.l2s, c.peers, c.bgpAds = poolInf.Lister(), l2Inf.Lister(), peerInf.Lister(), adInf.Lister()
	claimInf := v1.AddressClaims()
	_ = claimInf.Informer().AddIndexers(ClaimIndexers())
	c.claims = NewClaims(ClaimsConfig{
		Client: c.herald, Kube: c.kube, Lister: claimInf.Lister(), Indexer: claimInf.Informer().GetIndexer(),
		Services: c.services, Logger: c.log, FieldManager: FieldManager,
		// lead imports only after every cache synced.
		ImportFromCache: true,
		OnRepair:        func(action string) { c.m.claimRepairs.WithLabelValues(action).Inc() },
	})

	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
		_, _ = inf.AddEventHandler(h)
		c.synced = append(c.synced, inf.HasSynced)
	}
	add(svcInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueService,
		UpdateFunc: func(_, obj any) { c.enqueueService(obj) },
		DeleteFunc: c.enqueueService,
	})
	model := func() { c.objQueue.Add(modelKey) }
	// A change of what an object asks for (its spec, labels, deletion or
	// finalizers) rebuilds the model; a change of its status alone, most
	// often the controller's own write, only schedules a status check,
	// batched like the refreshes that follow allocations.
	kindHandler := func(kind string) cache.ResourceEventHandler {
		enqueue := func(obj any) {
			if o, err := metaOf(obj); err == nil {
				c.objQueue.Add(modelKey)
				c.objQueue.Add(objectKey{kind, o.GetName()})
			}
		}
		return cache.ResourceEventHandlerFuncs{
			AddFunc: enqueue,
			UpdateFunc: func(old, obj any) {
				o, err1 := metaOf(old)
				n, err2 := metaOf(obj)
				if err1 == nil && err2 == nil && sameRequest(o, n) {
					c.objQueue.AddAfter(objectKey{kind, n.GetName()}, poolStatusDelay)
					return
				}
				enqueue(obj)
			},
			DeleteFunc: enqueue,
		}
	}
	add(poolInf.Informer(), kindHandler(config.KindIPPool))
	// A claim that loses holders queues them (a claim deleted or edited by
	// hand is restored; after the controller's own release the reconcile
	// finds nothing to do), and its pool's status (a deletion may wait for
	// it). A new or extended claim needs nothing: the controller's own
	// writes made it, or another allocator's, whose holders it adopts when
	// it meets the address.
	claimLost := func(old, obj any) {
		kept := map[string]bool{}
		for _, k := range HolderKeys(obj) {
			kept[k] = true
		}
		for _, k := range HolderKeys(old) {
			if !kept[k] {
				c.svcQueue.Add(k)
			}
		}
		if t, ok := old.(cache.DeletedFinalStateUnknown); ok {
			old = t.Obj
		}
		if cl, ok := old.(*v1alpha1.AddressClaim); ok && cl.Spec.Pool != "" {
			c.objQueue.AddAfter(objectKey{config.KindIPPool, cl.Spec.Pool}, poolStatusDelay)
		}
	}
	add(claimInf.Informer(), cache.ResourceEventHandlerFuncs{
		UpdateFunc: claimLost,
		DeleteFunc: func(obj any) { claimLost(obj, nil) },
	})
	add(l2Inf.Informer(), kindHandler(config.KindL2Advertisement))
	add(peerInf.Informer(), kindHandler(config.KindBGPPeer))
	add(adInf.Informer(), kindHandler(config.KindBGPAdvertisement))
	// A node's record changes the BFDUp condition of the BGPPeers it lists
	// sessions with, before and after the change.
	spInf := v1.SpeakerStatuses()
	c.speakerStatuses = spInf.Lister()
	peersOf := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if st, ok := obj.(*v1alpha1.SpeakerStatus); ok {
			for _, s := range st.Status.BGPSessions {
				c.objQueue.AddAfter(objectKey{config.KindBGPPeer, s.Peer}, poolStatusDelay)
			}
		}
	}
	add(spInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    peersOf,
		UpdateFunc: func(old, obj any) { peersOf(old); peersOf(obj) },
		DeleteFunc: peersOf,
	})
	// Namespaces and Nodes matter for their labels only; Secrets only when a
	// BGPPeer names them.
	labelsChanged := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { model() },
		UpdateFunc: func(old, obj any) {
			o, err1 := metaOf(old)
			n, err2 := metaOf(obj)
			if err1 != nil || err2 != nil || !maps.Equal(o.GetLabels(), n.GetLabels()) {
				model()
			}
		},
		DeleteFunc: func(any) { model() },
	}
	add(nsInf.Informer(), labelsChanged)
	add(nodeInf.Informer(), labelsChanged)
	secretNamed := func(obj any) {
		if o, err := metaOf(obj); err == nil && c.secretReferenced(o.GetNamespace(), o.GetName()) {
			model()
		}
	}
	// The memberlist Secret is checked again when it appears or goes:
	// syncMemberlistSecret decides whether a deleted one may be made again.
	memberlistSecret := func(obj any) {
		if o, err := metaOf(obj); err == nil && c.cfg.MemberlistSecretName != "" && o.GetName() == c.cfg.MemberlistSecretName {
			c.objQueue.Add(objectKey{kindMemberlistSecret, o.GetName()})
		}
	}
	add(secInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { secretNamed(obj); memberlistSecret(obj) },
		UpdateFunc: func(_, obj any) { secretNamed(obj) },
		DeleteFunc: func(obj any) { secretNamed(obj); memberlistSecret(obj) },
	})
}

// sameRequest reports whether two versions of one of Herald's objects ask
// for the same thing: only their status (or resourceVersion) differs.
func sameRequest(old, obj metav1.Object) bool {
	return old.GetGeneration() == obj.GetGeneration() &&
		maps.Equal(old.GetLabels(), obj.GetLabels()) &&
		slices.Equal(old.GetFinalizers(), obj.GetFinalizers()) &&
		(old.GetDeletionTimestamp() == nil) == (obj.GetDeletionTimestamp() == nil)
}

// secretReferenced reports whether a BGPPeer names the Secret namespace/name.
func (c *Controller) secretReferenced(namespace, name string) bool {
	peers, _ := c.peers.List(labels.Everything())
	for _, p := range peers {
		ref := p.Spec.PasswordSecretRef
		if ref == nil || ref.Name != name {
			continue
		}
		ns := ref.Namespace
		if ns == "" {
			ns = c.cfg.Namespace
		}
		if ns == namespace {
			return true
		}
	}
	return false
}

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	return metaAccessor(obj)
}

// trimManagedFields drops metadata.managedFields, which the controller never
// reads, to save memory.
func trimManagedFields(obj any) (any, error) {
	if o, err := metaAccessor(obj); err == nil {
		o.SetManagedFields(nil)
	}
	// A SpeakerStatus is read for its conditions and BGP sessions only; its
	// layer-2 list grows with the node's addresses.
	if st, ok := obj.(*v1alpha1.SpeakerStatus); ok {
		st.Status.Layer2 = nil
		st.Status.GossipKeys = nil
	}
	return obj, nil
}

// trimKubeObject trims core objects before they are cached.
func trimKubeObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Node:
		return &corev1.Node{ObjectMeta: slimMeta(o.ObjectMeta)}, nil
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: slimMeta(o.ObjectMeta)}, nil
	case *corev1.Secret:
		s := &corev1.Secret{ObjectMeta: slimMeta(o.ObjectMeta), Type: o.Type}
		s.Labels = nil
		if len(o.Data) > 0 {
			s.Data = make(map[string][]byte, len(o.Data))
			for k, v := range o.Data {
				if len(v) > maxSecretValue {
					v = v[:maxSecretValue]
				}
				s.Data[k] = v
			}
		}
		return s, nil
	}
	return trimManagedFields(obj)
}

// slimMeta keeps the identity and labels of an object.
func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
		Labels: m.Labels,
	}
}

func metaAccessor(obj any) (metav1.Object, error) { return meta.Accessor(obj) }
