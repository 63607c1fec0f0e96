package decide

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/herald-dev/herald/config"
)

// ServiceKey names a Service.
type ServiceKey struct {
	Namespace, Name string
}

// String returns namespace/name.
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// CompareServiceKeys orders Service keys by namespace, then name.
func CompareServiceKeys(a, b ServiceKey) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// SearchServices returns the index of Service k in services, sorted by
// key, or where it would go, and whether it is there. Cost: O(log S).
func SearchServices(services []Service, k ServiceKey) (int, bool) {
	return slices.BinarySearchFunc(services, k, func(s Service, k ServiceKey) int { return CompareServiceKeys(s.Key, k) })
}

// compareServices orders Services by key.
func compareServices(a, b Service) int { return CompareServiceKeys(a.Key, b.Key) }

// Service is what the speaker needs of one Service and its EndpointSlices.
type Service struct {
	// Key names the Service.
	Key ServiceKey
	// Addresses are the addresses to announce, each with the pool whose
	// advertisements announce it: the pool of its AddressClaim, whatever
	// the pools' ranges say now (see config.ClaimedAddresses). Unmapped,
	// without zones, unique, sorted by address.
	Addresses []config.ClaimedAddress
	// TrafficPolicy is spec.externalTrafficPolicy.
	TrafficPolicy TrafficPolicy
	// HealthCheckNodePort is spec.healthCheckNodePort (Local only), 0 when unset.
	HealthCheckNodePort int32
	// EndpointsV4 and EndpointsV6 are the endpoints of the Service's IPv4
	// and IPv6 EndpointSlices: an address is judged by its own family's
	// slices, as kube-proxy programs each family from its own slices.
	EndpointsV4, EndpointsV6 []Endpoint
}

// endpointsFor returns the endpoints that carry traffic for addr.
func (s Service) endpointsFor(addr netip.Addr) []Endpoint {
	if addr.Is4() {
		return s.EndpointsV4
	}
	return s.EndpointsV6
}
