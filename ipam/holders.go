package ipam

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// addrID is an address as a map key: its 16-byte form, with IPv4 addresses
// mapped into IPv6 (inputs are unmapped first, so the two never collide). It
// is smaller than netip.Addr and holds no pointer.
type addrID struct {
	hi, lo uint64
}

func idOf(addr netip.Addr) addrID {
	b := addr.As16()
	return addrID{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func (id addrID) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], id.hi)
	binary.BigEndian.PutUint64(b[8:], id.lo)
	return netip.AddrFrom16(b).Unmap()
}

// ownerKey identifies an allocation: one per Service (namespace and name) and Kind.
type ownerKey struct {
	ns, name string
	kind     Kind
}

func keyOf(o Owner, k Kind) ownerKey { return ownerKey{ns: o.Namespace, name: o.Name, kind: k} }

// shareInfo is an owner's sharing terms, copied from its request.
type shareInfo struct {
	key, backend string
	ports        []PortProto
	namespaces   []string // other namespaces allowed; AllNamespaces for all
}

// allows reports whether the terms let an owner of namespace ns share.
// Cost O(m) for m namespaces listed (at most 64 from the controller).
func (s *shareInfo) allows(ns string) bool {
	return s != nil && (slices.Contains(s.namespaces, ns) || slices.Contains(s.namespaces, AllNamespaces))
}

// crossNamespace reports whether the terms allow any other namespace.
func (s *shareInfo) crossNamespace() bool { return s != nil && len(s.namespaces) > 0 }

// shareKey is a sharing key within one namespace: keys match across
// namespaces only under a mutual opt-in, which byCross indexes.
type shareKey struct {
	ns, key string
}

// poolID numbers pool names (see Allocator.poolNames), so an allocation
// stores 4 bytes instead of a string.
type poolID uint32

// noTime stands for the zero time.Time in allocation.created.
const noTime = math.MinInt64

// allocation is what one owner holds for one Kind: at most one address per
// family. It is laid out to fit a 96-byte size class: it references the
// caller's strings, copies no label maps, stores its creation time as Unix
// nanoseconds and keeps sharing terms (rare) in a side map.
type allocation struct {
	ns, name, uid string
	created       int64
	addrs         [2]addrID
	pool          poolID
	kind          Kind
	n             uint8
	shared        bool // Allocator.shares holds the sharing terms
}

func (al *allocation) ids() []addrID { return al.addrs[:al.n] }

// list returns the held addresses, in the order of the request's families.
func (al *allocation) list() []netip.Addr {
	out := make([]netip.Addr, al.n)
	for i, id := range al.ids() {
		out[i] = id.addr()
	}
	return out
}

func (al *allocation) key() ownerKey { return ownerKey{ns: al.ns, name: al.name, kind: al.kind} }

func (al *allocation) setOwner(o Owner) {
	al.ns, al.name, al.uid = o.Namespace, o.Name, o.UID
	al.created = noTime
	if !o.Created.IsZero() {
		al.created = o.Created.UnixNano()
	}
}

// owner returns the owner; Created comes back in UTC.
func (al *allocation) owner() Owner {
	o := Owner{Namespace: al.ns, Name: al.name, UID: al.uid}
	if al.created != noTime {
		o.Created = time.Unix(0, al.created).UTC()
	}
	return o
}

// sameService reports whether al belongs to the Service identified by k (of any Kind).
func (al *allocation) sameService(k ownerKey) bool { return al.ns == k.ns && al.name == k.name }

// ownerHash hashes an owner key for the owners map.
func (a *Allocator) ownerHash(k ownerKey) uint64 {
	if a.testHash != nil {
		return a.testHash(k)
	}
	return maphash.String(a.seed, k.ns) ^ maphash.String(a.seed, k.name)*0x9e3779b97f4a7c15 ^ uint64(k.kind)
}

// find returns the allocation of k, or nil. Cost O(1).
func (a *Allocator) find(k ownerKey) *allocation {
	if al := a.owners[a.ownerHash(k)]; al != nil && al.key() == k {
		return al
	}
	if len(a.collided) == 0 {
		return nil
	}
	return a.collided[k]
}

// insertOwner adds al to the owners index; the rare owner whose hash is taken
// goes to the collided map.
func (a *Allocator) insertOwner(al *allocation) {
	h := a.ownerHash(al.key())
	if _, taken := a.owners[h]; taken {
		a.collided[al.key()] = al
		return
	}
	a.owners[h] = al
}

func (a *Allocator) deleteOwner(al *allocation) {
	h := a.ownerHash(al.key())
	if a.owners[h] != al {
		delete(a.collided, al.key())
		return
	}
	delete(a.owners, h)
	for k, c := range a.collided {
		if a.ownerHash(k) == h {
			a.owners[h] = c
			delete(a.collided, k)
			return
		}
	}
}

// forOwners calls fn for every allocation.
func (a *Allocator) forOwners(fn func(*allocation)) {
	for _, al := range a.owners {
		fn(al)
	}
	for _, al := range a.collided {
		fn(al)
	}
}

// poolIDOf returns the number of a pool name, assigning one if needed. Names
// are never forgotten; there are as many as pools ever configured.
func (a *Allocator) poolIDOf(name string) poolID {
	if id, ok := a.poolIDs[name]; ok {
		return id
	}
	id := poolID(len(a.poolNames))
	a.poolNames = append(a.poolNames, name)
	a.poolIDs[name] = id
	return id
}

func (a *Allocator) shareOf(al *allocation) *shareInfo {
	if !al.shared {
		return nil
	}
	return a.shares[al]
}

func (a *Allocator) setShare(al *allocation, s *shareInfo) {
	al.shared = s != nil
	if s == nil {
		delete(a.shares, al)
	} else {
		a.shares[al] = s
	}
}

// forHolders calls fn for each holder of id, first holder first, until fn
// returns false. Cost O(h) for h holders.
func (a *Allocator) forHolders(id addrID, fn func(*allocation) bool) {
	first, ok := a.held[id]
	if !ok {
		return
	}
	if !fn(first) {
		return
	}
	for _, h := range a.extra[id] {
		if !fn(h) {
			return
		}
	}
}

// addHolder records al as a holder of id. Cost O(log r).
func (a *Allocator) addHolder(id addrID, al *allocation) {
	if _, ok := a.held[id]; ok {
		a.extra[id] = append(a.extra[id], al)
	} else {
		a.held[id] = al
		a.peak = max(a.peak, len(a.held))
		addr := id.addr()
		if pr := a.pools.rangeOf(addr); pr != nil {
			pr.markUsed(addr)
		}
	}
	a.indexAdd(id, al.ns, a.shareOf(al))
}

// removeHolder forgets al as a holder of id; the address becomes free when
// its last holder goes. Cost O(log r + h).
func (a *Allocator) removeHolder(id addrID, al *allocation) {
	a.indexRemove(id, al.ns, a.shareOf(al))
	extra := a.extra[id]
	if a.held[id] == al {
		if len(extra) == 0 {
			delete(a.held, id)
			addr := id.addr()
			if pr := a.pools.rangeOf(addr); pr != nil {
				pr.markFree(addr)
			}
			return
		}
		a.held[id] = extra[0]
		extra = slices.Delete(extra, 0, 1)
	} else if i := slices.Index(extra, al); i >= 0 {
		extra = slices.Delete(extra, i, i+1)
	}
	if len(extra) == 0 {
		delete(a.extra, id)
	} else {
		a.extra[id] = extra
	}
}

// sharedAddr is one address held under a sharing key, and by how many holders.
type sharedAddr struct {
	id      addrID
	holders int
}

// indexAdd and indexRemove keep byKey: for each sharing key of a namespace,
// the addresses held under it; and byCross: for each key, the addresses held
// under it by an owner that allows other namespaces. A key has few addresses
// (one per family, a few more when ports collide), so a slice beats a map.
// Cost O(s) for s addresses under the key.
func (a *Allocator) indexAdd(id addrID, ns string, s *shareInfo) {
	if s == nil {
		return
	}
	k := shareKey{ns: ns, key: s.key}
	a.byKey[k] = addShared(a.byKey[k], id)
	if s.crossNamespace() {
		a.byCross[s.key] = addShared(a.byCross[s.key], id)
	}
}

func (a *Allocator) indexRemove(id addrID, ns string, s *shareInfo) {
	if s == nil {
		return
	}
	k := shareKey{ns: ns, key: s.key}
	if list := removeShared(a.byKey[k], id); len(list) == 0 {
		delete(a.byKey, k)
	} else {
		a.byKey[k] = list
	}
	if s.crossNamespace() {
		if list := removeShared(a.byCross[s.key], id); len(list) == 0 {
			delete(a.byCross, s.key)
		} else {
			a.byCross[s.key] = list
		}
	}
}

// addShared counts one more holder of id in list.
func addShared(list []sharedAddr, id addrID) []sharedAddr {
	for i := range list {
		if list[i].id == id {
			list[i].holders++
			return list
		}
	}
	return append(list, sharedAddr{id: id, holders: 1})
}

// removeShared counts one holder of id less in list.
func removeShared(list []sharedAddr, id addrID) []sharedAddr {
	i := slices.IndexFunc(list, func(x sharedAddr) bool { return x.id == id })
	switch {
	case i < 0:
		return list
	case list[i].holders > 1:
		list[i].holders--
		return list
	}
	return slices.Delete(list, i, i+1)
}

// joinable is an address an owner might join under its sharing key; own
// reports that an owner of its namespace holds it under the key.
type joinable struct {
	addr netip.Addr
	own  bool
}

// sharedAddrs returns the addresses that owners of namespace ns with terms s
// might join, in address order: those held under s's key in ns and, when s
// allows other namespaces, those held under the key by owners that allow
// other namespaces too.
func (a *Allocator) sharedAddrs(ns string, s *shareInfo) []joinable {
	own := a.byKey[shareKey{ns: ns, key: s.key}]
	var cross []sharedAddr
	if s.crossNamespace() {
		cross = a.byCross[s.key]
	}
	if len(own)+len(cross) == 0 {
		return nil
	}
	out := make([]joinable, 0, len(own)+len(cross))
	for _, x := range own {
		out = append(out, joinable{addr: x.id.addr(), own: true})
	}
	for _, x := range cross {
		if !slices.ContainsFunc(own, func(y sharedAddr) bool { return y.id == x.id }) {
			out = append(out, joinable{addr: x.id.addr()})
		}
	}
	slices.SortFunc(out, func(x, y joinable) int { return x.addr.Compare(y.addr) })
	return out
}

// severity says whether two owners may hold one address together.
type severity uint8

const (
	// compatible owners may share the address.
	compatible severity = iota
	// tolerated owners may not come together (their backends differ, or
	// they are of different namespaces that have not both opted in), but
	// owners that already hold the address together keep it: an edit of
	// another field, or an upgrade, never moves an address in use.
	tolerated
	// exclusive owners may never hold it together: they have no common
	// sharing key, or a (protocol, port) pair is used by both.
	exclusive
)

// joinError says why the requester k (with sharing terms s) cannot join addr's
// current holders, or returns nil when it can. Holders belonging to the
// requester's own Service never conflict with it. Cost O(h·(p²+m)) for h
// holders with p ports and m namespaces each.
func (a *Allocator) joinError(op string, o Owner, k ownerKey, s *shareInfo, addr netip.Addr) error {
	var err error
	a.forHolders(idOf(addr), func(h *allocation) bool {
		if h.sameService(k) {
			return true
		}
		err, _ = a.shareConflict(op, o, s, h, addr)
		return err == nil
	})
	return err
}

// keepError says whether the requester k may keep addr, which it holds, on
// its terms s. It returns ok false when a holder is exclusive with it (the
// requester asked for another key or port: the address must change), and
// otherwise the conflict to report for the tolerated holders, or nil. Cost:
// as joinError.
func (a *Allocator) keepError(op string, o Owner, k ownerKey, s *shareInfo, addr netip.Addr) (conflict error, ok bool) {
	var optIn *NotOptedInError
	var backends error
	ok = true
	a.forHolders(idOf(addr), func(h *allocation) bool {
		if h.sameService(k) {
			return true
		}
		err, sev := a.shareConflict(op, o, s, h, addr)
		switch {
		case sev == exclusive:
			ok = false
			return false
		case sev == compatible:
			return true
		case h.ns != o.Namespace && !(s.allows(h.ns) && a.shareOf(h).allows(o.Namespace)):
			if optIn == nil {
				optIn = &NotOptedInError{Op: op, For: o, Addr: addr}
			}
			if !s.allows(h.ns) && !slices.Contains(optIn.Missing, h.ns) {
				optIn.Missing = append(optIn.Missing, h.ns)
			}
			optIn.Unreciprocated = optIn.Unreciprocated || !a.shareOf(h).allows(o.Namespace)
		case backends == nil && h.ns != o.Namespace:
			backends = &SharingError{Op: op, For: o, Addr: addr, Holder: h.owner(), OtherNamespace: true,
				Reason: "both use externalTrafficPolicy Local, and Services of different namespaces never select the same backends"}
		case backends == nil:
			backends = err
		}
		return true
	})
	switch {
	case !ok:
		return nil, false
	case optIn != nil:
		slices.Sort(optIn.Missing)
		return optIn, true
	}
	return backends, true
}

// shareConflict applies the sharing rules between a requester o (terms s)
// and one holder h. Between namespaces the error is always the same
// *InUseError that names nobody, whatever the reason: it must not tell a
// tenant whether its key matched another tenant's, nor anything of the
// holder. Cost O(p² + m).
func (a *Allocator) shareConflict(op string, o Owner, s *shareInfo, h *allocation, addr netip.Addr) (error, severity) {
	hs := a.shareOf(h)
	cross := h.ns != o.Namespace
	inUse := &InUseError{Op: op, For: o, Addr: addr, Holder: h.owner(), HolderKind: h.kind, OtherNamespace: cross}
	switch {
	case s == nil && hs == nil:
		return inUse, exclusive
	case s == nil:
		inUse.Reason = "the service sets no sharing key"
		return inUse, exclusive
	case hs == nil:
		inUse.Reason = "the holder sets no sharing key"
		return inUse, exclusive
	case s.key != hs.key:
		inUse.Reason = "their sharing keys differ"
		return inUse, exclusive
	}
	for _, p := range s.ports {
		for _, q := range hs.ports {
			if p == q {
				if cross {
					return inUse, exclusive
				}
				return &SharingError{Op: op, For: o, Addr: addr, Holder: h.owner(),
					Reason: "both use port " + p.Protocol + "/" + strconv.FormatInt(int64(p.Port), 10)}, exclusive
			}
		}
	}
	switch {
	case cross && !(s.allows(h.ns) && hs.allows(o.Namespace)):
		return inUse, tolerated
	case s.backend != "" && hs.backend != "" && (cross || s.backend != hs.backend):
		// Both are Local: the announcing node must run both Services'
		// backends. One Cluster sharer fits any node, so it never conflicts.
		if cross {
			return inUse, tolerated
		}
		return &SharingError{Op: op, For: o, Addr: addr, Holder: h.owner(),
			Reason: "they do not select the same backends, which externalTrafficPolicy Local requires"}, tolerated
	}
	return nil, compatible
}

// newShareInfo copies a request's sharing terms; protocols default to TCP as
// in Kubernetes.
func newShareInfo(s *Sharing) *shareInfo {
	if s == nil {
		return nil
	}
	si := &shareInfo{key: s.Key, backend: s.BackendKey, ports: make([]PortProto, len(s.Ports)), namespaces: slices.Clone(s.Namespaces)}
	for i, p := range s.Ports {
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		si.ports[i] = p
	}
	return si
}

// older reports whether o is older than p: created earlier, then the smaller
// UID, then namespace and name, so every pair of owners has one winner.
func older(o, p Owner) bool {
	if !o.Created.Equal(p.Created) {
		return o.Created.Before(p.Created)
	}
	if o.UID != p.UID {
		return o.UID < p.UID
	}
	if o.Namespace != p.Namespace {
		return o.Namespace < p.Namespace
	}
	return o.Name < p.Name
}
