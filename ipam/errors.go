package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrInvalidPool is wrapped by the error SetPools returns for each pool or
// range it had to leave out.
var ErrInvalidPool = errors.New("ipam: invalid pool")

// InUseError says that an address is held by another owner who cannot share it.
// errors.Is(err, ErrInUse) reports true for it.
type InUseError struct {
	// Op is the operation that failed ("allocate", "import").
	Op string
	// For is the owner the operation was for.
	For Owner
	// Addr is the address asked for.
	Addr netip.Addr
	// Holder is the owner holding Addr, and HolderKind what it holds it as.
	Holder     Owner
	HolderKind Kind
	// Reason, when set, says why the address could not be shared.
	Reason string
	// OtherNamespace reports that Holder is of another namespace than For.
	// The message then names neither the holder nor its terms, nor says
	// why they cannot share: it reads the same whether or not the sharing
	// keys matched, so a tenant learns nothing of another's Services.
	OtherNamespace bool
}

func (e *InUseError) Error() string {
	if e.OtherNamespace {
		return fmt.Sprintf("ipam: %s %s: address %s is in use by a service of another namespace", e.Op, ownerName(e.For), e.Addr)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ipam: %s %s: address %s is in use by %s", e.Op, ownerName(e.For), e.Addr, ownerName(e.Holder))
	if e.HolderKind == ExternalIP {
		b.WriteString(" (as an external IP)")
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns ErrInUse.
func (e *InUseError) Unwrap() error { return ErrInUse }

// SharingError says that an address is held by owners with the same sharing
// key, but the request cannot join them. errors.Is(err, ErrSharingRefused)
// reports true for it.
type SharingError struct {
	// Op is the operation that failed ("allocate", "import").
	Op string
	// For is the owner the operation was for.
	For Owner
	// Addr is the shared address.
	Addr netip.Addr
	// Holder is the owner the request conflicts with.
	Holder Owner
	// Reason says which sharing rule refused the request.
	Reason string
	// OtherNamespace reports that Holder is of another namespace than For:
	// the message does not name it.
	OtherNamespace bool
}

func (e *SharingError) Error() string {
	holder := ownerName(e.Holder)
	if e.OtherNamespace {
		holder = "a service of another namespace"
	}
	return fmt.Sprintf("ipam: %s %s: address %s cannot be shared with %s: %s", e.Op, ownerName(e.For), e.Addr, holder, e.Reason)
}

// Unwrap returns ErrSharingRefused.
func (e *SharingError) Unwrap() error { return ErrSharingRefused }

// NotOptedInError says that an owner keeps an address it shares with owners
// of other namespaces although they have not both allowed it (see
// Sharing.Namespaces): an address shared before namespaces had to opt in, or
// an opt-in withdrawn. errors.Is(err, ErrCrossNamespace) reports true for it.
// It names namespaces, never the other owners.
type NotOptedInError struct {
	// Op is the operation ("allocate").
	Op string
	// For is the owner that keeps the address.
	For Owner
	// Addr is the first such address.
	Addr netip.Addr
	// Missing are the other holders' namespaces that For's terms do not
	// allow, sorted; adding them to For's Sharing.Namespaces is For's part.
	Missing []string
	// Unreciprocated reports that some other holder's terms do not allow
	// For's namespace: that is the other holder's part.
	Unreciprocated bool
}

func (e *NotOptedInError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ipam: %s %s: address %s is shared with services of other namespaces that have not both allowed it", e.Op, ownerName(e.For), e.Addr)
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "; the owner does not allow namespaces %s", strings.Join(e.Missing, ", "))
	}
	if e.Unreciprocated {
		fmt.Fprintf(&b, "; not every other holder allows namespace %s", e.For.Namespace)
	}
	return b.String()
}

// Unwrap returns ErrCrossNamespace.
func (e *NotOptedInError) Unwrap() error { return ErrCrossNamespace }

// detailError is a message for users that wraps one sentinel error (kind).
type detailError struct {
	msg  string
	kind error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.kind }

// failure builds a detailError for operation op on behalf of owner.
func failure(op string, o Owner, kind error, format string, args ...any) error {
	return &detailError{msg: fmt.Sprintf("ipam: %s %s: ", op, ownerName(o)) + fmt.Sprintf(format, args...), kind: kind}
}

// poolsError combines the reasons each candidate pool refused a request. It
// wraps every reason, so errors.Is matches any of their sentinels.
type poolsError struct {
	op     string
	owner  Owner
	errs   []error
	reason []string
}

func (e *poolsError) Error() string {
	return fmt.Sprintf("ipam: %s %s: no pool can serve the request: %s", e.op, ownerName(e.owner), strings.Join(e.reason, "; "))
}

func (e *poolsError) Unwrap() []error { return e.errs }

// ownerName returns "namespace/name".
func ownerName(o Owner) string {
	if o.Namespace == "" {
		return o.Name
	}
	return o.Namespace + "/" + o.Name
}
