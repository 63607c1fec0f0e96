package ipam

import (
	"errors"
	"hash/maphash"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"go4.org/netipx"
)

// Allocator keeps track of which owner holds which address, from which pool.
// It is safe for concurrent use; every method takes one mutex (read-only
// methods share it).
//
// Costs below use n for the addresses held, r for the runs of consecutive
// held addresses in one range (r <= n, usually far fewer), R for the ranges of
// all pools, P for the pools and h for the holders of one address. No
// operation depends on the size of a pool.
type Allocator struct {
	mu    sync.RWMutex
	pools *poolSet
	seed  maphash.Seed
	// owners maps the hash of each Service and Kind to what it holds;
	// collided holds the (practically never seen) owners whose hash is taken.
	owners   map[uint64]*allocation
	collided map[ownerKey]*allocation
	// held maps each held address to its first holder; extra lists further
	// holders of a shared address, in the order they joined.
	held  map[addrID]*allocation
	extra map[addrID][]*allocation
	// shares holds the sharing terms of allocations that set them.
	shares map[*allocation]*shareInfo
	// byKey lists, per sharing key of a namespace, the held addresses with a
	// holder using it; byCross, per key, those with a holder using it that
	// allows other namespaces.
	byKey   map[shareKey][]sharedAddr
	byCross map[string][]sharedAddr
	// poolNames and poolIDs number pool names; inUse counts allocations per
	// pool, including removed pools.
	poolNames []string
	poolIDs   map[string]poolID
	inUse     map[poolID]int
	// outside holds the allocations with an address outside their pool.
	outside map[*allocation]struct{}
	// peak is the most addresses held since the maps were last rebuilt: Go
	// maps never shrink, so shrinkMaps rebuilds them when half are gone.
	peak int
	// testHash, when set by a test, replaces ownerHash to force collisions.
	testHash func(ownerKey) uint64
}

// New returns an empty Allocator without pools.
func New() *Allocator {
	return &Allocator{
		pools:    &poolSet{byName: map[string]*pool{}},
		seed:     maphash.MakeSeed(),
		owners:   make(map[uint64]*allocation),
		collided: make(map[ownerKey]*allocation),
		held:     make(map[addrID]*allocation),
		extra:    make(map[addrID][]*allocation),
		shares:   make(map[*allocation]*shareInfo),
		byKey:    make(map[shareKey][]sharedAddr),
		byCross:  make(map[string][]sharedAddr),
		poolIDs:  make(map[string]poolID),
		inUse:    make(map[poolID]int),
		outside:  make(map[*allocation]struct{}),
	}
}

// SetPools replaces the pool set. It never moves or drops an allocation: an
// allocation whose addresses now lie in another pool is counted in that pool;
// one outside every pool keeps its pool name (so InUse still reports it) and,
// like any address left outside its pool, is listed by OutsidePool.
//
// Invalid pools and ranges (no name, a duplicate name, a reversed or mixed
// range, a range overlapping one of a pool that comes first by priority and
// name) are left out and reported in the returned error, which wraps
// ErrInvalidPool; the rest of the set is applied.
//
// Cost: O(R log R + n log R), plus O(n log n) when a range is new or changed
// (its used addresses are looked up again); ranges that did not change keep
// their state.
func (a *Allocator) SetPools(specs []PoolSpec) error {
	ps, err := buildPoolSet(specs)
	a.mu.Lock()
	defer a.mu.Unlock()

	type rangeID struct {
		r     netipx.IPRange
		avoid bool
	}
	previous := make(map[rangeID]*poolRange, len(a.pools.ranges))
	for _, pr := range a.pools.ranges {
		previous[rangeID{pr.r, pr.avoid}] = pr
	}
	fresh := make(map[*poolRange]bool)
	for _, pr := range ps.ranges {
		if old, ok := previous[rangeID{pr.r, pr.avoid}]; ok {
			pr.used = old.used
		} else {
			fresh[pr] = true
		}
	}
	if len(fresh) > 0 {
		for id := range a.held {
			addr := id.addr()
			if pr := ps.rangeOf(addr); pr != nil && fresh[pr] {
				pr.markUsed(addr)
			}
		}
	}
	a.pools = ps
	a.forOwners(func(al *allocation) {
		a.attribute(al)
		a.checkOutside(al)
	})
	return err
}

// attribute moves al to the pool that now contains its first address in a
// pool, if any.
func (a *Allocator) attribute(al *allocation) {
	for _, id := range al.ids() {
		if p := a.pools.poolOf(id.addr()); p != nil {
			a.setPool(al, p.spec.Name)
			return
		}
	}
}

// setPool counts al in the named pool.
func (a *Allocator) setPool(al *allocation, name string) {
	id := a.poolIDOf(name)
	if al.pool == id {
		return
	}
	a.uncount(al)
	al.pool = id
	a.inUse[id]++
}

func (a *Allocator) uncount(al *allocation) {
	a.inUse[al.pool]--
	if a.inUse[al.pool] <= 0 {
		delete(a.inUse, al.pool)
	}
}

func (a *Allocator) poolName(al *allocation) string { return a.poolNames[al.pool] }

// checkOutside records whether al has an address that is not a usable address
// of its pool.
func (a *Allocator) checkOutside(al *allocation) {
	for _, id := range al.ids() {
		if a.outsideReason(al, id.addr()) != 0 {
			a.outside[al] = struct{}{}
			return
		}
	}
	delete(a.outside, al)
}

// Allocate makes the owner's allocation of req.Kind satisfy req and returns it.
//
// When the current allocation already satisfies req nothing changes (the call
// is idempotent). When it must change, the new addresses are taken and the old
// ones released in one step, and only on success: on failure the current
// allocation is kept and the error says which rule refused the request. An
// address never moves unless the request demands it: a held address stays
// while it has a requested family, equals the requested address (if any), is
// in the named pool (if any) and can still be shared with its co-holders.
// Pool admission is checked when an address is taken, not again afterwards,
// except for a claimed external IP (Kind ExternalIP with Addresses), whose
// pool must still allow it on every call: a claim must stay authorised.
//
// Cost: O(P + R log r + s log s + h) for s addresses under the request's
// sharing key; with one pool and few ranges, O(log r).
func (a *Allocator) Allocate(req Request) (Result, error) {
	nr, err := normalize("allocate", req)
	if err != nil {
		return Result{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out, err := a.plan("allocate", &nr)
	if err != nil {
		return Result{}, err
	}
	a.commit(&nr, out)
	return out.result(nr.fams), nil
}

// DryRun returns what Allocate would do for req, without changing anything:
// the allocation it would leave in place or make, or the error. Cost: as Allocate.
func (a *Allocator) DryRun(req Request) (Result, error) {
	nr, err := normalize("allocate", req)
	if err != nil {
		return Result{}, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	out, err := a.plan("allocate", &nr)
	if err != nil {
		return Result{}, err
	}
	return out.result(nr.fams), nil
}

// Release frees what owner holds for kind; only owner's Namespace and Name
// are used. An address shared with others stays held by them. It reports
// whether the owner held anything. Cost O(log r + h) per address.
func (a *Allocator) Release(owner Owner, kind Kind) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	al := a.find(keyOf(owner, kind))
	if al == nil {
		return false
	}
	a.drop(al)
	return true
}

// drop forgets al entirely.
func (a *Allocator) drop(al *allocation) {
	for _, id := range al.ids() {
		a.removeHolder(id, al)
	}
	a.deleteOwner(al)
	a.setShare(al, nil)
	delete(a.outside, al)
	a.uncount(al)
	a.shrinkMaps()
}

// minShrink is the map size below which shrinkMaps does not bother.
const minShrink = 4096

// shrinkMaps rebuilds the owners and held maps once half of their peak
// content is gone, so memory follows what is held rather than the peak. A
// rebuild costs O(n) and happens after at least n releases: O(1) amortised.
func (a *Allocator) shrinkMaps() {
	if a.peak < minShrink || len(a.held)*2 > a.peak {
		return
	}
	owners := make(map[uint64]*allocation, len(a.owners))
	for h, al := range a.owners {
		owners[h] = al
	}
	held := make(map[addrID]*allocation, len(a.held))
	for id, al := range a.held {
		held[id] = al
	}
	a.owners, a.held, a.peak = owners, held, len(held)
}

// outcome is a planned allocation: per entry of the request's families, the
// address it gets (or none), and from which pool.
type outcome struct {
	pool     string
	addrs    [2]netip.Addr
	degraded error
	conflict error
}

func (o outcome) result(fams []Family) Result {
	r := Result{Pool: o.pool, Degraded: o.degraded, Conflict: o.conflict}
	for i := range fams {
		if o.addrs[i].IsValid() {
			r.Addresses = append(r.Addresses, o.addrs[i])
		}
	}
	return r
}

// plan decides what nr gets, without changing anything. An outcome that
// keeps an address despite a tolerated conflict reports it.
func (a *Allocator) plan(op string, nr *normRequest) (outcome, error) {
	keep, kept, conflicts := a.keepable(op, nr, a.find(nr.key))
	out, err := a.planFrom(op, nr, keep, kept)
	if err != nil {
		return out, err
	}
	for i, c := range conflicts {
		if c != nil && out.addrs[i] == keep[i] {
			out.conflict = c
			break
		}
	}
	return out, nil
}

// planFrom decides what nr gets, given the addresses it may keep.
func (a *Allocator) planFrom(op string, nr *normRequest, keep [2]netip.Addr, kept int) (outcome, error) {
	o := nr.req.Owner
	cur := a.find(nr.key)
	if kept == len(nr.fams) {
		return outcome{pool: a.poolName(cur), addrs: keep}, nil
	}
	// canDegrade: the kept addresses are an acceptable answer on their own.
	canDegrade := !nr.req.RequireAllFamilies && keep[0].IsValid() && !nr.want[1].IsValid()
	var pk *pool
	if kept > 0 {
		// Complete the current allocation from its own pool, if that pool may
		// still serve the request, before considering a move.
		first := keep[0]
		if !first.IsValid() {
			first = keep[1]
		}
		pk = a.pools.poolOf(first)
		if pk != nil && a.servable(op, nr, pk) == nil {
			out, err := a.fillPool(op, nr, pk, keep, nr.req.RequireAllFamilies)
			if err == nil {
				return out, nil
			}
			if canDegrade {
				return outcome{pool: a.poolName(cur), addrs: keep, degraded: finalize(op, o, err)}, nil
			}
		} else if canDegrade {
			return outcome{pool: a.poolName(cur), addrs: keep, degraded: failure(op, o, ErrFamilyUnavailable,
				"%s stays outside the pools that may serve this service now, so no %s address is added from its pool", first, nr.fams[1])}, nil
		}
	}
	cands, err := a.candidates(op, nr)
	if err != nil {
		return outcome{}, err
	}
	if pk != nil {
		if i := slices.Index(cands, pk); i > 0 {
			cands = slices.Insert(slices.Delete(cands, i, i+1), 0, pk)
		}
	}
	errs := make([]error, len(cands))
	for i, p := range cands {
		out, err := a.fillPool(op, nr, p, keep, true)
		if err == nil {
			return out, nil
		}
		errs[i] = err
	}
	if !nr.req.RequireAllFamilies && len(nr.fams) > 1 {
		for i, p := range cands {
			out, err := a.fillPool(op, nr, p, keep, false)
			if err == nil {
				return out, nil
			}
			errs[i] = err
		}
	}
	return outcome{}, a.combine(op, o, cands, errs)
}

// keepable returns, per requested family, the current address that may
// stay, and the tolerated conflict it stays despite (see keepError).
func (a *Allocator) keepable(op string, nr *normRequest, cur *allocation) (keep [2]netip.Addr, kept int, conflicts [2]error) {
	if cur == nil {
		return keep, 0, conflicts
	}
	for _, id := range cur.ids() {
		addr := id.addr()
		i := slices.Index(nr.fams, FamilyOf(addr))
		if i < 0 || (nr.want[i].IsValid() && nr.want[i] != addr) {
			continue
		}
		p := a.pools.poolOf(addr)
		if nr.req.Pool != "" && (p == nil || p.spec.Name != nr.req.Pool) {
			continue
		}
		if nr.req.Kind == ExternalIP && nr.want[i].IsValid() {
			if p == nil || a.eligible(op, nr, p) != nil {
				continue
			}
		}
		conflict, ok := a.keepError(op, nr.req.Owner, nr.key, nr.share, addr)
		if !ok {
			continue
		}
		keep[i], conflicts[i] = addr, conflict
		kept++
	}
	return keep, kept, conflicts
}

// candidates returns the pools that may serve nr, in the order to try them.
func (a *Allocator) candidates(op string, nr *normRequest) ([]*pool, error) {
	o := nr.req.Owner
	if nr.explicit() {
		first := nr.firstWanted()
		p := a.pools.poolOf(first)
		if p == nil {
			if nr.req.Kind == ExternalIP {
				return nil, failure(op, o, ErrNotInAnyPool, "external IP %s is not in any pool, so it cannot be claimed", first)
			}
			return nil, failure(op, o, ErrNotInAnyPool, "address %s is not in any pool", first)
		}
		for _, w := range nr.want {
			if q := a.pools.poolOf(w); w.IsValid() && q != p {
				if q == nil {
					return nil, failure(op, o, ErrNotInAnyPool, "address %s is not in any pool", w)
				}
				return nil, failure(op, o, ErrInvalidRequest, "addresses %s and %s are in different pools (%q and %q); all addresses of a service come from one pool", first, w, p.spec.Name, q.spec.Name)
			}
		}
		if nr.req.Pool != "" && nr.req.Pool != p.spec.Name {
			return nil, failure(op, o, ErrInvalidRequest, "address %s is in pool %q, not in the requested pool %q", first, p.spec.Name, nr.req.Pool)
		}
		if err := a.eligible(op, nr, p); err != nil {
			return nil, err
		}
		return []*pool{p}, nil
	}
	if nr.req.Pool != "" {
		p, ok := a.pools.byName[nr.req.Pool]
		if !ok {
			return nil, failure(op, o, ErrNoSuchPool, "pool %q does not exist", nr.req.Pool)
		}
		if err := a.eligible(op, nr, p); err != nil {
			return nil, err
		}
		return []*pool{p}, nil
	}
	var out []*pool
	for _, p := range a.pools.ordered {
		if p.spec.AutoAssign && a.eligible(op, nr, p) == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		if nr.req.Kind == ExternalIP {
			return nil, failure(op, o, ErrNotAllowed, "no pool with autoAssign allows external IPs for namespace %q", nr.req.Subject.Namespace)
		}
		return nil, failure(op, o, ErrNotAllowed, "no pool with autoAssign admits this service (namespace %q)", nr.req.Subject.Namespace)
	}
	return out, nil
}

// servable checks that p may serve nr: it admits nr, and it has autoAssign
// unless nr names a pool or an address.
func (a *Allocator) servable(op string, nr *normRequest, p *pool) error {
	if !p.spec.AutoAssign && !nr.explicit() && nr.req.Pool == "" {
		return failure(op, nr.req.Owner, ErrNotAllowed, "pool %q serves only requests that name it or one of its addresses (autoAssign is off)", p.spec.Name)
	}
	return a.eligible(op, nr, p)
}

// eligible checks that pool p admits nr's Subject for nr's Kind.
func (a *Allocator) eligible(op string, nr *normRequest, p *pool) error {
	o, subj := nr.req.Owner, nr.req.Subject
	if nr.req.Kind == ExternalIP {
		if p.spec.ExternalIPAdmission == nil {
			return failure(op, o, ErrNotAllowed, "pool %q does not allow external IPs", p.spec.Name)
		}
		if !p.spec.ExternalIPAdmission.Admits(subj) {
			return failure(op, o, ErrNotAllowed, "pool %q does not allow external IPs for namespace %q", p.spec.Name, subj.Namespace)
		}
		return nil
	}
	if p.spec.ServiceAdmission != nil && !p.spec.ServiceAdmission.Admits(subj) {
		return failure(op, o, ErrNotAllowed, "pool %q does not admit this service (namespace %q)", p.spec.Name, subj.Namespace)
	}
	return nil
}

// refusal is a reason one pool could not serve a request; finalize turns it
// into the error callers see.
type refusal struct {
	reason string
	kind   error
}

func (r *refusal) Error() string { return r.reason }
func (r *refusal) Unwrap() error { return r.kind }

func finalize(op string, o Owner, err error) error {
	if r, ok := err.(*refusal); ok {
		return failure(op, o, r.kind, "%s", r.reason)
	}
	return err
}

// combine turns the refusals of every candidate pool into one error.
func (a *Allocator) combine(op string, o Owner, cands []*pool, errs []error) error {
	if len(errs) == 1 {
		return finalize(op, o, errs[0])
	}
	pe := &poolsError{op: op, owner: o}
	for i, err := range errs {
		reason := err.Error()
		if _, ok := err.(*refusal); !ok {
			reason = "pool " + strconv.Quote(cands[i].spec.Name) + ": " + reason
		}
		pe.reason = append(pe.reason, reason)
		pe.errs = append(pe.errs, err)
	}
	return pe
}

// fillPool finds an address in pool p for each of nr's families: the kept one
// when it lies in p, the requested one, or a free (or shareable) one. With
// requireAll every family must be served; otherwise the first family and any
// requested address must be, and the other family is left out if it cannot.
func (a *Allocator) fillPool(op string, nr *normRequest, p *pool, keep [2]netip.Addr, requireAll bool) (outcome, error) {
	out := outcome{pool: p.spec.Name}
	for i, f := range nr.fams {
		if keep[i].IsValid() && a.pools.poolOf(keep[i]) == p {
			out.addrs[i] = keep[i]
			continue
		}
		var addr netip.Addr
		var err error
		if nr.want[i].IsValid() {
			addr, err = nr.want[i], a.checkWanted(op, nr, p, nr.want[i])
		} else {
			addr, err = a.pick(op, nr, p, f)
		}
		if err != nil {
			if requireAll || i == 0 || nr.want[i].IsValid() {
				return outcome{}, err
			}
			out.degraded = finalize(op, nr.req.Owner, err)
			continue
		}
		out.addrs[i] = addr
	}
	return out, nil
}

// checkWanted checks that nr may take the requested address addr from p.
func (a *Allocator) checkWanted(op string, nr *normRequest, p *pool, addr netip.Addr) error {
	pr := a.pools.rangeOf(addr)
	if pr == nil || pr.pool != p {
		return &refusal{reason: "address " + addr.String() + " is not in pool " + strconv.Quote(p.spec.Name), kind: ErrInvalidRequest}
	}
	if pr.avoid && avoided(addr) {
		return &refusal{reason: "address " + addr.String() + " ends in .0 or .255, which pool " + strconv.Quote(p.spec.Name) + " avoids (avoidBuggyIPs)", kind: ErrNotAllowed}
	}
	return a.joinError(op, nr.req.Owner, nr.key, nr.share, addr)
}

// pick chooses an address of family f in p: with a sharing key, the lowest
// held address nr can share; otherwise the lowest free one.
func (a *Allocator) pick(op string, nr *normRequest, p *pool, f Family) (netip.Addr, error) {
	if !p.hasFamily(f) {
		return netip.Addr{}, &refusal{reason: "pool " + strconv.Quote(p.spec.Name) + " has no " + f.String() + " addresses", kind: ErrFamilyUnavailable}
	}
	// unshareable is why the first address held under the sharing key in
	// the requester's namespace could not be joined. An address only
	// another namespace holds under the key is never explained: whether a
	// key matched there is not the requester's business.
	var unshareable error
	if nr.share != nil {
		for _, j := range a.sharedAddrs(nr.req.Owner.Namespace, nr.share) {
			pr := a.pools.rangeOf(j.addr)
			if pr == nil || pr.pool != p || pr.fam != f || (pr.avoid && avoided(j.addr)) {
				continue
			}
			err := a.joinError(op, nr.req.Owner, nr.key, nr.share, j.addr)
			if err == nil {
				return j.addr, nil
			}
			if unshareable == nil && j.own {
				unshareable = err
			}
		}
	}
	for _, pr := range p.ranges {
		if pr.fam != f {
			continue
		}
		if addr, ok := pr.firstFree(); ok {
			return addr, nil
		}
	}
	reason := "pool " + strconv.Quote(p.spec.Name) + " has no free " + f.String() + " address"
	if unshareable != nil {
		// The user set a sharing key and expected to share: say why that did not
		// happen, not only that the pool is full.
		reason += ", and the address shared under key " + strconv.Quote(nr.share.key) + " in its namespace cannot be shared with this service: " + sharingReason(unshareable)
	}
	return netip.Addr{}, &refusal{reason: reason, kind: ErrPoolExhausted}
}

// sharingReason returns the rule that refused joining a shared address, from the
// error joinError returned.
func sharingReason(err error) string {
	var se *SharingError
	if errors.As(err, &se) {
		return se.Reason
	}
	var ie *InUseError
	if errors.As(err, &ie) && ie.OtherNamespace {
		return "it is also held by a service of another namespace"
	}
	if errors.As(err, &ie) && ie.Reason != "" {
		return ie.Reason
	}
	return err.Error()
}

// commit applies a planned outcome: new addresses are taken, addresses no
// longer wanted released, and the owner's terms updated.
func (a *Allocator) commit(nr *normRequest, out outcome) {
	var next []netip.Addr
	for i := range nr.fams {
		if out.addrs[i].IsValid() {
			next = append(next, out.addrs[i])
		}
	}
	al := a.find(nr.key)
	if al == nil {
		al = a.newAllocation(nr.req.Owner, nr.req.Kind, out.pool)
	}
	a.replace(al, nr.req.Owner, nr.share, next)
	a.setPool(al, out.pool)
	a.checkOutside(al)
}

// newAllocation adds an empty allocation for o and kind, counted in pool.
func (a *Allocator) newAllocation(o Owner, kind Kind, pool string) *allocation {
	al := &allocation{kind: kind, pool: a.poolIDOf(pool)}
	al.setOwner(o)
	a.insertOwner(al)
	a.inUse[al.pool]++
	return al
}

// replace sets al's owner, sharing terms and addresses, updating the holder
// maps for what changed.
func (a *Allocator) replace(al *allocation, o Owner, share *shareInfo, next []netip.Addr) {
	var nextIDs [2]addrID
	for i, addr := range next {
		nextIDs[i] = idOf(addr)
	}
	newIDs := nextIDs[:len(next)]
	oldIDs := al.addrs
	old := oldIDs[:al.n]
	oldShare := a.shareOf(al)
	for _, id := range old {
		if slices.Contains(newIDs, id) {
			a.indexRemove(id, al.ns, oldShare)
		} else {
			a.removeHolder(id, al)
		}
	}
	al.setOwner(o)
	a.setShare(al, share)
	al.addrs = nextIDs
	al.n = uint8(len(newIDs))
	for _, id := range newIDs {
		if slices.Contains(old, id) {
			a.indexAdd(id, o.Namespace, share)
		} else {
			a.addHolder(id, al)
		}
	}
}
