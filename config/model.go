package config

import (
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

// Snapshot is the input of Build: Herald's custom resources and the objects
// they refer to, as listed from informers. Build only reads it; nil entries
// and objects without a name are ignored.
type Snapshot struct {
	IPPools           []*v1alpha1.IPPool
	L2Advertisements  []*v1alpha1.L2Advertisement
	BGPPeers          []*v1alpha1.BGPPeer
	BGPAdvertisements []*v1alpha1.BGPAdvertisement
	// Namespaces give the labels that pools' namespace selectors match (see
	// Model.Subject).
	Namespaces []*corev1.Namespace
	// Secrets hold BGP passwords. Only those that BGPPeers name are read.
	Secrets []*corev1.Secret
	// Nodes, when given, let Build report BGPPeers that share an address on
	// a node. Only their names and labels are read.
	Nodes []*corev1.Node
	// SecretNamespace is the namespace of a passwordSecretRef that names
	// none: the namespace Herald runs in.
	SecretNamespace string
}

// Model is Herald's validated configuration. It is immutable: every method
// returns copies, so one Model may be shared by goroutines.
type Model struct {
	pools      []pool // sorted by name
	byAddress  []poolRange
	l2         []L2Advertisement  // sorted by name
	peers      []BGPPeer          // sorted by name
	bgp        []BGPAdvertisement // sorted by name
	problems   problemSet
	namespaces map[string]map[string]string
}

// poolRange maps a range to its pool, for PoolFor.
type poolRange struct {
	r    netipx.IPRange
	pool string
}

// Build validates a snapshot and resolves the references between objects.
// Objects with problems are reported (see Problems) and left out, except
// IPPools: an invalid or deleted pool keeps its valid addresses but serves
// nothing new (no auto-assign, admits no Service), so the Services that hold
// its addresses still find them in a pool. Build is pure, deterministic and
// never panics. Its cost is dominated by pool overlap checks, O(P^2 R log R)
// for P pools of R entries, plus O(N x B) for N nodes and B BGPPeers.
func Build(s Snapshot) *Model {
	problems := problemSet{}
	m := &Model{problems: problems}
	m.pools = buildPools(s.IPPools, problems)
	m.l2 = buildL2Advertisements(s.L2Advertisements, m.pools, problems)
	m.peers = buildBGPPeers(s, problems)
	allPeerNames := make(map[string]bool, len(s.BGPPeers))
	for _, p := range s.BGPPeers {
		if p != nil {
			allPeerNames[p.Name] = true
		}
	}
	m.bgp = buildBGPAdvertisements(s.BGPAdvertisements, m.pools, m.peers, allPeerNames, problems)

	for _, p := range m.pools {
		for _, r := range p.spec.Ranges {
			m.byAddress = append(m.byAddress, poolRange{r, p.spec.Name})
		}
	}
	slices.SortFunc(m.byAddress, func(a, b poolRange) int { return a.r.From().Compare(b.r.From()) })

	m.namespaces = make(map[string]map[string]string, len(s.Namespaces))
	for _, ns := range s.Namespaces {
		if ns == nil || ns.Name == "" {
			continue
		}
		if _, dup := m.namespaces[ns.Name]; !dup {
			m.namespaces[ns.Name] = copyLabels(ns.Labels)
		}
	}
	return m
}

// Pools returns every pool, sorted by name, for the IPAM. Invalid and
// deleted pools are included with AutoAssign false and admitting no
// Service. Cost O(total ranges).
func (m *Model) Pools() []ipam.PoolSpec {
	out := make([]ipam.PoolSpec, len(m.pools))
	for i, p := range m.pools {
		out[i] = p.clone()
	}
	return out
}

// Pool returns the named pool. O(log P).
func (m *Model) Pool(name string) (ipam.PoolSpec, bool) {
	i, found := findPool(m.pools, name)
	if !found {
		return ipam.PoolSpec{}, false
	}
	return m.pools[i].clone(), true
}

// PoolServes reports whether the named pool exists and may serve new
// allocations (it is valid and not being deleted). O(log P).
func (m *Model) PoolServes(name string) bool {
	i, found := findPool(m.pools, name)
	return found && !m.pools[i].frozen
}

// PoolFor returns the name of the pool that holds addr. IPv4-mapped IPv6
// addresses count as IPv4. O(log R) over all pools' ranges.
func (m *Model) PoolFor(addr netip.Addr) (string, bool) {
	addr = addr.Unmap().WithZone("")
	i, _ := slices.BinarySearchFunc(m.byAddress, addr, func(pr poolRange, a netip.Addr) int {
		return pr.r.From().Compare(a)
	})
	// i is the first range starting after addr, or one starting at addr.
	if i < len(m.byAddress) && m.byAddress[i].r.From() == addr {
		return m.byAddress[i].pool, true
	}
	if i > 0 && m.byAddress[i-1].r.Contains(addr) {
		return m.byAddress[i-1].pool, true
	}
	return "", false
}

// L2Advertisements returns the valid L2Advertisements, sorted by name.
func (m *Model) L2Advertisements() []L2Advertisement {
	out := make([]L2Advertisement, len(m.l2))
	for i, a := range m.l2 {
		out[i] = a.clone()
	}
	return out
}

// L2AdvertisementsFor returns the L2Advertisements that announce the pool
// from a node with these labels, sorted by name. An address is announced at
// layer 2 from a node only if this is not empty. O(A) advertisements.
func (m *Model) L2AdvertisementsFor(pool string, nodeLabels map[string]string) []L2Advertisement {
	var out []L2Advertisement
	for _, a := range m.l2 {
		if _, found := slices.BinarySearch(a.Pools, pool); found && a.SelectsNode(nodeLabels) {
			out = append(out, a.clone())
		}
	}
	return out
}

// BGPPeers returns the usable BGPPeers, sorted by name.
func (m *Model) BGPPeers() []BGPPeer { return slices.Clone(m.peers) }

// BGPPeersForNode returns the BGPPeers a node with these labels opens
// sessions with, sorted by name. When several select the node with one
// address, only the older (then first by name) is returned. O(B^2) peers.
func (m *Model) BGPPeersForNode(nodeLabels map[string]string) []BGPPeer {
	var out []BGPPeer
	for _, p := range m.peers {
		if !p.SelectsNode(nodeLabels) {
			continue
		}
		if w, _ := winnerFor(m.peers, p.endpoint(), nodeLabels); w.Name == p.Name {
			out = append(out, p)
		}
	}
	return out
}

// BGPAdvertisements returns the valid BGPAdvertisements, sorted by name.
func (m *Model) BGPAdvertisements() []BGPAdvertisement {
	out := make([]BGPAdvertisement, len(m.bgp))
	for i, a := range m.bgp {
		out[i] = a.clone()
	}
	return out
}

// BGPAdvertisementsFor returns the BGPAdvertisements that advertise the pool
// from a node with these labels, sorted by name. Which of the node's peers
// each one goes to is BGPAdvertisement.AdvertisesTo. O(A) advertisements.
func (m *Model) BGPAdvertisementsFor(pool string, nodeLabels map[string]string) []BGPAdvertisement {
	var out []BGPAdvertisement
	for _, a := range m.bgp {
		if _, found := slices.BinarySearch(a.Pools, pool); found && a.SelectsNode(nodeLabels) {
			out = append(out, a.clone())
		}
	}
	return out
}

// Subject describes a Service for pool admission, with its namespace's
// labels from the snapshot (none when the namespace is not in it).
func (m *Model) Subject(namespace string, serviceLabels map[string]string) ipam.Subject {
	return ipam.Subject{
		Namespace:       namespace,
		NamespaceLabels: copyLabels(m.namespaces[namespace]),
		ServiceLabels:   copyLabels(serviceLabels),
	}
}

// Problems returns every object's problems, sorted by kind then name. Each
// object's problems are in a stable order.
func (m *Model) Problems() []ObjectProblems { return m.problems.sorted() }

// ProblemsFor returns one object's problems, or nil.
func (m *Model) ProblemsFor(ref ObjectRef) []Problem { return slices.Clone(m.problems[ref]) }

// Conditions returns the conditions the configuration decides for an object
// of one of Herald's kinds: Ready for every kind, and Overlapping for
// IPPools. With no problem, Ready is True (reason Valid) and Overlapping
// False (reason NoOverlap). Several problems of one type make one condition
// with the first problem's reason and all messages. The controller adds its
// own IPPool conditions (AddressesOutsidePool, DeletionBlocked) and sets
// LastTransitionTime, e.g. with meta.SetStatusCondition.
func (m *Model) Conditions(ref ObjectRef, generation int64) []metav1.Condition {
	return conditionsFrom(ref.Kind, m.problems[ref], generation)
}

func (p pool) clone() ipam.PoolSpec {
	s := p.spec
	s.Ranges = slices.Clone(s.Ranges)
	return s
}

// String is for debugging: the model's objects, by kind.
func (m *Model) String() string {
	var b strings.Builder
	for _, p := range m.pools {
		b.WriteString("IPPool " + p.spec.Name + ": " + formatRanges(p.spec.Ranges) + "\n")
	}
	for _, a := range m.l2 {
		b.WriteString("L2Advertisement " + a.Name + ": " + strings.Join(a.Pools, ",") + "\n")
	}
	for _, p := range m.peers {
		b.WriteString("BGPPeer " + p.Name + ": " + p.endpoint().String() + "\n")
	}
	for _, a := range m.bgp {
		b.WriteString("BGPAdvertisement " + a.Name + ": " + strings.Join(a.Pools, ",") + "\n")
	}
	return b.String()
}
