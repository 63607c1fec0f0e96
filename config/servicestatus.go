package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Service conditions the controller writes, for people. Annotations
// (see annotations.go) are what a user asks for; these conditions say what
// Herald gave and why. The contract with the speakers is the AddressClaims
// (claim.go): no component parses these messages, except the controller's
// start-up import of a status written by the previous release, which had no
// claims (ParseGrant, GrantOf and AcceptedExternalIPs are kept for that alone).
const (
	// ConditionAddressAllocated says whether a Service of type LoadBalancer
	// has the addresses it asks for. True: the message starts with
	// `Allocated <addr>[, <addr>] from IPPool "<pool>".` False: the reason says
	// why not, and the message whether the Service keeps an earlier address.
	ConditionAddressAllocated = "herald.dev/AddressAllocated"

	// ConditionExternalIPsAccepted says whether the addresses in a Service's
	// spec.externalIPs are claimed in IPAM, so that speakers may announce
	// them. True: the message starts with `Accepted <addr>[, <addr>] from
	// IPPool "<pool>".` (or `Allocated ...` for an external IP Herald
	// allocated) and lists exactly the claimed addresses. False: none is
	// claimed, and speakers must announce none (see AcceptedExternalIPs).
	ConditionExternalIPsAccepted = "herald.dev/ExternalIPsAccepted"
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
	// VerbAllocated starts the sentence for addresses Herald allocated.
	VerbAllocated = "Allocated"
	// VerbAccepted starts the sentence for user-written external IPs Herald claimed.
	VerbAccepted = "Accepted"

	grantFrom   = " from IPPool "
	grantNoPool = " from no IPPool."
)

// Grant is what a True AddressAllocated or ExternalIPsAccepted condition
// records: the addresses a Service holds and the pool they came from (empty
// for addresses in no pool).
type Grant struct {
	Addresses []netip.Addr
	Pool      string
}

// GrantSentence writes the sentence ParseGrant reads.
func GrantSentence(verb string, addrs []netip.Addr, pool string) string {
	if pool == "" {
		return verb + " " + JoinAddrs(addrs) + grantNoPool
	}
	return verb + " " + JoinAddrs(addrs) + grantFrom + strconv.Quote(pool) + "."
}

// JoinAddrs writes addresses as "a, b".
func JoinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// ParseGrant reads the first sentence of a condition message written by
// GrantSentence. It reports false when msg does not start with such a
// sentence. Addresses come back unmapped.
func ParseGrant(msg string) (Grant, bool) {
	verb, rest, ok := strings.Cut(msg, " ")
	if !ok || (verb != VerbAllocated && verb != VerbAccepted) {
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
		g.Addresses = append(g.Addresses, a.Unmap())
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

// GrantOf returns what svc's condition of type condType records, if it is
// True and in the form GrantSentence writes.
func GrantOf(svc *corev1.Service, condType string) (Grant, bool) {
	c := apimeta.FindStatusCondition(svc.Status.Conditions, condType)
	if c == nil || c.Status != metav1.ConditionTrue {
		return Grant{}, false
	}
	return ParseGrant(c.Message)
}

// AcceptedExternalIPs returns the addresses of svc's spec.externalIPs that
// Herald claimed for it, which are the only external IPs of svc a speaker may
// announce: those listed by a True ExternalIPsAccepted condition that are
// still in spec.externalIPs, unmapped and unique, in spec order. Anyone who
// may edit a Service may write spec.externalIPs, but only the controller
// writes the condition, through the status subresource, after claiming the
// address in a pool that allows it (CVE-2020-8554). It returns nil when the
// condition is missing, False, or not in the form GrantSentence writes.
func AcceptedExternalIPs(svc *corev1.Service) []netip.Addr {
	g, ok := GrantOf(svc, ConditionExternalIPsAccepted)
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
// status.loadBalancer.ingress, unmapped, in order, skipping hostnames and
// anything that does not parse.
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
		out = append(out, a.Unmap().WithZone(""))
	}
	return out
}
