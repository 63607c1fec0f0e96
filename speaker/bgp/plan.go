package bgp

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// groupKey identifies an export group: the routes one peer gets with one next
// hop and one set of attributes. The zero next hop means the session's own
// local address (GoBGP's default).
type groupKey struct {
	peer    netip.Addr
	nextHop netip.Addr
	attrs   attrsKey
}

// group is an export group with its id, which is also its tag: paths in the
// group carry the community tagCommunity(id) in GoBGP's global RIB.
type group struct {
	id      uint16
	peer    netip.Addr
	nextHop netip.Addr
	attrs   routeAttrs
}

func (g group) key() groupKey {
	return groupKey{peer: g.peer, nextHop: g.nextHop, attrs: g.attrs.key()}
}

// tagBase is the high half of the tag communities (65534:id). Tags live only
// in the speaker's own RIB: every export replaces them.
const tagBase = 0xFFFE0000

// tagCommunity returns the tag community of group id.
func tagCommunity(id uint16) uint32 { return tagBase | uint32(id) }

// maxGroups is how many export groups can exist at once.
const maxGroups = 1 << 16

// desiredRoute is one route for one peer, resolved: its next hop is known.
type desiredRoute struct {
	prefix  netip.Prefix
	nextHop netip.Addr
	attrs   routeAttrs
}

// desiredState is the resolved desired state: the sessions that can be
// configured and the routes for each.
type desiredState struct {
	sessions map[netip.Addr]sessionConfig
	routes   map[netip.Addr][]desiredRoute
}

// applied mirrors what the GoBGP server holds. The Speaker updates it after
// each successful GoBGP call, so that it stays true when Set fails halfway.
type applied struct {
	sessions     map[netip.Addr]sessionConfig
	neighborSets map[netip.Addr]bool
	groups       map[groupKey]group
	paths        map[netip.Prefix][]uint16 // tags, sorted
}

func newApplied() applied {
	return applied{
		sessions:     map[netip.Addr]sessionConfig{},
		neighborSets: map[netip.Addr]bool{},
		groups:       map[groupKey]group{},
		paths:        map[netip.Prefix][]uint16{},
	}
}

// pathSpec is a path to put in the global RIB: its prefix and tags.
type pathSpec struct {
	prefix netip.Prefix
	tags   []uint16
}

// plan is the ordered work that turns an applied state into a desired one.
// The Speaker carries it out in this order: sessions that go or need a new
// session are deleted; sessions whose BFD settings alone changed are updated
// in place; neighbour sets and groups are added; paths are put and deleted;
// new and re-created sessions are added (after their paths, so that a router
// doing graceful restart gets every route before End-of-RIB); then unused
// groups and neighbour sets are removed.
type plan struct {
	deleteSessions     []netip.Addr
	updateSessions     []sessionConfig
	addNeighborSets    []netip.Addr
	addGroups          []group
	putPaths           []pathSpec
	deletePaths        []netip.Prefix
	addSessions        []sessionConfig
	removeGroups       []group
	removeNeighborSets []netip.Addr
}

// empty reports whether the plan does nothing.
func (p plan) empty() bool {
	return len(p.deleteSessions)+len(p.updateSessions)+len(p.addNeighborSets)+len(p.addGroups)+len(p.putPaths)+
		len(p.deletePaths)+len(p.addSessions)+len(p.removeGroups)+len(p.removeNeighborSets) == 0
}

// makePlan computes the work from cur to want; bfdLive holds the peers
// whose BFD session is Up or Init now (see sessionChangeOf). New groups get
// the lowest ids
// that cur does not use, in the order of their keys, so plans are
// deterministic. It costs O(R log R) for R desired routes. If more than
// maxGroups groups would be needed, the routes of the groups beyond the limit
// are left out and reported in dropped (by peer).
func makePlan(cur applied, want desiredState, bfdLive map[netip.Addr]bool) (p plan, dropped map[netip.Addr]int) {
	p.deleteSessions, p.updateSessions, p.addSessions = planSessions(cur, want, bfdLive)
	members, needed := neededGroups(want)
	p.addGroups = assignGroupIDs(cur, needed)
	p.putPaths, p.deletePaths, dropped = planPaths(cur, members, needed, len(want.sessions))
	p.removeGroups, p.addNeighborSets, p.removeNeighborSets = planRemovals(cur, needed)
	return p, dropped
}

// planSessions returns the sessions to delete (gone, or changed so that
// they need a new session), to update in place (see sessionChangeOf) and to
// add (new, or re-created), each sorted by address.
func planSessions(cur applied, want desiredState, bfdLive map[netip.Addr]bool) (del []netip.Addr, update, add []sessionConfig) {
	for _, addr := range sortedAddrs(cur.sessions) {
		w, ok := want.sessions[addr]
		if !ok {
			del = append(del, addr)
			continue
		}
		switch sessionChangeOf(cur.sessions[addr], w, bfdLive[addr]) {
		case sessionRecreate:
			del = append(del, addr)
			add = append(add, w)
		case sessionUpdate:
			update = append(update, w)
		}
	}
	for _, addr := range sortedAddrs(want.sessions) {
		if _, ok := cur.sessions[addr]; !ok {
			add = append(add, want.sessions[addr])
		}
	}
	slices.SortFunc(add, func(a, b sessionConfig) int { return a.Address.Compare(b.Address) })
	return del, update, add
}

// sessionChange is how a session's new settings are applied to GoBGP.
type sessionChange int

const (
	// sessionSame: nothing changed.
	sessionSame sessionChange = iota
	// sessionUpdate: only the BFD settings changed, and no BFD session runs
	// that the router could see fail. GoBGP v4.9.0's UpdatePeer applies
	// them to the running neighbour: its updateNeighbor resets the BGP
	// session only for changes to the neighbour's Config, Transport,
	// AddPaths, AsPathOptions, GracefulRestart, AfiSafis, EbgpMultihop and
	// TtlSecurity (NeedsResendOpenMessage), none of which carries BFD; it
	// hands the BFD settings to updateBfdPeer.
	sessionUpdate
	// sessionRecreate: the neighbour is deleted and added again, which
	// resets the session. A setting the BGP session was opened with changed
	// (address, port, AS numbers, password, timers, multihop, source
	// address, passive mode, graceful restart; the timers even though
	// UpdatePeer takes them without a reset, because the hold time is only
	// negotiated in OPEN), or the BFD settings of a live BFD session did.
	//
	// GoBGP v4.9.0 cannot change a running BFD session (RFC 5880's Poll
	// sequence): updateBfdPeer stops it without a word and starts a new one
	// with a new discriminator, whose packets a router with the old session
	// Up ignores (FRR: "'remote discriminator' is zero, not overridden").
	// The router's BFD then expires and it resets the BGP session itself
	// (FRR: Cease/BFD Down), and GoBGP waits its idle hold time (5 s) before
	// reconnecting. In e2e/bgp's lab (FRR 8.4.4, BFD 300 ms x 3 to 400 ms x
	// 4) an in-place update took the route away for 7.0 s, a re-created
	// session for 1.8 s.
	sessionRecreate
)

// sessionChangeOf returns how the session cur becomes want; bfdLive says
// whether cur's BFD session is Up or Init in GoBGP (so the router's may be
// Up). Pure.
func sessionChangeOf(cur, want sessionConfig, bfdLive bool) sessionChange {
	if cur == want {
		return sessionSame
	}
	c, w := cur, want
	c.BFD, w.BFD = BFD{}, BFD{}
	if c != w || (cur.BFD.Enabled && bfdLive) {
		return sessionRecreate
	}
	return sessionUpdate
}

// groupMember is one desired route: its prefix and the group (peer, next
// hop, attributes) it belongs to.
type groupMember struct {
	prefix netip.Prefix
	key    groupKey
}

// neededGroups returns the desired routes of the peers that have a
// session, and the groups they need (without ids yet).
func neededGroups(want desiredState) ([]groupMember, map[groupKey]group) {
	total := 0
	for _, routes := range want.routes {
		total += len(routes)
	}
	members := make([]groupMember, 0, total)
	needed := map[groupKey]group{}
	for _, peer := range sortedAddrs(want.routes) {
		if _, ok := want.sessions[peer]; !ok {
			continue
		}
		for _, r := range want.routes[peer] {
			k := groupKey{peer: peer, nextHop: r.nextHop, attrs: r.attrs.key()}
			if _, ok := needed[k]; !ok {
				needed[k] = group{peer: peer, nextHop: r.nextHop, attrs: r.attrs.clone()}
			}
			members = append(members, groupMember{prefix: r.prefix, key: k})
		}
	}
	return members, needed
}

// assignGroupIDs gives the needed groups their ids: existing groups keep
// theirs, new ones get the lowest ids cur does not use, in the order of
// their keys. It drops from needed the new groups beyond maxGroups and
// returns the groups to add.
func assignGroupIDs(cur applied, needed map[groupKey]group) (add []group) {
	used := make(map[uint16]bool, len(cur.groups))
	for _, g := range cur.groups {
		used[g.id] = true
	}
	newKeys := make([]groupKey, 0)
	for k := range needed {
		if g, ok := cur.groups[k]; ok {
			needed[k] = g
		} else {
			newKeys = append(newKeys, k)
		}
	}
	slices.SortFunc(newKeys, compareGroupKeys)
	next := 0
	for _, k := range newKeys {
		for next < maxGroups && used[uint16(next)] {
			next++
		}
		if next >= maxGroups {
			delete(needed, k)
			continue
		}
		g := needed[k]
		g.id = uint16(next)
		used[g.id] = true
		needed[k] = g
		add = append(add, g)
	}
	return add
}

// planPaths returns the paths to put (new or with other tags: the ids of
// their groups), sorted by prefix, the paths to delete, and the routes
// left out because their group was, by peer.
func planPaths(cur applied, members []groupMember, needed map[groupKey]group, sessions int) (put []pathSpec, del []netip.Prefix, dropped map[netip.Addr]int) {
	tags := make(map[netip.Prefix][]uint16, max(len(cur.paths), len(members)/max(1, sessions)))
	for _, m := range members {
		g, ok := needed[m.key]
		if !ok {
			if dropped == nil {
				dropped = map[netip.Addr]int{}
			}
			dropped[m.key.peer]++
			continue
		}
		tags[m.prefix] = append(tags[m.prefix], g.id)
	}
	for _, prefix := range sortedPrefixes(tags) {
		t := tags[prefix]
		slices.Sort(t)
		t = slices.Compact(t)
		if !slices.Equal(cur.paths[prefix], t) {
			put = append(put, pathSpec{prefix: prefix, tags: t})
		}
	}
	for prefix := range cur.paths {
		if _, ok := tags[prefix]; !ok {
			del = append(del, prefix)
		}
	}
	slices.SortFunc(del, comparePrefixes)
	return put, del, dropped
}

// planRemovals returns the groups no longer needed, sorted by id, and the
// neighbour sets to add and remove (a peer has one while it has groups).
func planRemovals(cur applied, needed map[groupKey]group) (removeGroups []group, addSets, removeSets []netip.Addr) {
	for _, g := range cur.groups {
		if _, ok := needed[g.key()]; !ok {
			removeGroups = append(removeGroups, g)
		}
	}
	slices.SortFunc(removeGroups, func(a, b group) int { return cmp.Compare(a.id, b.id) })
	peersWithGroups := map[netip.Addr]bool{}
	for k := range needed {
		peersWithGroups[k.peer] = true
	}
	for _, addr := range sortedAddrs(peersWithGroups) {
		if !cur.neighborSets[addr] {
			addSets = append(addSets, addr)
		}
	}
	for _, addr := range sortedAddrs(cur.neighborSets) {
		if !peersWithGroups[addr] {
			removeSets = append(removeSets, addr)
		}
	}
	return removeGroups, addSets, removeSets
}

func compareGroupKeys(a, b groupKey) int {
	return cmp.Or(
		a.peer.Compare(b.peer),
		a.nextHop.Compare(b.nextHop),
		cmp.Compare(a.attrs.localPref, b.attrs.localPref),
		strings.Compare(a.attrs.communities, b.attrs.communities),
		strings.Compare(a.attrs.largeCommunities, b.attrs.largeCommunities),
	)
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	return slices.SortedFunc(maps.Keys(m), netip.Addr.Compare)
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	return slices.SortedFunc(maps.Keys(m), comparePrefixes)
}
