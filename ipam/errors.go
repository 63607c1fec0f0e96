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
}

func (e *InUseError) Error() string {
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
}

func (e *SharingError) Error() string {
	return fmt.Sprintf("ipam: %s %s: address %s cannot be shared with %s: %s", e.Op, ownerName(e.For), e.Addr, ownerName(e.Holder), e.Reason)
}

// Unwrap returns ErrSharingRefused.
func (e *SharingError) Unwrap() error { return ErrSharingRefused }

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
