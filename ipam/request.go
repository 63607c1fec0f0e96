package ipam

import (
	"fmt"
	"net/netip"
	"slices"
)

// normRequest is a validated request.
type normRequest struct {
	req   Request
	key   ownerKey
	fams  []Family
	want  [2]netip.Addr // the requested address per entry of fams, if any
	share *shareInfo
}

func (nr *normRequest) explicit() bool {
	return nr.want[0].IsValid() || nr.want[1].IsValid()
}

// firstWanted returns the first requested address, in family order.
func (nr *normRequest) firstWanted() netip.Addr {
	if nr.want[0].IsValid() {
		return nr.want[0]
	}
	return nr.want[1]
}

func validOwner(op string, o Owner, k Kind) error {
	if o.Name == "" {
		return failure(op, o, ErrInvalidRequest, "the owner has no name")
	}
	if k != LoadBalancer && k != ExternalIP {
		return failure(op, o, ErrInvalidRequest, "unknown kind %d", k)
	}
	return nil
}

// cleanAddr unmaps IPv4-mapped IPv6 addresses and refuses invalid or zoned ones.
func cleanAddr(op string, o Owner, addr netip.Addr) (netip.Addr, error) {
	if !addr.IsValid() {
		return addr, failure(op, o, ErrInvalidRequest, "a requested address is empty or invalid")
	}
	if addr.Zone() != "" {
		return addr, failure(op, o, ErrInvalidRequest, "address %s has a zone", addr)
	}
	return addr.Unmap(), nil
}

// normalize checks req and fills in what it implies: without Families, the
// families of the requested addresses, in order.
func normalize(op string, req Request) (normRequest, error) {
	nr := normRequest{req: req, key: keyOf(req.Owner, req.Kind)}
	o := req.Owner
	if err := validOwner(op, o, req.Kind); err != nil {
		return nr, err
	}
	addrs := make([]netip.Addr, 0, len(req.Addresses))
	for _, a := range req.Addresses {
		a, err := cleanAddr(op, o, a)
		if err != nil {
			return nr, err
		}
		addrs = append(addrs, a)
	}
	fams := req.Families
	if len(fams) == 0 {
		for _, a := range addrs {
			if f := FamilyOf(a); !slices.Contains(fams, f) {
				fams = append(fams, f)
			}
		}
	}
	switch {
	case len(fams) == 0:
		return nr, failure(op, o, ErrInvalidRequest, "no address family requested")
	case len(fams) > 2:
		return nr, failure(op, o, ErrInvalidRequest, "%d address families requested, at most 2 exist", len(fams))
	}
	for i, f := range fams {
		if f != IPv4 && f != IPv6 {
			return nr, failure(op, o, ErrInvalidRequest, "unknown address family %d", f)
		}
		if i == 1 && fams[0] == f {
			return nr, failure(op, o, ErrInvalidRequest, "family %s requested twice", f)
		}
	}
	nr.fams = slices.Clone(fams)
	for _, a := range addrs {
		i := slices.Index(nr.fams, FamilyOf(a))
		if i < 0 {
			return nr, failure(op, o, ErrInvalidRequest, "address %s is %s, but the service asks for %s", a, FamilyOf(a), familyList(nr.fams))
		}
		if nr.want[i].IsValid() && nr.want[i] != a {
			return nr, failure(op, o, ErrInvalidRequest, "more than one %s address requested (%s and %s); at most one per family", FamilyOf(a), nr.want[i], a)
		}
		nr.want[i] = a
	}
	if req.Sharing != nil && req.Sharing.Key == "" {
		return nr, failure(op, o, ErrInvalidRequest, "sharing requested without a sharing key")
	}
	nr.share = newShareInfo(req.Sharing)
	return nr, nil
}

func familyList(fams []Family) string {
	if len(fams) == 1 {
		return fams[0].String() + " only"
	}
	return fmt.Sprintf("%s and %s", fams[0], fams[1])
}
