package ipam

import "slices"

// Retag sets the sharing terms of what owner holds for kind to s, without
// allocating, releasing or moving anything, when every other holder of its
// addresses may share them under s. It is for a Service whose allocation is
// frozen (its own input is invalid) but whose sharing terms changed: held
// terms that no longer match what the Service says must not let a newcomer
// join it. When another holder would conflict with s the terms stay as they
// are (the holders keep sharing until the Service's input is fixed) and
// Retag reports false. It reports whether the terms changed. Cost O(a·h·p²)
// for a addresses with h holders of p ports each.
func (a *Allocator) Retag(owner Owner, kind Kind, s *Sharing) bool {
	if s != nil && s.Key == "" {
		return false
	}
	al := a.find(keyOf(owner, kind))
	if al == nil || al.uid != owner.UID {
		return false
	}
	next := newShareInfo(s)
	cur := a.shareOf(al)
	if sameShare(cur, next) {
		return false
	}
	for _, id := range al.ids() {
		if a.joinError("retag", owner, al.key(), next, id.addr()) != nil {
			return false
		}
	}
	for _, id := range al.ids() {
		a.indexRemove(id, al.ns, cur)
	}
	a.setShare(al, next)
	for _, id := range al.ids() {
		a.indexAdd(id, al.ns, next)
	}
	return true
}

// sameShare reports whether two sets of sharing terms are equal.
func sameShare(x, y *shareInfo) bool {
	if x == nil || y == nil {
		return x == y
	}
	return x.key == y.key && x.backend == y.backend && slices.Equal(x.ports, y.ports) && slices.Equal(x.namespaces, y.namespaces)
}
