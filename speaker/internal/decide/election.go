package decide

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Layer-2 election is rendezvous (highest random weight) hashing: each
// (address, node) pair gets a pseudo-random Score, and the eligible node with
// the highest score announces the address. Every speaker computes the same
// answer from the same inputs without talking to the others; each node wins
// about 1/N of the addresses; and when a node leaves only the addresses it
// held move, each to the next node in its own ranking, so the load of the
// leaving node spreads over all the others.
//
// Score is a wire contract between speakers: two speakers running different
// versions during a rolling upgrade must rank nodes identically, so the hash
// below must never change (TestScoreIsStable pins it).

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Score returns the rendezvous weight of node for addr:
//
//	fmix64(FNV-1a-64(node) XOR fmix64(hi XOR fmix64(lo)))
//
// where hi and lo are the two big-endian halves of addr's 16-byte form (IPv4
// in its IPv4-mapped form; the zone is ignored) and fmix64 is MurmurHash3's
// 64-bit finaliser. The node and address keys are hashed separately so a
// caller ranking many nodes hashes the address once; the final avalanche makes
// every bit of both keys affect the high bits the ranking compares (plain
// FNV-1a over similar names such as node-1 and node-2 skews the ranking).
// Cost: O(len(node)).
func Score(addr netip.Addr, node string) uint64 {
	return score(addrKey(addr), nodeKey(node))
}

func score(addrKey, nodeKey uint64) uint64 { return fmix64(nodeKey ^ addrKey) }

func addrKey(addr netip.Addr) uint64 {
	b := addr.As16()
	return fmix64(binary.BigEndian.Uint64(b[:8]) ^ fmix64(binary.BigEndian.Uint64(b[8:])))
}

func nodeKey(node string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(node); i++ {
		h ^= uint64(node[i])
		h *= fnvPrime64
	}
	return h
}

// fmix64 is MurmurHash3's 64-bit finaliser, a bijection with full avalanche.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Outranks reports whether node a comes before node b in addr's ranking: a
// has the higher Score, or the same Score and the smaller name. It needs
// nothing but the two names, so two speakers that both answer for addr agree
// on which one keeps it even when their views of the cluster differ.
func Outranks(addr netip.Addr, a, b string) bool {
	sa, sb := Score(addr, a), Score(addr, b)
	if sa != sb {
		return sa > sb
	}
	return a < b
}

// Ranking returns candidates ordered from the node that should announce addr
// to the least preferred, without duplicates. The first node is the
// AnnouncingNode; if it goes, the second takes over, and so on. Cost:
// O(n log n) for n candidates.
func Ranking(addr netip.Addr, candidates []string) []string {
	type scored struct {
		node  string
		score uint64
	}
	ak := addrKey(addr)
	s := make([]scored, 0, len(candidates))
	for _, n := range candidates {
		s = append(s, scored{n, score(ak, nodeKey(n))})
	}
	slices.SortFunc(s, func(x, y scored) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return cmp.Compare(x.node, y.node)
	})
	s = slices.CompactFunc(s, func(x, y scored) bool { return x.node == y.node })
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.node
	}
	return out
}

// AnnouncingNode returns the node among candidates that announces addr over
// layer 2, or false when there is no candidate. It is Ranking(addr,
// candidates)[0] in O(n).
func AnnouncingNode(addr netip.Addr, candidates []string) (string, bool) {
	var best string
	var bestScore uint64
	ak := addrKey(addr)
	for i, n := range candidates {
		s := score(ak, nodeKey(n))
		if i == 0 || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best, len(candidates) > 0
}

// AnnouncingPair returns the first two nodes of addr's ranking among
// candidates: the AnnouncingNode and the node that takes addr over if it
// goes ("" each when there are too few candidates). It is Ranking(addr,
// candidates)[:2] in O(n).
func AnnouncingPair(addr netip.Addr, candidates []string) (first, second string) {
	return announcingPair(addr, candidates, nil)
}

// announcingPair is AnnouncingPair with keys[i] = nodeKey(candidates[i])
// when keys is not nil, for candidates without duplicates (a nodeSet's
// usable nodes): a caller electing many addresses among the same nodes
// hashes each name once instead of once per address, and compares names
// only on equal scores.
func announcingPair(addr netip.Addr, candidates []string, keys []uint64) (first, second string) {
	if keys == nil {
		return pairByName(addr, candidates)
	}
	ak := addrKey(addr)
	i1, i2 := -1, -1
	var s1, s2 uint64
	for i, k := range keys {
		s := score(ak, k)
		switch {
		case i1 < 0 || s > s1 || (s == s1 && candidates[i] < candidates[i1]):
			i2, s2 = i1, s1
			i1, s1 = i, s
		case i2 < 0 || s > s2 || (s == s2 && candidates[i] < candidates[i2]):
			i2, s2 = i, s
		}
	}
	if i1 >= 0 {
		first = candidates[i1]
	}
	if i2 >= 0 {
		second = candidates[i2]
	}
	return first, second
}

// pairByName is AnnouncingPair for any candidates, duplicates included.
func pairByName(addr netip.Addr, candidates []string) (first, second string) {
	var s1, s2 uint64
	n := 0 // distinct nodes held: 0, 1 or 2
	ak := addrKey(addr)
	before := func(s uint64, node string, t uint64, other string) bool {
		return s > t || (s == t && node < other)
	}
	for _, c := range candidates {
		if (n > 0 && c == first) || (n > 1 && c == second) {
			continue
		}
		s := score(ak, nodeKey(c))
		switch {
		case n == 0 || before(s, c, s1, first):
			second, s2 = first, s1
			first, s1 = c, s
			n = min(n+1, 2)
		case n == 1 || before(s, c, s2, second):
			second, s2 = c, s
			n = 2
		}
	}
	return first, second
}

// SharedCandidates returns the nodes an address shared by several Services
// is elected among, given each sharer's eligible nodes: the nodes eligible
// for the largest number of sharers, sorted. When some node is eligible for
// every sharer this is the intersection of the sets, so the announcing node
// can deliver every sharer's traffic even under externalTrafficPolicy=Local.
// When no node serves them all (say one sharer has no endpoints at all), the
// address goes to a node serving as many sharers as possible rather than to
// none, so one sharer losing its endpoints does not take the others down.
// Because the result depends only on the sharers' sets, and the election key
// is the address, every sharer elects the same node. Cost: O(total nodes in
// sets + k log k) for k distinct nodes.
func SharedCandidates(eligible ...[]string) []string {
	count := make(map[string]int)
	for _, set := range eligible {
		// A node listed twice in one set counts once for that sharer.
		seen := make(map[string]struct{}, len(set))
		for _, n := range set {
			if _, dup := seen[n]; dup {
				continue
			}
			seen[n] = struct{}{}
			count[n]++
		}
	}
	most := 0
	for _, c := range count {
		most = max(most, c)
	}
	var out []string
	for n, c := range count {
		if c == most {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
