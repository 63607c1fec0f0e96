package poolplan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

// Resources are Herald's resources of one kind or another.
type Resources struct {
	Pools             []*v1alpha1.IPPool
	L2Advertisements  []*v1alpha1.L2Advertisement
	BGPAdvertisements []*v1alpha1.BGPAdvertisement
	BGPPeers          []*v1alpha1.BGPPeer
}

// Input is the cluster as it is and the changes to plan.
type Input struct {
	Current Resources
	// Changes replace the current objects of the same kind and name, or add to them.
	Changes    Resources
	Claims     []*v1alpha1.AddressClaim
	Services   []*corev1.Service
	Nodes      []*corev1.Node
	Namespaces []*corev1.Namespace
	// Class is the loadBalancerClass the controller serves ("" for none).
	Class string
}

// Result is what the changes would do.
type Result struct {
	// Changed lists the objects the changes touch: "IPPool a (new)", "IPPool b (changed)".
	Changed []string
	// Outside are Services that would keep an address outside its pool
	// (and were not already), one sentence each.
	Outside []string
	// Served are pending Services that would get an address, one sentence each.
	Served []string
	// StillPending are pending Services that would stay without one, with why.
	StillPending []string
	// Announcement are addresses whose announcing nodes would change.
	Announcement []string
	// Problems are what Herald would report about the new objects (its
	// conditions' messages), from the configuration model.
	Problems []string
}

// Plan computes what applying in.Changes would do. It is pure.
func Plan(in Input) Result {
	var res Result
	after := merge(in.Current, in.Changes, &res)
	before := build(in.Current, in)
	afterModel := build(after, in)
	claims := validClaims(in.Claims)

	outsideBefore := outside(before, claims, in)
	for _, o := range outside(afterModel, claims, in) {
		if !slices.Contains(outsideBefore, o) {
			res.Outside = append(res.Outside, o)
		}
	}

	pending := pendingServices(in)
	beforeCore := core(before, claims, in)
	afterCore := core(afterModel, claims, in)
	for _, svc := range pending {
		b := beforeCore.EnsureLoadBalancer(svc)
		a := afterCore.EnsureLoadBalancer(svc)
		name := svc.Namespace + "/" + svc.Name
		switch {
		case len(a.Addresses) > 0 && len(b.Addresses) == 0:
			res.Served = append(res.Served, fmt.Sprintf("Service %s would get %s from IPPool %s.", name, config.JoinAddrs(a.Addresses), a.Pool))
		case len(a.Addresses) == 0:
			res.StillPending = append(res.StillPending, fmt.Sprintf("Service %s would stay pending: %s: %s", name, a.Condition.Reason, a.Condition.Message))
		}
	}
	res.Announcement = announcementChanges(before, afterModel, claims, in.Nodes)
	res.Problems = newProblems(before, afterModel)
	return res
}

func merge(cur, ch Resources, res *Result) Resources {
	out := Resources{
		Pools:             mergeKind(cur.Pools, ch.Pools, "IPPool", res),
		L2Advertisements:  mergeKind(cur.L2Advertisements, ch.L2Advertisements, "L2Advertisement", res),
		BGPAdvertisements: mergeKind(cur.BGPAdvertisements, ch.BGPAdvertisements, "BGPAdvertisement", res),
		BGPPeers:          mergeKind(cur.BGPPeers, ch.BGPPeers, "BGPPeer", res),
	}
	return out
}

func mergeKind[T interface{ GetName() string }](cur, ch []T, kind string, res *Result) []T {
	out := slices.Clone(cur)
	for _, c := range ch {
		i := slices.IndexFunc(out, func(o T) bool { return o.GetName() == c.GetName() })
		if i < 0 {
			out = append(out, c)
			res.Changed = append(res.Changed, fmt.Sprintf("%s %s (new)", kind, c.GetName()))
			continue
		}
		out[i] = c
		res.Changed = append(res.Changed, fmt.Sprintf("%s %s (changed)", kind, c.GetName()))
	}
	return out
}

func build(r Resources, in Input) *config.Model {
	peers := make([]*v1alpha1.BGPPeer, 0, len(r.BGPPeers))
	for _, p := range r.BGPPeers {
		p = p.DeepCopy()
		p.Spec.PasswordSecretRef = nil
		peers = append(peers, p)
	}
	return config.Build(config.Snapshot{IPPools: r.Pools, L2Advertisements: r.L2Advertisements, BGPAdvertisements: r.BGPAdvertisements,
		BGPPeers: peers, Namespaces: in.Namespaces, Nodes: in.Nodes})
}

func validClaims(objs []*v1alpha1.AddressClaim) []config.Claim {
	var out []config.Claim
	for _, o := range objs {
		if c, err := config.ClaimOf(o); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// core is the controller's allocation core over model m, with the
// allocations the claims and statuses record, as the controller imports
// them at start.
func core(m *config.Model, claims []config.Claim, in Input) *controller.Core {
	c := controller.NewCore(in.Class)
	_ = c.SetModel(m)
	c.ImportClaims(claims, in.Services)
	return c
}

func outside(m *config.Model, claims []config.Claim, in Input) []string {
	c := core(m, claims, in)
	var out []string
	for _, o := range c.OutsidePool() {
		out = append(out, fmt.Sprintf("Service %s/%s would keep %s outside IPPool %s (%s): Herald never moves an address in use; it reports it on the pool (AddressesOutsidePool) until the Service releases it.", o.Owner.Namespace, o.Owner.Name, o.Addr, o.Pool, o.Reason))
	}
	return out
}

// pendingServices are the Services of type LoadBalancer without an
// address, oldest first (the order the controller serves them in).
func pendingServices(in Input) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range in.Services {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(config.LoadBalancerAddresses(s)) == 0 {
			out = append(out, s.DeepCopy())
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}

// announcementChanges compares, for every claimed address, the nodes whose
// advertisements announce its pool, before and after.
func announcementChanges(before, after *config.Model, claims []config.Claim, nodes []*corev1.Node) []string {
	var out []string
	slices.SortFunc(claims, func(a, b config.Claim) int { return a.Addr.Compare(b.Addr) })
	for _, cl := range claims {
		for _, proto := range []string{"layer 2", "BGP"} {
			b, a := selectedNodes(before, cl, nodes, proto), selectedNodes(after, cl, nodes, proto)
			if slices.Equal(a, b) {
				continue
			}
			out = append(out, fmt.Sprintf("%s (%s, IPPool %s): %s from %s, instead of %s.", cl.Addr, holdersText(cl), orNone(cl.Pool), proto, nodesText(a), nodesText(b)))
		}
	}
	return out
}

func selectedNodes(m *config.Model, cl config.Claim, nodes []*corev1.Node, proto string) []string {
	var out []string
	for _, n := range nodes {
		var ok bool
		if proto == "layer 2" {
			ok = len(m.L2AdvertisementsFor(cl.Pool, n.Labels)) > 0
		} else {
			ok = len(m.BGPAdvertisementsFor(cl.Pool, n.Labels)) > 0
		}
		if ok {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

func nodesText(n []string) string {
	if len(n) == 0 {
		return "no node"
	}
	return "nodes " + strings.Join(n, ", ")
}

func holdersText(cl config.Claim) string {
	var s []string
	for _, h := range cl.Holders {
		s = append(s, h.Namespace+"/"+h.Name)
	}
	return "Service " + strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// newProblems are the configuration problems the changes would add.
func newProblems(before, after *config.Model) []string {
	had := map[string]bool{}
	for _, op := range before.Problems() {
		for _, p := range op.Problems {
			had[fmt.Sprint(op.Object, p)] = true
		}
	}
	var out []string
	for _, op := range after.Problems() {
		for _, p := range op.Problems {
			if !had[fmt.Sprint(op.Object, p)] {
				out = append(out, fmt.Sprintf("%s %s: %s", op.Object.Kind, op.Object.Name, p.Message))
			}
		}
	}
	return out
}
