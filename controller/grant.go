package controller

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The first sentence of a True AddressAllocated or ExternalIPsAccepted
// condition's message records what the Service holds, in a fixed form that
// ParseGrant reads back:
//
//	Allocated 198.51.100.7, 2001:db8::7 from IPPool "pool-a".
//	Accepted 203.0.113.5 from IPPool "external".
//	Allocated 203.0.113.7 from no IPPool.
//
// The last form is for an address imported from before that lies in no pool.
// Anything after that sentence is for people.
const (
	verbAllocated = "Allocated"
	verbAccepted  = "Accepted"
	grantFrom     = " from IPPool "
)

// grantNoPool ends the sentence for addresses counted in no pool (imported
// from before, outside every pool).
const grantNoPool = " from no IPPool."

// grantSentence writes the sentence ParseGrant reads.
func grantSentence(verb string, addrs []netip.Addr, pool string) string {
	if pool == "" {
		return verb + " " + joinAddrs(addrs) + grantNoPool
	}
	return verb + " " + joinAddrs(addrs) + grantFrom + strconv.Quote(pool) + "."
}

// Grant is what a True AddressAllocated or ExternalIPsAccepted condition
// records: the addresses a Service holds and the pool they came from.
type Grant struct {
	Addresses []netip.Addr
	Pool      string
}

// ParseGrant reads the first sentence of a condition message written by this
// controller. It reports false when msg does not start with such a sentence.
func ParseGrant(msg string) (Grant, bool) {
	verb, rest, ok := strings.Cut(msg, " ")
	if !ok || (verb != verbAllocated && verb != verbAccepted) {
		return Grant{}, false
	}
	list, rest, ok := strings.Cut(rest, grantFrom)
	noPool := false
	if !ok {
		if list, _, noPool = strings.Cut(list, grantNoPool); !noPool {
			return Grant{}, false
		}
	}
	var g Grant
	for _, s := range strings.Split(list, ", ") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Grant{}, false
		}
		g.Addresses = append(g.Addresses, a)
	}
	if noPool {
		return g, true
	}
	if !strings.HasPrefix(rest, `"`) {
		return Grant{}, false
	}
	end := strings.Index(rest[1:], `"`)
	if end < 0 {
		return Grant{}, false
	}
	pool, err := strconv.Unquote(rest[:end+2])
	if err != nil {
		return Grant{}, false
	}
	g.Pool = pool
	return g, true
}

// grantOf returns what a Service's condition of type condType records, if it
// is True and written by this controller.
func grantOf(svc *corev1.Service, condType string) (Grant, bool) {
	c := meta.FindStatusCondition(svc.Status.Conditions, condType)
	if c == nil || c.Status != metav1.ConditionTrue {
		return Grant{}, false
	}
	return ParseGrant(c.Message)
}

// AcceptedExternalIPs returns the addresses of svc's spec.externalIPs that
// Herald claimed for it, which are the only external IPs of svc a speaker may
// announce: those listed by a True herald.dev/ExternalIPsAccepted condition
// that are still in spec.externalIPs. It returns nil when the condition is
// missing, False, or not in the form this controller writes. The controller
// is the only writer of the condition, through the status subresource, which
// users who may edit a Service usually may not write.
func AcceptedExternalIPs(svc *corev1.Service) []netip.Addr {
	g, ok := grantOf(svc, ConditionExternalIPsAccepted)
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
		if slices.Contains(g.Addresses, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// LoadBalancerAddresses returns the IP addresses in svc's
// status.loadBalancer.ingress, in order, skipping hostnames and anything
// that does not parse.
func LoadBalancerAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" {
			continue
		}
		a, err := netip.ParseAddr(ing.IP)
		if err != nil {
			continue
		}
		out = append(out, a.Unmap())
	}
	return out
}

// IngressFor returns the status.loadBalancer.ingress entries for addrs, with
// ipMode VIP (what the apiserver would fill in).
func IngressFor(addrs []netip.Addr) []corev1.LoadBalancerIngress {
	if len(addrs) == 0 {
		return nil
	}
	out := make([]corev1.LoadBalancerIngress, len(addrs))
	for i, a := range addrs {
		mode := corev1.LoadBalancerIPModeVIP
		out[i] = corev1.LoadBalancerIngress{IP: a.String(), IPMode: &mode}
	}
	return out
}
