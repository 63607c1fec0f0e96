package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"go4.org/netipx"
)

// Family is an IP address family.
type Family uint8

const (
	// IPv4 is the IPv4 address family.
	IPv4 Family = 4
	// IPv6 is the IPv6 address family.
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "unknown"
}

// FamilyOf returns the family of addr (IPv4-mapped IPv6 addresses count as IPv4).
func FamilyOf(addr netip.Addr) Family {
	if addr.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// Subject describes the Service that asks for an address, as far as pool
// admission rules need to know it.
type Subject struct {
	Namespace       string
	NamespaceLabels map[string]string
	ServiceLabels   map[string]string
}

// Admitter decides whether a pool may serve a Subject. The config package
// implements it from the IPPool's namespaces and label selectors.
type Admitter interface {
	Admits(Subject) bool
}

// AdmitAll admits every Subject.
type AdmitAll struct{}

// Admits reports true.
func (AdmitAll) Admits(Subject) bool { return true }

// PoolSpec is one pool's definition, built and validated by the config package.
type PoolSpec struct {
	// Name is the IPPool's name; it orders pools of equal priority.
	Name string
	// Ranges are the pool's addresses, of either family, in any order. They do
	// not overlap each other (config checks that).
	Ranges []netipx.IPRange
	// AutoAssign lets the pool serve requests that name neither a pool nor an address.
	AutoAssign bool
	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255.
	AvoidBuggyIPs bool
	// Priority orders automatic pool choice: lower values are tried first, then
	// pools are ordered by Name. Pools without a priority use DefaultPriority.
	Priority int32
	// ServiceAdmission says which Services may get load-balancer addresses from
	// the pool; nil admits every Service.
	ServiceAdmission Admitter
	// ExternalIPAdmission says which Services may claim the pool's addresses in
	// spec.externalIPs (or have one allocated there); nil admits none.
	ExternalIPAdmission Admitter
}

// DefaultPriority is the priority of a pool that sets none: after every pool that does.
const DefaultPriority int32 = 1<<31 - 1

// Kind says what an allocation is for.
type Kind uint8

const (
	// LoadBalancer is an address in status.loadBalancer.ingress.
	LoadBalancer Kind = iota + 1
	// ExternalIP is an address in spec.externalIPs (claimed or allocated).
	ExternalIP
)

// Owner identifies who holds an address. The allocator keys allocations by
// Namespace and Name (with the Kind), so a release needs only those two.
// Conflicts between owners are decided by age: the older Created wins, then
// the smaller UID.
type Owner struct {
	Namespace string
	Name      string
	UID       string
	Created   time.Time
}

// PortProto is one (protocol, port) pair a Service exposes, for IP sharing.
type PortProto struct {
	Protocol string // "TCP", "UDP" or "SCTP"
	Port     int32
}

// Sharing lets owners with the same Key share an address when their ports
// do not overlap, when both set a BackendKey (externalTrafficPolicy Local on
// both) they are of one namespace and their BackendKeys are equal, and, when
// they are of different namespaces, each one's Namespaces allows the other's.
// Keys match across namespaces only under that mutual opt-in: an owner that
// copies or guesses another tenant's key joins nothing.
type Sharing struct {
	Key   string
	Ports []PortProto
	// BackendKey names the owner's backends under externalTrafficPolicy
	// Local (a hash of its selector); "" under Cluster, where any node may
	// announce the address, so any sharer's backends do. Backends are those
	// of the owner's namespace: equal keys of two namespaces differ.
	BackendKey string
	// Namespaces lists the other namespaces whose owners may share an
	// address with this one; AllNamespaces allows every namespace.
	Namespaces []string
}

// Equal reports whether s and o are the same terms (both nil counts). The
// terms Allocator.Addresses returns are normalised, so two of them compare
// field by field.
func (s *Sharing) Equal(o *Sharing) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.Key == o.Key && s.BackendKey == o.BackendKey && slices.Equal(s.Ports, o.Ports) && slices.Equal(s.Namespaces, o.Namespaces)
}

// AllNamespaces in Sharing.Namespaces allows sharing with every namespace.
const AllNamespaces = "*"

// Request asks for addresses for one Owner and Kind.
type Request struct {
	Owner   Owner
	Subject Subject
	Kind    Kind
	// Families lists the wanted families in order of preference (one for single
	// stack, two for dual stack).
	Families []Family
	// RequireAllFamilies makes the request fail unless one address per family in
	// Families is found (RequireDualStack); otherwise the families that can be
	// served are (PreferDualStack), as long as the first one can.
	RequireAllFamilies bool
	// Pool, when set, restricts the request to the named pool.
	Pool string
	// Addresses, when set, are the exact addresses wanted (at most one per family).
	Addresses []netip.Addr
	// Sharing, when set, allows sharing an address with other owners.
	Sharing *Sharing
}

// String returns "LoadBalancer" or "ExternalIP".
func (k Kind) String() string {
	switch k {
	case LoadBalancer:
		return "LoadBalancer"
	case ExternalIP:
		return "ExternalIP"
	}
	return "unknown"
}

// Result is what a request got (or would get, for a dry run).
type Result struct {
	// Pool is the pool the allocation belongs to.
	Pool string
	// Addresses are the allocated addresses, in the order of the request's
	// Families; a family that could not be served is left out.
	Addresses []netip.Addr
	// Degraded, when set, says why a request that does not require all
	// families got fewer addresses than it asked for. It wraps a sentinel error.
	Degraded error
	// Sharing, set only by Addresses, is the sharing terms the owner holds
	// its addresses under (nil without).
	Sharing *Sharing
	// Conflict, when set, says that the owner keeps an address whose other
	// holders it could not join now on its current terms: their backends
	// differ (an edit of externalTrafficPolicy or of the selector), or
	// they are of another namespace and not both opted in (an address shared
	// before namespaces had to opt in). An address in use never moves for
	// that; the caller reports it. It wraps ErrSharingRefused, or
	// ErrCrossNamespace (a *NotOptedInError).
	Conflict error
}

// Errors returned by the allocator. Wrapped errors say which address, pool or
// owner was involved; check them with errors.Is.
var (
	ErrPoolExhausted     = errors.New("ipam: no free address left in the pool")
	ErrNotInAnyPool      = errors.New("ipam: address is not in any pool")
	ErrNotAllowed        = errors.New("ipam: pool is not allowed for this service")
	ErrInUse             = errors.New("ipam: address is in use by another owner")
	ErrNoSuchPool        = errors.New("ipam: no such pool")
	ErrFamilyUnavailable = errors.New("ipam: no pool serves the requested family")
	ErrSharingRefused    = errors.New("ipam: address cannot be shared")
	ErrCrossNamespace    = errors.New("ipam: owners of different namespaces have not both allowed sharing")
	ErrInvalidRequest    = errors.New("ipam: invalid request")
)
