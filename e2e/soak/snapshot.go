package soak

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Snapshot is what the soak observed at one moment: the API objects (read at
// Time) and, when Wire is set, what the LAN and the router showed just after.
type Snapshot struct {
	// Time is when the API objects were read.
	Time time.Time
	// Services are the soak's Services, with their endpoints.
	Services []Service
	// Pools are every IPPool.
	Pools []Pool
	// Nodes are the lab's nodes as the soak knows them.
	Nodes []Node
	// L2Nodes are the nodes some L2Advertisement lets announce (its
	// nodeSelectors match their labels); nil when every node may. (The
	// soak's L2Advertisements select every layer-2 pool, so one set serves.)
	L2Nodes []string
	// Wire is what the client and the router saw, or nil when not observed.
	Wire *Wire
	// Claims are the AddressClaims by address, nil when claims are not in
	// use (no AddressClaim CRD, or no claim at all: a controller from before
	// claims).
	Claims map[netip.Addr]ClaimHolders
}

// ClaimHolders are the holders one AddressClaim lists, by Service UID: true
// for an external IP, false for a load-balancer address.
type ClaimHolders map[string]bool

// Service is what the checker needs of one Service and its EndpointSlices.
type Service struct {
	Namespace, Name, UID string
	// Class is spec.loadBalancerClass ("" for Herald's own Services).
	Class string
	// Local is externalTrafficPolicy Local.
	Local bool
	// SharingKey is a valid herald.dev/sharing-key annotation, or "".
	SharingKey string
	// Frozen says that one of the Service's annotations is invalid: Herald
	// then keeps what it holds, and its sharers, until the input is fixed.
	Frozen bool
	// Ports are the Service's (protocol, port) pairs.
	Ports []Port
	// Asks is the soak's count of the edits that asked for another address
	// (annotation AsksAnnotation): an address may change only when it grows.
	Asks string
	// Held are the addresses Herald gave the Service: the IPs of
	// status.loadBalancer.ingress and the accepted spec.externalIPs.
	Held []Holding
	// UnacceptedExternalIPs are spec.externalIPs that Herald did not accept:
	// no node may answer for them.
	UnacceptedExternalIPs []netip.Addr
	// Endpoints are the endpoints of all the Service's EndpointSlices.
	Endpoints []Endpoint
}

// Key returns "namespace/name".
func (s Service) Key() string { return s.Namespace + "/" + s.Name }

// Port is a Service port as sharing sees it.
type Port struct {
	Protocol string
	Port     int32
}

// Holding is one address a Service holds.
type Holding struct {
	Addr netip.Addr
	// External is true for an accepted spec.externalIPs entry, false for a
	// status.loadBalancer.ingress address.
	External bool
	// Pool is the pool the Service's grant condition names ("" if none).
	Pool string
}

// Endpoint is one endpoint of an EndpointSlice.
type Endpoint struct {
	Node                        string
	Ready, Serving, Terminating bool
}

// Pool is what the checker needs of an IPPool.
type Pool struct {
	Name string
	// Ranges are the pool's addresses (spec.addresses).
	Ranges []Range
	// AdmitsLB and AdmitsExternal say, for each namespace of the soak,
	// whether the pool serves its Services load-balancer addresses and
	// external IPs.
	AdmitsLB, AdmitsExternal map[string]bool
	// Deleting is true when the pool has a deletionTimestamp.
	Deleting bool
	// Current is true when status.observedGeneration is metadata.generation.
	Current bool
	// Outside are the addresses the AddressesOutsidePool condition lists.
	Outside []netip.Addr
	// Used4 and Used6 are status.ipv4.used and status.ipv6.used (0 when unset),
	// -1 when not a number.
	Used4, Used6 int
	// Created is the pool's creation time; Shadowed are the addresses of
	// older pools (creation time, then name), which keep the addresses they
	// share with it (see ResolveOverlaps).
	Created  time.Time
	Shadowed []Range
}

// Contains reports whether a is one of the pool's addresses: in its ranges
// and not kept by an older pool.
func (p Pool) Contains(a netip.Addr) bool {
	in := func(r Range) bool { return r.Contains(a) }
	return slices.ContainsFunc(p.Ranges, in) && !slices.ContainsFunc(p.Shadowed, in)
}

// ResolveOverlaps sets each pool's Shadowed to the ranges of the pools older
// than it, as Herald resolves overlapping pools: the older keeps the shared
// addresses.
func ResolveOverlaps(pools []Pool) {
	order := make([]int, len(pools))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Or(pools[i].Created.Compare(pools[j].Created), strings.Compare(pools[i].Name, pools[j].Name))
	})
	var older []Range
	for _, i := range order {
		pools[i].Shadowed = slices.Clone(older)
		older = append(older, pools[i].Ranges...)
	}
}

// Range is an inclusive range of addresses of one family.
type Range struct{ From, To netip.Addr }

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.From.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// Node is a node as the soak knows it.
type Node struct {
	Name string
	// Usable is true while the node's speaker runs, its LAN link is attached
	// and nothing marks it out of load balancing: the soak's own record of
	// the faults it made.
	Usable bool
	// Degraded is true while a fault impairs the node without stopping it
	// (its daemons starved of CPU): it may keep announcing or lose its
	// announcements to others, so it is neither required nor forbidden to
	// announce what it may.
	Degraded bool
	// BGPUp is when the router's session with the node became Established
	// (zero when it is not).
	BGPUp time.Time
}

// Wire is what the client and the router saw.
type Wire struct {
	// Start and End bound the observation.
	Start, End time.Time
	// L2 are the answers to the client's ARP (IPv4) or NDP (IPv6) for each
	// address asked.
	L2 map[netip.Addr]L2Answer
	// BGP is set when the router's tables were read: the nodes its selected
	// paths for each host route go through.
	BGP map[netip.Addr][]string
	// HeldAfter are the addresses Services held, or had in spec.externalIPs,
	// when the API was read again after the wire: an answer for an address
	// nobody held before may come from a Service given it while the wire was
	// observed.
	HeldAfter map[netip.Addr]bool
}

// L2Answer is who answered one ARP or NDP request.
type L2Answer struct {
	// Nodes are the answering nodes' names (a MAC of no node as the MAC), in
	// order of arrival; empty when nobody answered.
	Nodes []string
	// Err is set when the request could not be made; Nodes is then empty and
	// means nothing.
	Err string
}
