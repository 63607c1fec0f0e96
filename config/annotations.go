package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Annotations a Service may carry to steer Herald. The controller reads them
// with ParseServiceAnnotations.
const (
	// AnnotationPool names the IPPool to allocate from. Without it, Herald
	// picks among the pools that admit the Service and have autoAssign, by
	// priority then name. The pool must admit the Service's namespace and labels.
	AnnotationPool = "herald.dev/pool"

	// AnnotationAddresses requests exact addresses, comma-separated, at most
	// one per family: "198.51.100.10" or "198.51.100.10,2001:db8::10" for
	// dual stack. Each must lie in a pool that admits the Service. It takes the
	// place of spec.loadBalancerIP, which is honoured too when they agree.
	AnnotationAddresses = "herald.dev/addresses"

	// AnnotationSharingKey lets Services with the same key share an address
	// when their (protocol, port) pairs do not overlap and, with
	// externalTrafficPolicy Local, they select the same backends. Keys are
	// 1 to 63 characters of letters, digits, '-', '_' and '.', starting with a
	// letter or digit.
	AnnotationSharingKey = "herald.dev/sharing-key"

	// AnnotationSharingCrossNamespace lets a Service with a sharing key share
	// its address with Services of other namespaces: a comma-separated list
	// of namespace names, or "*" for every namespace. Tenancy is explicit:
	// two Services of different namespaces share an address only when they
	// set the same sharing key and each one's list names the other's
	// namespace (as Cilium's LB-IPAM does). Without a sharing key it has no
	// effect.
	AnnotationSharingCrossNamespace = "herald.dev/sharing-cross-namespace"

	// AnnotationAllocateExternalIP asks Herald to allocate an address and
	// write it into the Service's spec.externalIPs (for Services of any type).
	// "true" picks among the pools whose allowExternalIPs admits the Service's
	// namespace; a pool name asks for that pool; "false" or no annotation asks
	// for nothing.
	AnnotationAllocateExternalIP = "herald.dev/allocate-external-ip"
)

// ErrInvalidAnnotation is returned (wrapped, and joined when several are
// wrong) by ParseServiceAnnotations. The message names the annotation and says
// what is wrong with its value.
var ErrInvalidAnnotation = errors.New("config: invalid annotation")

// ServiceAnnotations is what a Service asks of Herald through its annotations.
type ServiceAnnotations struct {
	// Pool is the pool named by AnnotationPool, or "".
	Pool string
	// Addresses are the addresses from AnnotationAddresses, in the order
	// written, at most one per family.
	Addresses []netip.Addr
	// SharingKey is AnnotationSharingKey, or "".
	SharingKey string
	// SharingNamespaces are the namespaces of AnnotationSharingCrossNamespace,
	// sorted and unique; AllNamespaces ("*") alone allows every namespace.
	SharingNamespaces []string
	// ExternalIP is the request made by AnnotationAllocateExternalIP.
	ExternalIP ExternalIPRequest
}

// ExternalIPRequest is a request to allocate an address into spec.externalIPs.
type ExternalIPRequest struct {
	// Requested is true when the Service asks for an allocated external IP.
	Requested bool
	// Pool restricts the allocation to one pool; "" lets Herald choose.
	Pool string
}

// sharingKeyRE is the syntax of a sharing key (that of a label value, non-empty).
var sharingKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)

// ParseServiceAnnotations reads Herald's annotations from a Service's
// annotations. Other annotations are ignored. On error it returns the zero
// ServiceAnnotations and an error wrapping ErrInvalidAnnotation for each
// annotation that is wrong, in a fixed order. It is pure, and its cost is
// linear in the length of Herald's annotation values.
func ParseServiceAnnotations(annotations map[string]string) (ServiceAnnotations, error) {
	var (
		res  ServiceAnnotations
		errs []error
	)
	if v, ok := annotations[AnnotationPool]; ok {
		v = strings.TrimSpace(v)
		if err := checkPoolName(v); err != nil {
			errs = append(errs, fmt.Errorf("%w %s=%q: %v", ErrInvalidAnnotation, AnnotationPool, v, err))
		}
		res.Pool = v
	}
	if v, ok := annotations[AnnotationAddresses]; ok {
		addrs, err := parseRequestedAddresses(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w %s=%q: %w", ErrInvalidAnnotation, AnnotationAddresses, v, err))
		}
		res.Addresses = addrs
	}
	if v, ok := annotations[AnnotationSharingKey]; ok {
		v = strings.TrimSpace(v)
		if !sharingKeyRE.MatchString(v) {
			errs = append(errs, fmt.Errorf("%w %s=%q: a sharing key is 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", ErrInvalidAnnotation, AnnotationSharingKey, v))
		}
		res.SharingKey = v
	}
	if v, ok := annotations[AnnotationSharingCrossNamespace]; ok {
		nss, err := parseSharingNamespaces(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w %s=%q: %w", ErrInvalidAnnotation, AnnotationSharingCrossNamespace, v, err))
		}
		res.SharingNamespaces = nss
	}
	if v, ok := annotations[AnnotationAllocateExternalIP]; ok {
		v = strings.TrimSpace(v)
		switch v {
		case "true":
			res.ExternalIP = ExternalIPRequest{Requested: true}
		case "false":
		default:
			if err := checkPoolName(v); err != nil {
				errs = append(errs, fmt.Errorf("%w %s=%q: want \"true\", \"false\" or a pool name: %v", ErrInvalidAnnotation, AnnotationAllocateExternalIP, v, err))
			}
			res.ExternalIP = ExternalIPRequest{Requested: true, Pool: v}
		}
	}
	if len(errs) > 0 {
		return ServiceAnnotations{}, errors.Join(errs...)
	}
	return res, nil
}

// AllNamespaces, alone in AnnotationSharingCrossNamespace, allows sharing
// with Services of every namespace.
const AllNamespaces = "*"

// maxSharingNamespaces bounds the namespaces one Service may name in
// AnnotationSharingCrossNamespace, and so the work of comparing two lists.
const maxSharingNamespaces = 64

// parseSharingNamespaces reads a comma-separated list of namespace names, or
// "*" alone, into a sorted list without duplicates.
func parseSharingNamespaces(v string) ([]string, error) {
	parts := strings.SplitN(v, ",", maxSharingNamespaces+1)
	if len(parts) > maxSharingNamespaces {
		return nil, fmt.Errorf("at most %d namespaces may be listed", maxSharingNamespaces)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			return nil, errors.New("empty entry in the comma-separated list of namespaces")
		case p == AllNamespaces:
			if len(parts) > 1 {
				return nil, errors.New(`"*" (every namespace) must be the only entry`)
			}
		default:
			if msgs := validation.IsDNS1123Label(p); len(msgs) > 0 {
				return nil, fmt.Errorf("%q is not a namespace name: %s", p, strings.Join(msgs, "; "))
			}
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkPoolName checks that name can be an IPPool's name.
func checkPoolName(name string) error {
	if name == "" {
		return errors.New("the pool name is empty")
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("not a valid pool name: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// maxRequestedAddresses bounds the work done on one annotation: dual stack
// needs two addresses, so anything longer is refused before it is parsed.
const maxRequestedAddresses = 2

// parseRequestedAddresses reads a comma-separated list of at most one IPv4
// and one IPv6 address.
func parseRequestedAddresses(v string) ([]netip.Addr, error) {
	parts := strings.SplitN(v, ",", maxRequestedAddresses+1)
	if len(parts) > maxRequestedAddresses {
		return nil, fmt.Errorf("%w: at most %d addresses (one per family) are allowed", ErrInvalidAddress, maxRequestedAddresses)
	}
	addrs := make([]netip.Addr, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("%w: empty entry in the comma-separated list", ErrInvalidAddress)
		}
		a, err := parseAddr(p)
		if err != nil {
			return nil, err
		}
		if a.IsUnspecified() {
			return nil, fmt.Errorf("%w: %s is the unspecified address", ErrInvalidAddress, a)
		}
		for _, b := range addrs {
			if b.Is4() == a.Is4() {
				return nil, fmt.Errorf("%w: %s and %s are of the same family: give at most one IPv4 and one IPv6 address", ErrInvalidAddress, b, a)
			}
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}
