package kubeinput

import (
	"net/netip"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// The speaker caches its most numerous kinds (Services, EndpointSlices,
// AddressClaims: one or more per Service) as the compact structs below,
// not as trimmed Kubernetes objects: a Service trimmed to a few fields is
// still a whole corev1.Service (about 1 KB with its empty spec and
// metadata), an EndpointSlice's endpoints are 100 bytes each with their
// pointers, and each object is a dozen allocations. At 10,000 Services
// these structs hold the same facts in about a third of the memory and
// far fewer objects. TransformObject makes them; they embed objectMeta so
// that client-go's caches can key them, and nothing else of the
// Kubernetes object is kept.

// CachedService is what the speaker reads of a Service: what
// config.ClaimedAddressesOf, ServesClass and eligibility read.
type CachedService struct {
	objectMeta
	UID types.UID
	// Class is spec.loadBalancerClass, "" when unset (HasClass false).
	Class    string
	HasClass bool
	// Local reports spec.externalTrafficPolicy Local.
	Local bool
	// HealthCheckNodePort is spec.healthCheckNodePort, 0 when unset.
	HealthCheckNodePort int32
	// LoadBalancer are the addresses of status.loadBalancer.ingress
	// (config.LoadBalancerAddresses), kept only for type LoadBalancer;
	// ExternalIPs are spec.externalIPs (config.ExternalIPAddresses).
	LoadBalancer, ExternalIPs []netip.Addr
}

// Key returns the Service's key.
func (s *CachedService) Key() decide.ServiceKey {
	return decide.ServiceKey{Namespace: s.Namespace, Name: s.Name}
}

// CachedSlice is what the speaker reads of an EndpointSlice: its Service,
// its address type and its endpoints' nodes and conditions.
type CachedSlice struct {
	objectMeta
	// Service is the kubernetes.io/service-name label; HasService is
	// false without one.
	Service    string
	HasService bool
	// AddressType is the slice's address type.
	AddressType discoveryv1.AddressType
	// Endpoints are the endpoints as package decide takes them: each one's
	// node (interned: one string per node shared by every endpoint, ""
	// when unset) and conditions (endpointConditions). A Service's summary
	// shares them when the slice is its family's only one, so they must
	// never be modified: a changed slice is a new CachedSlice.
	Endpoints []decide.Endpoint
}

// ServiceKey returns the key of the slice's Service, false when it has
// no kubernetes.io/service-name label.
func (s *CachedSlice) ServiceKey() (decide.ServiceKey, bool) {
	return decide.ServiceKey{Namespace: s.Namespace, Name: s.Service}, s.HasService
}

// endpointConditions reads an endpoint's conditions: a nil ready counts as
// true, a nil serving as true (as the API says and kube-proxy reads it), a
// nil terminating as false.
func endpointConditions(c discoveryv1.EndpointConditions) decide.Endpoint {
	return decide.Endpoint{
		Ready:       c.Ready == nil || *c.Ready,
		Serving:     c.Serving == nil || *c.Serving,
		Terminating: c.Terminating != nil && *c.Terminating,
	}
}

// CachedClaim is what the speaker reads of an AddressClaim: config.ClaimOf's
// verdict, and the address, pool and holders when it is valid. The
// holders' sharing terms are the allocators'.
type CachedClaim struct {
	objectMeta
	// Err is why config.ClaimOf rejects the claim, nil when it is valid:
	// an invalid claim's address is not announced.
	Err  error
	Addr netip.Addr
	Pool string
	// Holders are the Services the claim lists, valid or not: a claim
	// changing changes their summaries.
	Holders []ClaimHolder
}

// ClaimHolder is one Service an AddressClaim lists.
type ClaimHolder struct {
	Namespace, Name string
	UID             string
	// ExternalIP: the Service holds the address in spec.externalIPs;
	// otherwise in status.loadBalancer.ingress.
	ExternalIP bool
}

// holds reports whether a valid claim lists the Service with UID uid,
// holding the address as an external IP (externalIP) or a load-balancer
// address, as config.Claim.Holds does.
func (c *CachedClaim) holds(uid string, externalIP bool) bool {
	if c.Err != nil {
		return false
	}
	for _, h := range c.Holders {
		if h.UID == uid && h.ExternalIP == externalIP {
			return true
		}
	}
	return false
}

// GetUID returns the Service's UID.
func (s *CachedService) GetUID() types.UID { return s.UID }
