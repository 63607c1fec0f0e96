package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// BGPAdvertisement is a validated BGPAdvertisement: which pools go to which
// peers from which nodes, with which route attributes.
type BGPAdvertisement struct {
	// Name is the BGPAdvertisement's name.
	Name string
	// Pools are the names of the pools advertised, sorted. A pool whose
	// ranges the aggregation lengths would overreach is left out (and reported).
	Pools []string
	// AllPeers is true when the advertisement names no peer: it goes to every peer.
	AllPeers bool
	// Peers are the usable peers named, sorted (when AllPeers is false).
	Peers []string
	// AggregationLength and AggregationLengthV6 are the prefix lengths
	// addresses are advertised with (32 and 128: host routes).
	AggregationLength, AggregationLengthV6 int
	// LocalPref is the LOCAL_PREF attribute when HasLocalPref is true.
	LocalPref    uint32
	HasLocalPref bool
	// Communities are standard communities (RFC 1997) as 32-bit values, sorted.
	Communities []uint32
	// LargeCommunities are large communities (RFC 8092), sorted.
	LargeCommunities []LargeCommunity

	nodes nodeSelectors
}

// LargeCommunity is a BGP large community global:local1:local2.
type LargeCommunity struct {
	Global, Local1, Local2 uint32
}

// SelectsNode reports whether a node with these labels advertises for this
// BGPAdvertisement.
func (a BGPAdvertisement) SelectsNode(nodeLabels map[string]string) bool {
	return a.nodes.matches(nodeLabels)
}

// AdvertisesTo reports whether routes go to the named peer. O(log n).
func (a BGPAdvertisement) AdvertisesTo(peer string) bool {
	if a.AllPeers {
		return true
	}
	_, found := slices.BinarySearch(a.Peers, peer)
	return found
}

// Prefix returns the prefix addr is advertised as: addr itself as a host
// route, or its covering prefix of the aggregation length for its family.
func (a BGPAdvertisement) Prefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := a.AggregationLengthV6
	if addr.Is4() {
		bits = a.AggregationLength
	}
	p, err := addr.Prefix(bits)
	if err != nil { // out-of-range length: never built, but stay safe
		return netip.PrefixFrom(addr, addr.BitLen())
	}
	return p
}

func (a BGPAdvertisement) clone() BGPAdvertisement {
	a.Pools = slices.Clone(a.Pools)
	a.Peers = slices.Clone(a.Peers)
	a.Communities = slices.Clone(a.Communities)
	a.LargeCommunities = slices.Clone(a.LargeCommunities)
	return a
}

// wellKnownCommunities are the community names the API accepts, with their values.
var wellKnownCommunities = map[string]uint32{
	"graceful-shutdown":   0xFFFF0000,
	"accept-own":          0xFFFF0001,
	"llgr-stale":          0xFFFF0006,
	"no-llgr":             0xFFFF0007,
	"blackhole":           0xFFFF029A,
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
	"no-peer":             0xFFFFFF04,
}

// ParseCommunity reads a standard community: asn:value with both from 0 to
// 65535, or a well-known name such as no-export.
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[s]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return uint32(h)<<16 | uint32(l), nil
		}
	}
	return 0, fmt.Errorf("config: %q is not a community: write asn:value with both from 0 to 65535 (65000:100), or a well-known name such as no-export", s)
}

// ParseLargeCommunity reads a large community global:local1:local2, each
// part from 0 to 4294967295.
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 3 {
		var v [3]uint32
		ok := true
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				ok = false
				break
			}
			v[i] = uint32(n)
		}
		if ok {
			return LargeCommunity{v[0], v[1], v[2]}, nil
		}
	}
	return LargeCommunity{}, fmt.Errorf("config: %q is not a large community: write global:local1:local2 with each part from 0 to 4294967295 (65000:1:2)", s)
}

// buildBGPAdvertisements validates the BGPAdvertisements against the pools
// and the usable peers.
func buildBGPAdvertisements(in []*v1alpha1.BGPAdvertisement, pools []pool, peers []BGPPeer, allPeerNames map[string]bool, problems problemSet) []BGPAdvertisement {
	objs := usableObjects(in, func(a *v1alpha1.BGPAdvertisement) (string, time.Time) { return a.Name, a.CreationTimestamp.Time })
	out := make([]BGPAdvertisement, 0, len(objs))
	for _, obj := range objs {
		ref := ObjectRef{Kind: KindBGPAdvertisement, Name: obj.Name}
		bad := func(format string, args ...any) {
			problems.add(ref, notReady(v1alpha1.ReasonInvalidField, fmt.Sprintf(format, args...)))
		}
		spec := obj.Spec
		ad := BGPAdvertisement{Name: obj.Name, AggregationLength: 32, AggregationLengthV6: 128}
		if l := spec.AggregationLength; l != nil {
			if *l < 0 || *l > 32 {
				bad("spec.aggregationLength %d is out of range: use 0 to 32", *l)
			} else {
				ad.AggregationLength = int(*l)
			}
		}
		if l := spec.AggregationLengthV6; l != nil {
			if *l < 0 || *l > 128 {
				bad("spec.aggregationLengthV6 %d is out of range: use 0 to 128", *l)
			} else {
				ad.AggregationLengthV6 = int(*l)
			}
		}
		if lp := spec.LocalPref; lp != nil {
			if *lp < 0 || *lp > 1<<32-1 {
				bad("spec.localPref %d is out of range: use 0 to 4294967295", *lp)
			} else {
				ad.LocalPref, ad.HasLocalPref = uint32(*lp), true
			}
		}
		for i, c := range spec.Communities {
			v, err := ParseCommunity(c)
			if err != nil {
				bad("spec.communities[%d]: %s", i, strings.TrimPrefix(err.Error(), "config: "))
				continue
			}
			ad.Communities = append(ad.Communities, v)
		}
		slices.Sort(ad.Communities)
		ad.Communities = slices.Compact(ad.Communities)
		for i, c := range spec.LargeCommunities {
			v, err := ParseLargeCommunity(c)
			if err != nil {
				bad("spec.largeCommunities[%d]: %s", i, strings.TrimPrefix(err.Error(), "config: "))
				continue
			}
			ad.LargeCommunities = append(ad.LargeCommunities, v)
		}
		slices.SortFunc(ad.LargeCommunities, compareLarge)
		ad.LargeCommunities = slices.Compact(ad.LargeCommunities)

		var err error
		if ad.nodes, err = newNodeSelectors(spec.NodeSelectors); err != nil {
			problems.add(ref, notReady(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.%v", err)))
		}

		ad.AllPeers = len(spec.Peers) == 0
		for _, name := range sortedUnique(spec.Peers) {
			if _, usable := slices.BinarySearchFunc(peers, name, func(p BGPPeer, n string) int { return strings.Compare(p.Name, n) }); usable {
				ad.Peers = append(ad.Peers, name)
				continue
			}
			msg := fmt.Sprintf("BGPPeer %q named in spec.peers does not exist: create it or remove it from the list", name)
			if allPeerNames[name] {
				msg = fmt.Sprintf("BGPPeer %q named in spec.peers is not usable: see its Ready condition", name)
			}
			problems.add(ref, notReady(v1alpha1.ReasonPeerNotFound, msg))
		}

		for _, name := range selectPools(ref, spec.IPPools, spec.IPPoolSelector, pools, problems) {
			i, _ := findPool(pools, name)
			if msg := aggregationProblem(ad, pools[i]); msg != "" {
				problems.add(ref, notReady(v1alpha1.ReasonAggregationTooShort, msg))
				continue
			}
			ad.Pools = append(ad.Pools, name)
		}
		if excluded(ref, problems) {
			continue
		}
		out = append(out, ad)
	}
	slices.SortFunc(out, func(a, b BGPAdvertisement) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func compareLarge(a, b LargeCommunity) int {
	switch {
	case a.Global != b.Global:
		return cmp.Compare(a.Global, b.Global)
	case a.Local1 != b.Local1:
		return cmp.Compare(a.Local1, b.Local1)
	}
	return cmp.Compare(a.Local2, b.Local2)
}

// aggregationProblem checks that the aggregate prefix of every address of
// the pool stays inside the pool, so the advertisement never attracts
// traffic for addresses the pool does not hold. It returns a message for
// the first range that breaks this, or "".
func aggregationProblem(ad BGPAdvertisement, p pool) string {
	for _, r := range p.spec.Ranges {
		field, length := "aggregationLength", ad.AggregationLength
		if r.From().Is6() {
			field, length = "aggregationLengthV6", ad.AggregationLengthV6
		}
		if aligned(r, length) {
			continue
		}
		least := length + 1
		for !aligned(r, least) {
			least++
		}
		agg, _ := r.From().Prefix(length)
		return fmt.Sprintf("spec.%s %d would advertise %s, which reaches outside IPPool %q (%s); the pool is not advertised by this BGPAdvertisement until %s is at least %d",
			field, length, agg, p.spec.Name, formatRange(r), field, least)
	}
	return ""
}

// aligned reports whether r is a union of whole prefixes of the given length.
func aligned(r netipx.IPRange, length int) bool {
	if length >= r.From().BitLen() {
		return true
	}
	first, err := r.From().Prefix(length)
	if err != nil || first.Addr() != r.From() {
		return false
	}
	last, err := r.To().Prefix(length)
	if err != nil {
		return false
	}
	return netipx.PrefixLastIP(last) == r.To()
}
