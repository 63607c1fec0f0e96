package decide

import (
	"net/netip"
	"slices"

	"github.com/herald-dev/herald/config"
)

// MayAnnounce reports whether, in the view of the last Compute (its
// configuration model, Nodes and Services), node may announce addr at
// layer 2: an L2Advertisement of addr's pool selects it and kube-proxy's
// rules make it eligible for the Services sharing addr (SharedCandidates),
// with every speaker taken as alive, no kube-proxy verdict, and settling
// endpoints counted as ready. Those are what a node may legitimately see
// differently for a moment (a partition, a verdict not yet gossiped, a
// takeover delay), so a node they alone rule out is still a candidate;
// labels, advertisements and endpoints are not. False before the first
// Compute. Cost: one advertisement match per Node and one eligibility per
// sharer, O(N x A + S x (N + E)).
func (c *Incremental) MayAnnounce(addr netip.Addr, node string) bool {
	if c.c == nil || c.in.Model == nil {
		return false
	}
	keys := c.sharers[addr]
	group := make([]Service, 0, len(keys))
	for _, k := range keys {
		group = append(group, c.service(k))
	}
	return mayAnnounce(c.in.Model, c.nodes, group, addr, node)
}

// mayAnnounce is MayAnnounce over explicit inputs: group are the Services
// sharing addr, sorted by key.
func mayAnnounce(model *config.Model, nodes []Node, group []Service, addr netip.Addr, node string) bool {
	pool := addressPool(addr, group)
	if pool == "" {
		return false
	}
	alive := make([]Node, len(nodes))
	for i, n := range nodes {
		alive[i] = n
		alive[i].State.SpeakerAlive = true
	}
	settled := make([]Service, len(group))
	for i, s := range group {
		settled[i] = s
		settled[i].EndpointsV4 = withoutSettling(s.EndpointsV4)
		settled[i].EndpointsV6 = withoutSettling(s.EndpointsV6)
	}
	set := newMatcher(model, alive, nil).l2Nodes(pool)
	candidates, _ := candidatesFor(addr, settled, set, Inputs{})
	return slices.Contains(candidates, node)
}

// withoutSettling returns a copy of eps with no endpoint marked Settling.
func withoutSettling(eps []Endpoint) []Endpoint {
	out := slices.Clone(eps)
	for i := range out {
		out[i].Settling = false
	}
	return out
}
