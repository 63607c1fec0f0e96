package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

// pool is one IPPool as the model keeps it.
type pool struct {
	spec    ipam.PoolSpec
	labels  map[string]string
	created time.Time
	// frozen pools keep their addresses (so Services holding them stay in a
	// pool) but serve nothing new: the IPPool is invalid or being deleted.
	frozen bool
}

// frozenSuffix ends the message of every problem that freezes a pool.
const frozenSuffix = " (the pool allocates nothing new until this is fixed)"

// buildPools validates the IPPools, resolves overlaps between them (the older
// pool, by creation time then name, keeps shared addresses) and returns the
// pools sorted by name. Its cost is O(P^2 * R log R) for P pools of R entries.
func buildPools(in []*v1alpha1.IPPool, problems problemSet) []pool {
	objs := usableObjects(in, func(p *v1alpha1.IPPool) (string, time.Time) {
		return p.Name, p.CreationTimestamp.Time
	})
	pools := make([]pool, 0, len(objs))
	for _, obj := range objs { // oldest first
		pools = append(pools, buildPool(obj, problems))
	}
	resolveOverlaps(pools, problems)
	slices.SortFunc(pools, func(a, b pool) int { return cmp.Compare(a.spec.Name, b.spec.Name) })
	return pools
}

// buildPool validates one IPPool on its own.
func buildPool(obj *v1alpha1.IPPool, problems problemSet) pool {
	ref := ObjectRef{Kind: KindIPPool, Name: obj.Name}
	invalid := func(reason, msg string) { problems.add(ref, notReady(reason, msg+frozenSuffix)) }
	spec := obj.Spec
	p := pool{
		labels:  copyLabels(obj.Labels),
		created: obj.CreationTimestamp.Time,
		frozen:  obj.DeletionTimestamp != nil,
		spec: ipam.PoolSpec{
			Name:          obj.Name,
			AutoAssign:    spec.AutoAssign == nil || *spec.AutoAssign,
			AvoidBuggyIPs: spec.AvoidBuggyIPs,
			Priority:      ipam.DefaultPriority,
		},
	}

	if len(spec.Addresses) == 0 {
		invalid(v1alpha1.ReasonInvalidAddresses, "spec.addresses is empty: list at least one CIDR or range")
	}
	type entry struct {
		r     netipx.IPRange
		index int
	}
	var entries []entry
	for i, a := range spec.Addresses {
		r, reason := parseAddressBlock(a)
		if reason != "" {
			invalid(v1alpha1.ReasonInvalidAddresses, fmt.Sprintf("spec.addresses[%d]: %s", i, reason))
			continue
		}
		entries = append(entries, entry{r, i})
	}
	// Entries of one pool must not overlap: report each entry that overlaps
	// an earlier one (in address order), and keep the union.
	slices.SortStableFunc(entries, func(a, b entry) int { return a.r.From().Compare(b.r.From()) })
	var b netipx.IPSetBuilder
	for i, e := range entries {
		for _, prev := range entries[:i] {
			if prev.r.Overlaps(e.r) {
				invalid(v1alpha1.ReasonInvalidAddresses, fmt.Sprintf("spec.addresses[%d] %s overlaps spec.addresses[%d] %s: list each address once",
					e.index, spec.Addresses[e.index], prev.index, spec.Addresses[prev.index]))
				break
			}
		}
		b.AddRange(e.r)
	}
	set, _ := b.IPSet() // the builder only ever saw valid ranges
	p.spec.Ranges = set.Ranges()

	if sa := spec.ServiceAllocation; sa != nil {
		var adm serviceAdmission
		var err error
		adm.namespaces.namespaces = sortedUnique(sa.Namespaces)
		if adm.namespaces.selector, err = selector(sa.NamespaceSelector); err != nil {
			invalid(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.serviceAllocation.namespaceSelector: %v", err))
		}
		if adm.serviceSelector, err = selector(sa.ServiceSelector); err != nil {
			invalid(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.serviceAllocation.serviceSelector: %v", err))
		}
		if !adm.namespaces.empty() || adm.serviceSelector != nil {
			p.spec.ServiceAdmission = adm
		}
		if sa.Priority != nil {
			if *sa.Priority < 0 {
				invalid(v1alpha1.ReasonInvalidField, fmt.Sprintf("spec.serviceAllocation.priority is %d: it must be 0 or more", *sa.Priority))
			}
			p.spec.Priority = *sa.Priority
		}
	}
	if ae := spec.AllowExternalIPs; ae != nil {
		var adm externalIPAdmission
		var err error
		adm.namespaces.namespaces = sortedUnique(ae.Namespaces)
		if adm.namespaces.selector, err = selector(ae.NamespaceSelector); err != nil {
			invalid(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.allowExternalIPs.namespaceSelector: %v", err))
		} else if adm.namespaces.empty() {
			invalid(v1alpha1.ReasonInvalidField, "spec.allowExternalIPs sets neither namespaces nor namespaceSelector: name the namespaces, or use namespaceSelector: {} for all")
		}
		p.spec.ExternalIPAdmission = adm
	}

	if p.frozen || problems.has(ref, v1alpha1.ConditionReady) {
		p.frozen = true
		p.spec.AutoAssign = false
		p.spec.ServiceAdmission = admitNone{}
		p.spec.ExternalIPAdmission = nil
	}
	return p
}

// maxListedRanges bounds how many ranges a message spells out.
const maxListedRanges = 4

// resolveOverlaps removes from each pool the addresses an older pool already
// has, and reports the overlap on both pools. pools are ordered oldest first.
func resolveOverlaps(pools []pool, problems problemSet) {
	for i := range pools {
		newer := &pools[i]
		var shared netipx.IPSetBuilder
		for j := range pools[:i] {
			older := &pools[j]
			both := intersect(older.spec.Ranges, newer.spec.Ranges)
			if len(both) == 0 {
				continue
			}
			desc := describeRanges(both)
			problems.add(ObjectRef{Kind: KindIPPool, Name: newer.spec.Name}, overlapping(fmt.Sprintf(
				"addresses %s are also in IPPool %q, which keeps them (the older pool wins, then the first by name); this pool does not use them until the overlap is removed",
				desc, older.spec.Name)))
			problems.add(ObjectRef{Kind: KindIPPool, Name: older.spec.Name}, overlapping(fmt.Sprintf(
				"IPPool %q also lists addresses %s of this pool; this pool keeps them and %q does not use them",
				newer.spec.Name, desc, newer.spec.Name)))
			for _, r := range both {
				shared.AddRange(r)
			}
		}
		sharedSet, _ := shared.IPSet()
		if len(sharedSet.Ranges()) == 0 {
			continue
		}
		var rest netipx.IPSetBuilder
		for _, r := range newer.spec.Ranges {
			rest.AddRange(r)
		}
		rest.RemoveSet(sharedSet)
		restSet, _ := rest.IPSet()
		newer.spec.Ranges = restSet.Ranges()
	}
}

// intersect returns the ranges in both a and b, in address order.
func intersect(a, b []netipx.IPRange) []netipx.IPRange {
	var ab, bb netipx.IPSetBuilder
	for _, r := range a {
		ab.AddRange(r)
	}
	for _, r := range b {
		bb.AddRange(r)
	}
	bs, _ := bb.IPSet()
	ab.Intersect(bs)
	s, _ := ab.IPSet()
	return s.Ranges()
}

// describeRanges spells out the first few ranges and counts the others.
func describeRanges(rs []netipx.IPRange) string {
	if len(rs) <= maxListedRanges {
		return formatRanges(rs)
	}
	return fmt.Sprintf("%s and %d more ranges", formatRanges(rs[:maxListedRanges]), len(rs)-maxListedRanges)
}

// usableObjects drops nil objects and objects without a name, keeps the
// oldest of objects that share a name (creation time, then position), and
// returns them oldest first (creation time, then name).
func usableObjects[T any](in []*T, key func(*T) (string, time.Time)) []*T {
	type item struct {
		obj     *T
		name    string
		created time.Time
	}
	items := make([]item, 0, len(in))
	for _, o := range in {
		if o == nil {
			continue
		}
		name, created := key(o)
		if name == "" {
			continue
		}
		items = append(items, item{o, name, created})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(a.created.Compare(b.created), strings.Compare(a.name, b.name))
	})
	seen := make(map[string]bool, len(items))
	out := make([]*T, 0, len(items))
	for _, it := range items {
		if seen[it.name] {
			continue
		}
		seen[it.name] = true
		out = append(out, it.obj)
	}
	return out
}

func copyLabels(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
