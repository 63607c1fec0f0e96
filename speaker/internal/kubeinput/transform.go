package kubeinput

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// The informer transforms below run on every object before it enters a
// cache, so the speaker's memory follows the number of Services and
// endpoints, not the size of the objects: each keeps only the fields the
// speaker reads, and drops managedFields, annotations and the rest. They
// return new objects and never change their input. Services,
// EndpointSlices and AddressClaims become the compact structs of
// cached.go; the other kinds stay trimmed Kubernetes objects (there are
// few of them).

// TransformObject is the informer transform for every kind the speaker
// watches. Tombstones are passed through.
func TransformObject(in *Interner) cache.TransformFunc {
	return func(obj any) (any, error) {
		switch o := obj.(type) {
		case *corev1.Service:
			return cacheService(o), nil
		case *discoveryv1.EndpointSlice:
			return cacheSlice(o, in), nil
		case *corev1.Node:
			return trimNode(o), nil
		case *v1alpha1.SpeakerStatus:
			return trimSpeakerStatus(o), nil
		case *v1alpha1.AddressClaim:
			return cacheClaim(o), nil
		case *CachedService, *CachedSlice, *CachedClaim:
			// Already transformed: a cache's objects handed back to it
			// (Replace) are transformed again.
			return obj, nil
		case metav1.Object:
			if acc, err := meta.Accessor(o); err == nil {
				acc.SetManagedFields(nil)
			}
			return obj, nil
		}
		return obj, nil
	}
}

// trimmedMeta keeps what keys, events and owner references need.
func trimmedMeta(m metav1.ObjectMeta, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Generation:        m.Generation,
		DeletionTimestamp: m.DeletionTimestamp,
		Labels:            labels,
	}
}

// cacheService keeps what config.ClaimedAddressesOf, ServesClass and
// eligibility read, with the addresses parsed. A Service without any
// address to announce is reduced to its name and UID.
func cacheService(s *corev1.Service) *CachedService {
	out := &CachedService{objectMeta: metaOf(s.ObjectMeta), UID: s.UID}
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer && len(s.Spec.ExternalIPs) == 0 {
		return out
	}
	if s.Spec.LoadBalancerClass != nil {
		out.Class, out.HasClass = *s.Spec.LoadBalancerClass, true
	}
	out.Local = s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	out.HealthCheckNodePort = s.Spec.HealthCheckNodePort
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		out.LoadBalancer = config.LoadBalancerAddresses(s)
	}
	out.ExternalIPs = config.ExternalIPAddresses(s)
	return out
}

// cacheClaim keeps config.ClaimOf's verdict on c and what the summaries
// read of a valid claim: the address, its pool and each holder's name,
// UID and how it holds the address. It keeps the holders of an invalid
// claim too: they must stop announcing its address.
func cacheClaim(c *v1alpha1.AddressClaim) *CachedClaim {
	out := &CachedClaim{objectMeta: metaOf(c.ObjectMeta)}
	claim, err := config.ClaimOf(c)
	if err != nil {
		out.Err = err
	} else {
		out.Addr, out.Pool = claim.Addr, claim.Pool
	}
	if len(c.Spec.Holders) > 0 {
		out.Holders = make([]ClaimHolder, len(c.Spec.Holders))
		for i, h := range c.Spec.Holders {
			out.Holders[i] = ClaimHolder{Namespace: h.Namespace, Name: h.Name, UID: h.UID, ExternalIP: h.As == v1alpha1.HolderExternalIP}
		}
	}
	return out
}

// cacheSlice keeps the Service label, the address type and, per endpoint,
// the node name (interned: one string per node, shared by all endpoints)
// and the three conditions. Addresses, ports, target references and hints
// are dropped.
func cacheSlice(s *discoveryv1.EndpointSlice, in *Interner) *CachedSlice {
	out := &CachedSlice{objectMeta: metaOf(s.ObjectMeta), AddressType: addressType(s.AddressType)}
	out.Service, out.HasService = s.Labels[discoveryv1.LabelServiceName]
	if len(s.Endpoints) > 0 {
		out.Endpoints = make([]decide.Endpoint, len(s.Endpoints))
		for i, ep := range s.Endpoints {
			e := endpointConditions(ep.Conditions)
			if ep.NodeName != nil {
				e.NodeName = in.intern(*ep.NodeName)
			}
			out.Endpoints[i] = e
		}
	}
	return out
}

// addressType returns t, the constant's own string for the known types so
// that no slice keeps a copy of it.
func addressType(t discoveryv1.AddressType) discoveryv1.AddressType {
	for _, k := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN} {
		if t == k {
			return k
		}
	}
	return t
}

// trimNode keeps the labels, the taints and the conditions eligibility
// reads, and the addresses speakers join membership at.
func trimNode(n *corev1.Node) *corev1.Node {
	out := &corev1.Node{ObjectMeta: trimmedMeta(n.ObjectMeta, n.Labels)}
	for _, t := range n.Spec.Taints {
		if t.Key == TaintToBeDeletedByClusterAutoscaler {
			out.Spec.Taints = append(out.Spec.Taints, corev1.Taint{Key: t.Key, Effect: t.Effect})
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{Type: c.Type, Status: c.Status})
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			out.Status.Addresses = append(out.Status.Addresses, a)
		}
	}
	return out
}

// trimSpeakerStatus keeps the conditions only: the speaker reads other
// nodes' records to mark them not ready, never their announcements.
func trimSpeakerStatus(s *v1alpha1.SpeakerStatus) *v1alpha1.SpeakerStatus {
	return &v1alpha1.SpeakerStatus{
		ObjectMeta: trimmedMeta(s.ObjectMeta, nil),
		Status:     v1alpha1.SpeakerStatusStatus{Conditions: s.Status.Conditions},
	}
}

// Interner shares one copy of each distinct node name among all endpoints.
type Interner struct {
	mu   sync.Mutex
	strs map[string]string
}

func NewInterner() *Interner { return &Interner{strs: map[string]string{}} }

// Forget drops the node names that gone says are gone (their Node was
// deleted), so the interner does not keep every node the cluster ever had.
// Endpoints already cached keep their copy; a name seen again is interned
// anew.
func (in *Interner) Forget(gone func(name string) bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for s := range in.strs {
		if gone(s) {
			delete(in.strs, s)
		}
	}
}

// intern returns the interner's copy of s; with a nil interner, s.
func (in *Interner) intern(s string) string {
	if in == nil {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if p, ok := in.strs[s]; ok {
		return p
	}
	in.strs[s] = s
	return s
}
