package ipam

import (
	"net/netip"
	"slices"
	"strconv"
)

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
}

// allocation is what one owner holds for one Kind: one address per family at
// most. It references the caller's strings and copies no label maps, so it
// stays small (see the memory figures in doc.go).
type allocation struct {
	owner Owner
	addrs [2]netip.Addr
	pool  string
	share *shareInfo
	kind  Kind
	n     uint8
}

func (al *allocation) list() []netip.Addr { return al.addrs[:al.n] }

func (al *allocation) holds(addr netip.Addr) bool {
	return slices.Contains(al.list(), addr)
}

func (al *allocation) key() ownerKey { return keyOf(al.owner, al.kind) }

// sameService reports whether al belongs to the Service identified by k (of any Kind).
func (al *allocation) sameService(k ownerKey) bool {
	return al.owner.Namespace == k.ns && al.owner.Name == k.name
}

// forHolders calls fn for each holder of addr, first holder first, until fn
// returns false. Cost O(h) for h holders.
func (a *Allocator) forHolders(addr netip.Addr, fn func(*allocation) bool) {
	first, ok := a.held[addr]
	if !ok {
		return
	}
	if !fn(first) {
		return
	}
	for _, h := range a.extra[addr] {
		if !fn(h) {
			return
		}
	}
}

// addHolder records al as a holder of addr. Cost O(log n).
func (a *Allocator) addHolder(addr netip.Addr, al *allocation) {
	if _, ok := a.held[addr]; ok {
		a.extra[addr] = append(a.extra[addr], al)
	} else {
		a.held[addr] = al
		if pr := a.pools.rangeOf(addr); pr != nil {
			pr.markUsed(addr)
		}
	}
	a.indexAdd(addr, al.share)
}

// removeHolder forgets al as a holder of addr; the address becomes free when
// its last holder goes. Cost O(log n + h).
func (a *Allocator) removeHolder(addr netip.Addr, al *allocation) {
	a.indexRemove(addr, al.share)
	extra := a.extra[addr]
	if a.held[addr] == al {
		if len(extra) == 0 {
			delete(a.held, addr)
			if pr := a.pools.rangeOf(addr); pr != nil {
				pr.markFree(addr)
			}
			return
		}
		a.held[addr] = extra[0]
		extra = slices.Delete(extra, 0, 1)
	} else if i := slices.Index(extra, al); i >= 0 {
		extra = slices.Delete(extra, i, i+1)
	}
	if len(extra) == 0 {
		delete(a.extra, addr)
	} else {
		a.extra[addr] = extra
	}
}

// indexAdd and indexRemove keep byKey: for each sharing key, the addresses held
// under it and by how many holders.
func (a *Allocator) indexAdd(addr netip.Addr, s *shareInfo) {
	if s == nil {
		return
	}
	m := a.byKey[s.key]
	if m == nil {
		m = make(map[netip.Addr]int)
		a.byKey[s.key] = m
	}
	m[addr]++
}

func (a *Allocator) indexRemove(addr netip.Addr, s *shareInfo) {
	if s == nil {
		return
	}
	m := a.byKey[s.key]
	if m[addr] <= 1 {
		delete(m, addr)
		if len(m) == 0 {
			delete(a.byKey, s.key)
		}
		return
	}
	m[addr]--
}

// sharedAddrs returns the addresses held under sharing key k, in address order.
func (a *Allocator) sharedAddrs(k string) []netip.Addr {
	m := a.byKey[k]
	if len(m) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(m))
	for addr := range m {
		out = append(out, addr)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// joinError says why the requester k (with sharing terms s) cannot hold addr
// next to its current holders, or returns nil when it can. Holders belonging to
// the requester's own Service never conflict with it. Cost O(h·p²) for h
// holders with p ports each.
func (a *Allocator) joinError(op string, o Owner, k ownerKey, s *shareInfo, addr netip.Addr) error {
	var err error
	a.forHolders(addr, func(h *allocation) bool {
		if h.sameService(k) {
			return true
		}
		err = shareConflict(op, o, s, h, addr)
		return err == nil
	})
	return err
}

// shareConflict applies the sharing rules between a requester and one holder.
func shareConflict(op string, o Owner, s *shareInfo, h *allocation, addr netip.Addr) error {
	inUse := &InUseError{Op: op, For: o, Addr: addr, Holder: h.owner, HolderKind: h.kind}
	switch {
	case s == nil && h.share == nil:
		return inUse
	case s == nil:
		inUse.Reason = "the service sets no sharing key"
		return inUse
	case h.share == nil:
		inUse.Reason = "the holder sets no sharing key"
		return inUse
	case s.key != h.share.key:
		inUse.Reason = "their sharing keys differ"
		return inUse
	}
	if (s.backend != "" || h.share.backend != "") && s.backend != h.share.backend {
		return &SharingError{Op: op, For: o, Addr: addr, Holder: h.owner,
			Reason: "they do not select the same backends, which externalTrafficPolicy Local requires"}
	}
	for _, p := range s.ports {
		for _, q := range h.share.ports {
			if p == q {
				return &SharingError{Op: op, For: o, Addr: addr, Holder: h.owner,
					Reason: "both use port " + p.Protocol + "/" + formatPort(p.Port)}
			}
		}
	}
	return nil
}

func formatPort(p int32) string { return strconv.FormatInt(int64(p), 10) }

// newShareInfo copies a request's sharing terms; protocols default to TCP as
// in Kubernetes.
func newShareInfo(s *Sharing) *shareInfo {
	if s == nil {
		return nil
	}
	si := &shareInfo{key: s.Key, backend: s.BackendKey, ports: make([]PortProto, len(s.Ports))}
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
