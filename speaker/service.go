package speaker

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceKey names a Service.
type ServiceKey struct {
	Namespace, Name string
}

// String returns namespace/name.
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

func compareServiceKeys(a, b ServiceKey) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// Service is what the speaker needs of one Service and its EndpointSlices.
type Service struct {
	// Key names the Service.
	Key ServiceKey
	// Addresses are the addresses to announce: the IPs of
	// status.loadBalancer.ingress (type LoadBalancer only) and the external
	// IPs the controller accepted. Unmapped, without zones, unique, sorted.
	Addresses []netip.Addr
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

// ConditionExternalIPsAccepted is the Service condition the controller sets
// when it claimed a Service's spec.externalIPs. The speaker announces an
// external IP only when this condition is True and its message lists it.
const ConditionExternalIPsAccepted = "herald.dev/ExternalIPsAccepted"

// ServesClass reports whether a speaker serving loadBalancerClass class
// (empty: Services without a class) handles svc. A Service without a class
// is served by speakers without one; with a class, only by speakers of that
// class, as spec.loadBalancerClass requires.
func ServesClass(svc *corev1.Service, class string) bool {
	if svc.Spec.LoadBalancerClass == nil {
		return class == ""
	}
	return *svc.Spec.LoadBalancerClass == class
}

// ServiceAddresses returns the addresses a speaker may announce for svc:
// the IPs of status.loadBalancer.ingress when svc is of type LoadBalancer,
// and the entries of spec.externalIPs that the controller accepted (see
// AcceptedExternalIPs). The result is unmapped, unique and sorted.
func ServiceAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				out = append(out, a.Unmap().WithZone(""))
			}
		}
	}
	out = append(out, AcceptedExternalIPs(svc)...)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// AcceptedExternalIPs returns the entries of svc's spec.externalIPs that a
// True herald.dev/ExternalIPsAccepted condition lists, the only external IPs
// a speaker may announce: anyone who may edit a Service may write
// spec.externalIPs, but only the controller writes the condition, through
// the status subresource, after claiming the address in a pool that allows
// it (CVE-2020-8554).
//
// The condition's message starts with the sentence the controller writes,
//
//	Accepted 203.0.113.5, 2001:db8::5 from IPPool "external".
//
// This is a copy of the part of controller.ParseGrant the speaker needs, so
// that the speaker does not depend on the controller package; the e2e test
// TestAcceptedExternalIPsMatchesController checks that both read the same
// messages alike.
func AcceptedExternalIPs(svc *corev1.Service) []netip.Addr {
	c := meta.FindStatusCondition(svc.Status.Conditions, ConditionExternalIPsAccepted)
	if c == nil || c.Status != metav1.ConditionTrue {
		return nil
	}
	accepted, ok := parseAccepted(c.Message)
	if !ok {
		return nil
	}
	var out []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		a = a.Unmap()
		if slices.Contains(accepted, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// parseAccepted reads `Accepted <addr>[, <addr>] from IPPool "<pool>".` at
// the start of msg (or `Allocated ...`, which the controller's parser takes
// too, for an external IP it allocated).
func parseAccepted(msg string) ([]netip.Addr, bool) {
	rest, ok := strings.CutPrefix(msg, "Accepted ")
	if !ok {
		rest, ok = strings.CutPrefix(msg, "Allocated ")
	}
	if !ok {
		return nil, false
	}
	list, pool, ok := strings.Cut(rest, " from IPPool ")
	if !ok || !strings.HasPrefix(pool, `"`) {
		return nil, false
	}
	end := strings.Index(pool[1:], `"`)
	if end < 0 {
		return nil, false
	}
	if _, err := strconv.Unquote(pool[:end+2]); err != nil {
		return nil, false
	}
	var out []netip.Addr
	for _, s := range strings.Split(list, ", ") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, false
		}
		out = append(out, a.Unmap())
	}
	return out, true
}
