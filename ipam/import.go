package ipam

import (
	"errors"
	"net/netip"
	"slices"
)

// ImportResult is what Import restored.
type ImportResult struct {
	// Pool is the pool the restored allocation is counted in ("" when its
	// addresses are in no pool and the request names none).
	Pool string
	// Addresses are the addresses the owner now holds.
	Addresses []netip.Addr
	// Displaced lists the younger owners that lost an address to this import.
	// The caller should run Allocate for each of them again.
	Displaced []Displacement
}

// Displacement is an address an owner lost to an older one.
type Displacement struct {
	Owner Owner
	Kind  Kind
	Addr  netip.Addr
}

// Import restores an allocation that existed before (read from a Service's
// status, or from the external IPs it was granted), so that a restart keeps
// every address where it was. Call it for every owner before any Allocate.
//
// Import sets what the owner holds for req.Kind to addrs (at most one address
// per family; an extra one is reported and left out). It does not apply pool
// rules: an address outside every pool, outside its pool or avoided is kept,
// and reported by OutsidePool. Only req.Owner, req.Kind, req.Pool (the pool
// to count an address in no pool under) and req.Sharing are used.
//
// Owners whose terms differ only in what a newcomer must also meet (their
// backends, or the namespaces they allow: see Result.Conflict) keep an
// address together: it was theirs before. When another owner holds an
// address and the two may never share it (no common key, a port used by
// both), the older owner (Owner.Created, then UID) keeps it, whatever the
// order of the imports:
// if the importer is older, the younger holder loses the address and is listed
// in ImportResult.Displaced; if it is younger, the address is not imported and
// the error (an *InUseError or *SharingError) says who holds it. Import only
// addresses an owner was actually given: a refused claim imported as held
// could take an address from its rightful holder.
//
// Cost: O(log r + h) per address.
func (a *Allocator) Import(req Request, addrs []netip.Addr) (ImportResult, error) {
	return a.importAs("import", req, addrs, false)
}

// Adopt is Import for an allocation recorded by an authority that outranks
// this allocator's memory (an AddressClaim the API server accepted): every
// holder that could not join req.Owner now (by the strict rules of
// Allocate) loses it, whatever the owners' ages, and is listed in
// ImportResult.Displaced. Cost: as Import.
func (a *Allocator) Adopt(req Request, addrs []netip.Addr) (ImportResult, error) {
	return a.importAs("adopt", req, addrs, true)
}

func (a *Allocator) importAs(op string, req Request, addrs []netip.Addr, authoritative bool) (ImportResult, error) {
	o := req.Owner
	if err := validOwner(op, o, req.Kind); err != nil {
		return ImportResult{}, err
	}
	if req.Sharing != nil && req.Sharing.Key == "" {
		return ImportResult{}, failure(op, o, ErrInvalidRequest, "sharing requested without a sharing key")
	}
	share := newShareInfo(req.Sharing)
	k := keyOf(o, req.Kind)

	var errs []error
	var clean []netip.Addr
	for _, addr := range addrs {
		addr, err := cleanAddr(op, o, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i := slices.IndexFunc(clean, func(c netip.Addr) bool { return FamilyOf(c) == FamilyOf(addr) }); i >= 0 {
			if clean[i] != addr {
				errs = append(errs, failure(op, o, ErrInvalidRequest, "more than one %s address (%s and %s); %s is not imported", FamilyOf(addr), clean[i], addr, addr))
			}
			continue
		}
		clean = append(clean, addr)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var res ImportResult
	var next []netip.Addr
	for _, addr := range clean {
		losers, err := a.importConflicts(op, o, k, share, addr, authoritative)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, h := range losers {
			a.displace(h, addr)
			res.Displaced = append(res.Displaced, Displacement{Owner: h.owner(), Kind: h.kind, Addr: addr})
		}
		next = append(next, addr)
	}

	al := a.find(k)
	if len(next) == 0 {
		if al != nil {
			a.drop(al)
		}
		return res, errors.Join(errs...)
	}
	poolName := req.Pool
	if al != nil && poolName == "" {
		poolName = a.poolName(al)
	}
	if al == nil {
		al = a.newAllocation(o, req.Kind, poolName)
	}
	a.replace(al, o, share, next)
	a.setPool(al, poolName)
	a.attribute(al)
	a.checkOutside(al)
	res.Pool, res.Addresses = a.poolName(al), al.list()
	return res, errors.Join(errs...)
}

// importConflicts returns the holders of addr that o cannot share it with and
// that are younger than o (or all of them, when authoritative), or the
// error for the first older one.
func (a *Allocator) importConflicts(op string, o Owner, k ownerKey, share *shareInfo, addr netip.Addr, authoritative bool) ([]*allocation, error) {
	var losers []*allocation
	var err error
	a.forHolders(idOf(addr), func(h *allocation) bool {
		if h.sameService(k) {
			return true
		}
		conflict, sev := a.shareConflict(op, o, share, h, addr)
		if sev == compatible || sev == tolerated && !authoritative {
			// Owners that held the address together keep it together,
			// even where a new owner could not join them.
			return true
		}
		if !authoritative && older(h.owner(), o) {
			err = conflict
			return false
		}
		losers = append(losers, h)
		return true
	})
	if err != nil {
		return nil, err
	}
	return losers, nil
}

// displace takes addr away from h; an allocation left empty is dropped.
func (a *Allocator) displace(h *allocation, addr netip.Addr) {
	if h.n == 1 {
		a.drop(h)
		return
	}
	next := slices.DeleteFunc(h.list(), func(x netip.Addr) bool { return x == addr })
	a.replace(h, h.owner(), a.shareOf(h), next)
	a.checkOutside(h)
}
