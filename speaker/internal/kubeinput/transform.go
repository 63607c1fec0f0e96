package kubeinput

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// The informer transforms below run on every object before it enters a
// cache, so the speaker's memory follows the number of Services and
// endpoints, not the size of the objects: each keeps only the fields the
// speaker reads, and drops managedFields, annotations and the rest. They
// return new objects and never change their input.

// TransformObject is the informer transform for every kind the speaker
// watches. Tombstones are passed through.
func TransformObject(in *Interner) cache.TransformFunc {
	return func(obj any) (any, error) {
		switch o := obj.(type) {
		case *corev1.Service:
			return trimService(o), nil
		case *discoveryv1.EndpointSlice:
			return trimEndpointSlice(o, in), nil
		case *corev1.Node:
			return trimNode(o), nil
		case *v1alpha1.SpeakerStatus:
			return trimSpeakerStatus(o), nil
		case *v1alpha1.AddressClaim:
			return trimAddressClaim(o), nil
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

// trimService keeps what config.ClaimedAddresses, ServesClass and
// eligibility read. A Service without any address to announce is reduced
// to its name.
func trimService(s *corev1.Service) *corev1.Service {
	out := &corev1.Service{ObjectMeta: trimmedMeta(s.ObjectMeta, nil)}
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer && len(s.Spec.ExternalIPs) == 0 {
		return out
	}
	out.Spec = corev1.ServiceSpec{
		Type:                  s.Spec.Type,
		ExternalIPs:           s.Spec.ExternalIPs,
		ExternalTrafficPolicy: s.Spec.ExternalTrafficPolicy,
		HealthCheckNodePort:   s.Spec.HealthCheckNodePort,
		LoadBalancerClass:     s.Spec.LoadBalancerClass,
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ing.IP})
		}
	}
	return out
}

// trimAddressClaim keeps what config.ClaimOf and ClaimedAddresses read:
// the address, its family and pool, and each holder's name, UID and how it
// holds the address. The holders' sharing terms are the allocators'.
func trimAddressClaim(c *v1alpha1.AddressClaim) *v1alpha1.AddressClaim {
	out := &v1alpha1.AddressClaim{
		ObjectMeta: trimmedMeta(c.ObjectMeta, nil),
		Spec: v1alpha1.AddressClaimSpec{
			Address: c.Spec.Address, Family: c.Spec.Family, Pool: c.Spec.Pool, HolderCount: c.Spec.HolderCount,
		},
	}
	if len(c.Spec.Holders) > 0 {
		out.Spec.Holders = make([]v1alpha1.AddressHolder, len(c.Spec.Holders))
		for i, h := range c.Spec.Holders {
			out.Spec.Holders[i] = v1alpha1.AddressHolder{Namespace: h.Namespace, Name: h.Name, UID: h.UID, As: h.As}
		}
	}
	return out
}

// Shared condition values, so trimmed endpoints allocate no booleans.
var (
	boolTrue  = true
	boolFalse = false
)

func sharedBool(b *bool, dflt bool) *bool {
	v := dflt
	if b != nil {
		v = *b
	}
	if v {
		return &boolTrue
	}
	return &boolFalse
}

// trimEndpointSlice keeps the Service label, the address type and, per
// endpoint, the node name (interned: one string per node, shared by all
// endpoints) and the three conditions. Addresses, ports, target references
// and hints are dropped.
func trimEndpointSlice(s *discoveryv1.EndpointSlice, in *Interner) *discoveryv1.EndpointSlice {
	var labels map[string]string
	if svc, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
		labels = map[string]string{discoveryv1.LabelServiceName: svc}
	}
	out := &discoveryv1.EndpointSlice{ObjectMeta: trimmedMeta(s.ObjectMeta, labels), AddressType: s.AddressType}
	out.Endpoints = make([]discoveryv1.Endpoint, len(s.Endpoints))
	for i, ep := range s.Endpoints {
		e := discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{
			Ready:   sharedBool(ep.Conditions.Ready, true),
			Serving: sharedBool(ep.Conditions.Serving, ep.Conditions.Ready == nil || *ep.Conditions.Ready),
		}}
		if ep.Conditions.Terminating != nil {
			e.Conditions.Terminating = sharedBool(ep.Conditions.Terminating, false)
		}
		if ep.NodeName != nil {
			e.NodeName = in.internPtr(*ep.NodeName)
		}
		out.Endpoints[i] = e
	}
	return out
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
	strs map[string]*string
}

func NewInterner() *Interner { return &Interner{strs: map[string]*string{}} }

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

func (in *Interner) internPtr(s string) *string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if p, ok := in.strs[s]; ok {
		return p
	}
	p := &s
	in.strs[s] = p
	return p
}
