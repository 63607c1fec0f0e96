package controller

import (
	"errors"

	"github.com/herald-dev/herald/ipam"
)

// Condition types the controller writes into a Service's status.conditions.
// Their Reason is the same stable CamelCase word as the Event that announced
// the decision, so `kubectl get svc -o yaml` and `kubectl describe svc` agree.
const ()

// Reasons of the Service conditions and Events. They are stable and safe to
// match on.
const (
	// ReasonAllocated: the Service has one address per family it asked for.
	ReasonAllocated = "Allocated"
	// ReasonPartiallyAllocated: a PreferDualStack Service got an address of
	// its first family only; the message says why the other is missing.
	ReasonPartiallyAllocated = "PartiallyAllocated"
	// ReasonPoolExhausted: no pool that may serve the Service has a free address.
	ReasonPoolExhausted = "PoolExhausted"
	// ReasonAddressInUse: the requested address is held by another Service
	// that cannot share it, named in the message when it is of the same
	// namespace; of another namespace, the message names nothing of it.
	ReasonAddressInUse = "AddressInUse"
	// ReasonAddressNotInAnyPool: a requested address lies in no IPPool.
	ReasonAddressNotInAnyPool = "AddressNotInAnyPool"
	// ReasonPoolNotFound: the annotation names an IPPool that does not exist.
	ReasonPoolNotFound = "PoolNotFound"
	// ReasonPoolNotAllowed: the pool (or every pool) may not serve this
	// Service: its namespace or labels are not admitted, autoAssign is off, or
	// the pool is invalid or being deleted.
	ReasonPoolNotAllowed = "PoolNotAllowed"
	// ReasonFamilyUnavailable: no pool that may serve the Service has
	// addresses of a family it requires.
	ReasonFamilyUnavailable = "FamilyUnavailable"
	// ReasonSharingRefused: the sharing key matches, but the ports overlap or,
	// with externalTrafficPolicy Local on both, the backends differ. With a
	// True condition: the Service keeps an address whose co-holders' backends
	// an edit made differ from its own (the address never moves for that).
	ReasonSharingRefused = "SharingRefused"
	// ReasonCrossNamespaceSharingNotOptedIn: the Service keeps an address it
	// shares with Services of other namespaces, from before Services of
	// different namespaces had to opt in, and not both sides list the
	// other's namespace in herald.dev/sharing-cross-namespace; the message
	// says what to add. The condition stays True (the same reason for
	// external IPs).
	ReasonCrossNamespaceSharingNotOptedIn = "CrossNamespaceSharingNotOptedIn"
	// ReasonInvalidAnnotation: a herald.dev/ annotation cannot be parsed.
	ReasonInvalidAnnotation = "InvalidAnnotation"
	// ReasonInvalidLoadBalancerIP: spec.loadBalancerIP is not an IP address.
	ReasonInvalidLoadBalancerIP = "InvalidLoadBalancerIP"
	// ReasonLoadBalancerIPMismatch: spec.loadBalancerIP is not among the
	// addresses of the herald.dev/addresses annotation.
	ReasonLoadBalancerIPMismatch = "LoadBalancerIPMismatch"
	// ReasonWrongAddressFamily: a requested address is of a family the
	// Service's spec.ipFamilies does not list.
	ReasonWrongAddressFamily = "WrongAddressFamily"
	// ReasonInvalidRequest: the request contradicts itself in another way
	// (for example, requested addresses in two different pools).
	ReasonInvalidRequest = "InvalidRequest"

	// ReasonExternalIPsAccepted: every address in spec.externalIPs is claimed.
	ReasonExternalIPsAccepted = "Accepted"
	// ReasonExternalIPAllocated: an address was allocated and written into
	// spec.externalIPs, as the herald.dev/allocate-external-ip annotation asked.
	ReasonExternalIPAllocated = "ExternalIPAllocated"
	// ReasonExternalIPInvalid: an entry of spec.externalIPs is not an IP address.
	ReasonExternalIPInvalid = "ExternalIPInvalid"
	// ReasonTooManyExternalIPs: spec.externalIPs lists more than one address
	// of a family; Herald claims at most one IPv4 and one IPv6 address per Service.
	ReasonTooManyExternalIPs = "TooManyExternalIPs"
	// ReasonExternalIPNotInAnyPool: an external IP lies in no IPPool.
	ReasonExternalIPNotInAnyPool = "ExternalIPNotInAnyPool"
	// ReasonExternalIPNotAllowed: no IPPool's allowExternalIPs admits the
	// Service's namespace for that address.
	ReasonExternalIPNotAllowed = "ExternalIPNotAllowed"
	// ReasonExternalIPInUse: another Service holds the external IP and
	// cannot share it (named only within the namespace, as for AddressInUse).
	ReasonExternalIPInUse = "ExternalIPInUse"
	// ReasonExternalIPSharingRefused: the sharing key matches, but the ports
	// overlap or the backends differ.
	ReasonExternalIPSharingRefused = "ExternalIPSharingRefused"
	// ReasonExternalIPPoolNotFound: the allocate-external-ip annotation names
	// an IPPool that does not exist.
	ReasonExternalIPPoolNotFound = "ExternalIPPoolNotFound"
	// ReasonExternalIPPoolExhausted: no pool that allows external IPs for the
	// namespace has a free address.
	ReasonExternalIPPoolExhausted = "ExternalIPPoolExhausted"
	// ReasonExternalIPFamilyUnavailable: no such pool has an address of the
	// family asked for.
	ReasonExternalIPFamilyUnavailable = "ExternalIPFamilyUnavailable"
	// ReasonExternalIPInvalidRequest: the external IPs contradict the request
	// in another way (for example, addresses in two different pools).
	ReasonExternalIPInvalidRequest = "ExternalIPInvalidRequest"
)

// reasonMap ties an ipam sentinel error to a Service reason for each kind of
// allocation. The order decides which reason names an error that wraps several
// sentinels (one refusal per candidate pool): what the user can act on first.
var reasonMap = []struct {
	err          error
	loadBalancer string
	externalIP   string
}{
	{ipam.ErrInvalidRequest, ReasonInvalidRequest, ReasonExternalIPInvalidRequest},
	{ipam.ErrNoSuchPool, ReasonPoolNotFound, ReasonExternalIPPoolNotFound},
	{ipam.ErrNotInAnyPool, ReasonAddressNotInAnyPool, ReasonExternalIPNotInAnyPool},
	{ipam.ErrInUse, ReasonAddressInUse, ReasonExternalIPInUse},
	{ipam.ErrSharingRefused, ReasonSharingRefused, ReasonExternalIPSharingRefused},
	{ipam.ErrCrossNamespace, ReasonCrossNamespaceSharingNotOptedIn, ReasonCrossNamespaceSharingNotOptedIn},
	{ipam.ErrPoolExhausted, ReasonPoolExhausted, ReasonExternalIPPoolExhausted},
	{ipam.ErrFamilyUnavailable, ReasonFamilyUnavailable, ReasonExternalIPFamilyUnavailable},
	{ipam.ErrNotAllowed, ReasonPoolNotAllowed, ReasonExternalIPNotAllowed},
}

// reasonFor returns the reason for an ipam error of one kind of allocation.
func reasonFor(err error, kind ipam.Kind) string {
	for _, m := range reasonMap {
		if errors.Is(err, m.err) {
			if kind == ipam.ExternalIP {
				return m.externalIP
			}
			return m.loadBalancer
		}
	}
	if kind == ipam.ExternalIP {
		return ReasonExternalIPInvalidRequest
	}
	return ReasonInvalidRequest
}
