package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// An AddressClaim is named by its address (see v1alpha1.AddressClaim). An
// object name may not hold a colon, so an IPv6 address has its colons written
// as dashes, and a leading or trailing "::" gets a 0 so that the name starts
// and ends with an alphanumeric character:
//
//	198.51.100.7  -> 198.51.100.7
//	2001:db8::7   -> 2001-db8--7
//	2001:db8::    -> 2001-db8--0
//	::1           -> 0--1
//
// ParseClaimName inverts it, and accepts only names ClaimName writes, so the
// mapping is one to one.

// ClaimName returns the name of the AddressClaim of addr: its canonical
// form, unmapped and without a zone, with colons written as dashes.
func ClaimName(addr netip.Addr) string {
	s := addr.Unmap().WithZone("").String()
	if !strings.Contains(s, ":") {
		return s
	}
	name := strings.ReplaceAll(s, ":", "-")
	if strings.HasPrefix(name, "-") {
		name = "0" + name
	}
	if strings.HasSuffix(name, "-") {
		name += "0"
	}
	return name
}

// ErrClaimName is returned by ParseClaimName for a name that no address has.
var ErrClaimName = errors.New("config: not the name of an AddressClaim")

// ParseClaimName returns the address an AddressClaim named name claims.
func ParseClaimName(name string) (netip.Addr, error) {
	s := name
	if strings.Contains(s, "-") {
		s = strings.ReplaceAll(s, "-", ":")
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrClaimName, name)
	}
	if addr.Zone() != "" || addr.Is4In6() || ClaimName(addr) != name {
		return netip.Addr{}, fmt.Errorf("%w: %q (the claim of %s is named %q)", ErrClaimName, name, addr, ClaimName(addr))
	}
	return addr, nil
}

// Claim is the validated content of one AddressClaim.
type Claim struct {
	// Addr is the claimed address.
	Addr netip.Addr
	// Pool is the pool that granted it ("" for none).
	Pool string
	// Holders are the Services holding it.
	Holders []ClaimHolder
}

// ClaimHolder is one Service holding a claimed address.
type ClaimHolder struct {
	Namespace, Name, UID string
	// ExternalIP reports that the Service holds the address in
	// spec.externalIPs; otherwise in status.loadBalancer.ingress.
	ExternalIP bool
	SharingKey string
	// SharingNamespaces are the other namespaces the holder lets share the
	// address ("*" for all).
	SharingNamespaces []string
	BackendKey        string
	Ports             []v1alpha1.HolderPort
}

// ErrClaim wraps every problem ClaimOf finds in an AddressClaim.
var ErrClaim = errors.New("config: invalid AddressClaim")

// ClaimOf validates an AddressClaim: its name and address agree, its family
// is the address's, and every holder names a Service. The API server's
// schema checks the same; this guards readers against an object written
// before the schema, or by hand with validation off.
func ClaimOf(c *v1alpha1.AddressClaim) (Claim, error) {
	addr, err := netip.ParseAddr(c.Spec.Address)
	if err != nil || addr.Zone() != "" || addr.Is4In6() {
		return Claim{}, fmt.Errorf("%w %s: address %q is not a canonical IP address", ErrClaim, c.Name, c.Spec.Address)
	}
	if ClaimName(addr) != c.Name {
		return Claim{}, fmt.Errorf("%w %s: it claims %s, whose claim is named %s", ErrClaim, c.Name, addr, ClaimName(addr))
	}
	out := Claim{Addr: addr, Pool: c.Spec.Pool}
	for _, h := range c.Spec.Holders {
		if h.Namespace == "" || h.Name == "" || h.UID == "" {
			return Claim{}, fmt.Errorf("%w %s: a holder lacks a namespace, name or UID", ErrClaim, c.Name)
		}
		out.Holders = append(out.Holders, ClaimHolder{
			Namespace: h.Namespace, Name: h.Name, UID: h.UID,
			ExternalIP: h.As == v1alpha1.HolderExternalIP,
			SharingKey: h.SharingKey, SharingNamespaces: h.SharingNamespaces, BackendKey: h.BackendKey, Ports: h.Ports,
		})
	}
	if len(out.Holders) == 0 {
		return Claim{}, fmt.Errorf("%w %s: it has no holder", ErrClaim, c.Name)
	}
	return out, nil
}

// Holds reports whether the claim lists the Service with UID uid, holding
// the address as an external IP (externalIP) or a load-balancer address.
func (c Claim) Holds(uid string, externalIP bool) bool {
	return slices.ContainsFunc(c.Holders, func(h ClaimHolder) bool { return h.UID == uid && h.ExternalIP == externalIP })
}

// ClaimedAddress is an address a Service may announce, with the pool whose
// advertisements announce it.
type ClaimedAddress struct {
	Addr netip.Addr
	Pool string
}

// ClaimedAddresses returns the addresses a speaker may announce for svc,
// sorted and unique: each address of status.loadBalancer.ingress (type
// LoadBalancer only) whose claim lists svc's UID as a load-balancer holder,
// and each address of spec.externalIPs whose claim lists it as an external
// IP holder. claimOf returns the claim of an address, if there is one. The
// pool is the claim's. Nothing a user writes on the Service alone makes an
// address announced: only the controller writes claims (CVE-2020-8554).
func ClaimedAddresses(svc *corev1.Service, claimOf func(netip.Addr) (Claim, bool)) []ClaimedAddress {
	var loadBalancer []netip.Addr
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		loadBalancer = LoadBalancerAddresses(svc)
	}
	return ClaimedAddressesOf(string(svc.UID), loadBalancer, ExternalIPAddresses(svc), func(a netip.Addr, uid string, externalIP bool) (string, bool) {
		c, ok := claimOf(a)
		if !ok || !c.Holds(uid, externalIP) {
			return "", false
		}
		return c.Pool, true
	})
}

// ClaimedAddressesOf is ClaimedAddresses over what it reads of a Service:
// its UID, its load-balancer addresses (LoadBalancerAddresses; none unless
// its type is LoadBalancer) and its external IPs (ExternalIPAddresses).
// holds returns the pool of a's claim when the claim lists uid, holding a
// as an external IP (externalIP) or a load-balancer address. It lets a
// reader that keeps Services and claims in its own form (the speaker's
// caches) decide exactly as ClaimedAddresses does.
func ClaimedAddressesOf(uid string, loadBalancer, externalIPs []netip.Addr, holds func(a netip.Addr, uid string, externalIP bool) (pool string, ok bool)) []ClaimedAddress {
	var out []ClaimedAddress
	add := func(a netip.Addr, externalIP bool) {
		pool, ok := holds(a, uid, externalIP)
		if !ok {
			return
		}
		if !slices.ContainsFunc(out, func(x ClaimedAddress) bool { return x.Addr == a }) {
			out = append(out, ClaimedAddress{Addr: a, Pool: pool})
		}
	}
	for _, a := range loadBalancer {
		add(a, false)
	}
	for _, a := range externalIPs {
		add(a, true)
	}
	slices.SortFunc(out, func(a, b ClaimedAddress) int { return a.Addr.Compare(b.Addr) })
	return out
}

// ExternalIPAddresses returns the IP addresses in svc's spec.externalIPs,
// unmapped, in order, skipping what does not parse and addresses with a zone.
func ExternalIPAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// NewClaim returns the AddressClaim of addr in pool listing holders, as an
// allocator creates it: named by ClaimName, with its family and holder count.
func NewClaim(addr netip.Addr, pool string, holders ...v1alpha1.AddressHolder) *v1alpha1.AddressClaim {
	family := "IPv4"
	if addr.Is6() {
		family = "IPv6"
	}
	return &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: ClaimName(addr)},
		Spec: v1alpha1.AddressClaimSpec{Address: addr.String(), Family: family, Pool: pool,
			Holders: holders, HolderCount: int32(len(holders))},
	}
}
