package soak

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// Observer reads what a user and the network see of the lab: the API
// objects and the wire. It never reads a component's logs or metrics.
type Observer struct {
	Lab *productlab.Lab
	// Namespaces are the namespaces whose Services are observed; nil: every
	// namespace.
	Namespaces []string
	// Selector selects the Services observed (a label selector; "" for all).
	Selector string
	// Parallel bounds the ARP and NDP requests in flight (default 8).
	Parallel int
}

// API reads the Services, their EndpointSlices and the pools.
func (o *Observer) API(ctx context.Context) (Snapshot, error) {
	s := Snapshot{Time: time.Now()}
	kube := o.Lab.Kube
	nsLabels := map[string]labels.Set{}
	namespaces := o.Namespaces
	if namespaces == nil {
		list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return s, fmt.Errorf("soak: list namespaces: %w", err)
		}
		for _, n := range list.Items {
			namespaces = append(namespaces, n.Name)
		}
	}
	for _, ns := range namespaces {
		n, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return s, fmt.Errorf("soak: get namespace %s: %w", ns, err)
		}
		nsLabels[ns] = n.Labels
		svcs, err := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
		if err != nil {
			return s, fmt.Errorf("soak: list services in %s: %w", ns, err)
		}
		slices, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return s, fmt.Errorf("soak: list endpointslices in %s: %w", ns, err)
		}
		eps := map[string][]Endpoint{}
		for _, sl := range slices.Items {
			name := sl.Labels[discoveryv1.LabelServiceName]
			eps[name] = append(eps[name], endpointsOf(sl)...)
		}
		for i := range svcs.Items {
			svc := ServiceOf(&svcs.Items[i])
			svc.Endpoints = eps[svc.Name]
			s.Services = append(s.Services, svc)
		}
	}
	pools, err := o.Lab.Herald.HeraldV1alpha1().IPPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("soak: list ippools: %w", err)
	}
	for i := range pools.Items {
		s.Pools = append(s.Pools, PoolOf(&pools.Items[i], nsLabels))
	}
	ResolveOverlaps(s.Pools)
	if s.L2Nodes, err = o.l2Nodes(ctx); err != nil {
		return s, err
	}
	s.Claims = o.claims(ctx)
	return s, nil
}

// l2Nodes returns the nodes an L2Advertisement lets announce, nil for all.
func (o *Observer) l2Nodes(ctx context.Context) ([]string, error) {
	ads, err := o.Lab.Herald.HeraldV1alpha1().L2Advertisements().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("soak: list l2advertisements: %w", err)
	}
	nodes, err := o.Lab.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("soak: list nodes: %w", err)
	}
	var ls []labels.Set
	var names []string
	for _, n := range nodes.Items {
		ls = append(ls, n.Labels)
		names = append(names, n.Name)
	}
	return AdvertisedNodes(ads.Items, names, ls), nil
}

// AdvertisedNodes returns the nodes (names, with labels ls) that some of ads
// lets announce, in name order; nil when every node may.
func AdvertisedNodes(ads []v1alpha1.L2Advertisement, names []string, ls []labels.Set) []string {
	out := []string{}
	for i, name := range names {
		for _, ad := range ads {
			if len(ad.Spec.NodeSelectors) == 0 {
				return nil
			}
			if slices.ContainsFunc(ad.Spec.NodeSelectors, func(sel metav1.LabelSelector) bool { return selects(&sel, ls[i]) }) {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// claims lists the AddressClaims; nil when there are none or the API does
// not serve them (see Snapshot.Claims).
func (o *Observer) claims(ctx context.Context) map[netip.Addr]ClaimHolders {
	list, err := o.Lab.Herald.HeraldV1alpha1().AddressClaims().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) == 0 {
		return nil
	}
	out := map[netip.Addr]ClaimHolders{}
	for i := range list.Items {
		c, err := config.ClaimOf(&list.Items[i])
		if err != nil {
			continue
		}
		hs := ClaimHolders{}
		for _, h := range c.Holders {
			hs[h.UID] = h.ExternalIP
		}
		out[c.Addr] = hs
	}
	return out
}

// endpointsOf reads an EndpointSlice's endpoints with the API's defaults:
// ready unset is true, serving unset is ready, terminating unset is false.
func endpointsOf(sl discoveryv1.EndpointSlice) []Endpoint {
	var out []Endpoint
	for _, e := range sl.Endpoints {
		ep := Endpoint{Ready: true}
		if e.NodeName != nil {
			ep.Node = *e.NodeName
		}
		if e.Conditions.Ready != nil {
			ep.Ready = *e.Conditions.Ready
		}
		ep.Serving = ep.Ready
		if e.Conditions.Serving != nil {
			ep.Serving = *e.Conditions.Serving
		}
		if e.Conditions.Terminating != nil {
			ep.Terminating = *e.Conditions.Terminating
		}
		out = append(out, ep)
	}
	return out
}

// ServiceOf reduces a Service to what the checker reads: what Herald gave it
// is read from its status and its conditions, as a user reads them.
func ServiceOf(svc *corev1.Service) Service {
	s := Service{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID),
		Local: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
		Asks:  svc.Annotations[AsksAnnotation]}
	if svc.Spec.LoadBalancerClass != nil {
		s.Class = *svc.Spec.LoadBalancerClass
	}
	if _, err := config.ParseServiceAnnotations(svc.Annotations); err != nil {
		s.Frozen = true
	}
	if v, ok := svc.Annotations[config.AnnotationSharingKey]; ok {
		if a, err := config.ParseServiceAnnotations(map[string]string{config.AnnotationSharingKey: v}); err == nil {
			s.SharingKey = a.SharingKey
		}
	}
	for _, p := range svc.Spec.Ports {
		s.Ports = append(s.Ports, Port{Protocol: string(p.Protocol), Port: p.Port})
	}
	lbPool, extPool := "", ""
	if g, ok := config.GrantOf(svc, config.ConditionAddressAllocated); ok {
		lbPool = g.Pool
	}
	if g, ok := config.GrantOf(svc, config.ConditionExternalIPsAccepted); ok {
		extPool = g.Pool
	}
	for _, a := range config.LoadBalancerAddresses(svc) {
		s.Held = append(s.Held, Holding{Addr: a, Pool: lbPool})
	}
	accepted := config.AcceptedExternalIPs(svc)
	for _, a := range accepted {
		s.Held = append(s.Held, Holding{Addr: a, External: true, Pool: extPool})
	}
	for _, e := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(strings.TrimSpace(e)); err == nil && !slices.Contains(accepted, a.Unmap()) {
			s.UnacceptedExternalIPs = append(s.UnacceptedExternalIPs, a.Unmap())
		}
	}
	return s
}

// outsideAddr finds the addresses in an AddressesOutsidePool message
// ("... : 198.51.100.7 (ns/name, reason), ...").
var outsideAddr = regexp.MustCompile(`([0-9a-fA-F.:]+) \(`)

// PoolOf reduces an IPPool to what the checker reads. nsLabels are the
// labels of the namespaces the soak observes, for the pool's namespace
// selectors. A serviceSelector is not evaluated (the soak's pools set none).
func PoolOf(p *v1alpha1.IPPool, nsLabels map[string]labels.Set) Pool {
	out := Pool{Name: p.Name, Created: p.CreationTimestamp.Time, Deleting: p.DeletionTimestamp != nil, Current: p.Status.ObservedGeneration == p.Generation,
		AdmitsLB: map[string]bool{}, AdmitsExternal: map[string]bool{}}
	for _, e := range p.Spec.Addresses {
		if r, ok := parseRange(e); ok {
			out.Ranges = append(out.Ranges, r)
		}
	}
	for ns, ls := range nsLabels {
		sa := p.Spec.ServiceAllocation
		out.AdmitsLB[ns] = sa == nil || (len(sa.Namespaces) == 0 && sa.NamespaceSelector == nil) ||
			slices.Contains(sa.Namespaces, ns) || selects(sa.NamespaceSelector, ls)
		if ext := p.Spec.AllowExternalIPs; ext != nil {
			out.AdmitsExternal[ns] = slices.Contains(ext.Namespaces, ns) || selects(ext.NamespaceSelector, ls)
		}
	}
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAddressesOutsidePool); c != nil && c.Status == metav1.ConditionTrue {
		for _, m := range outsideAddr.FindAllStringSubmatch(c.Message, -1) {
			if a, err := netip.ParseAddr(m[1]); err == nil {
				out.Outside = append(out.Outside, a)
			}
		}
	}
	out.Used4, out.Used6 = used(p.Status.IPv4), used(p.Status.IPv6)
	return out
}

func selects(sel *metav1.LabelSelector, ls labels.Set) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(ls)
}

func used(c *v1alpha1.AddressCounts) int {
	if c == nil {
		return 0
	}
	n, err := strconv.Atoi(c.Used)
	if err != nil {
		return -1
	}
	return n
}

// parseRange reads a CIDR or a first-last range.
func parseRange(e string) (Range, bool) {
	if p, err := netip.ParsePrefix(e); err == nil {
		p = p.Masked()
		last := p.Addr()
		bits := p.Addr().BitLen() - p.Bits()
		b := last.AsSlice()
		for i := len(b) - 1; i >= 0 && bits > 0; i-- {
			n := min(bits, 8)
			b[i] |= byte(1<<n - 1)
			bits -= n
		}
		last, _ = netip.AddrFromSlice(b)
		return Range{p.Addr(), last}, true
	}
	from, to, ok := strings.Cut(e, "-")
	if !ok {
		return Range{}, false
	}
	f, err1 := netip.ParseAddr(from)
	t, err2 := netip.ParseAddr(to)
	if err1 != nil || err2 != nil {
		return Range{}, false
	}
	return Range{f, t}, true
}

// Wire asks from the client who answers ARP or NDP for each of l2, reads the
// router's BGP tables and sessions, and fills s.Wire and the nodes' BGPUp.
func (o *Observer) Wire(ctx context.Context, s *Snapshot, l2 []netip.Addr, withBGP bool) {
	w := &Wire{Start: time.Now(), L2: map[netip.Addr]L2Answer{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(o.Parallel, 8))
	for _, a := range l2 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			names, err := o.Lab.Answering(ctx, a)
			ans := L2Answer{Nodes: names}
			if err != nil && !errors.Is(err, netlab.ErrNoAnswer) {
				ans = L2Answer{Err: err.Error()}
			}
			mu.Lock()
			w.L2[a] = ans
			mu.Unlock()
		}()
	}
	if withBGP {
		w.BGP = o.bgp(ctx, s)
	}
	wg.Wait()
	w.End = time.Now()
	if after, err := o.API(ctx); err == nil {
		w.HeldAfter = heldOrAsked(after.Services)
	} else {
		w.L2, w.BGP = nil, nil // nothing can be judged without it
	}
	s.Wire = w
}

// bgp reads the router's host routes and sessions; nil when it cannot.
func (o *Observer) bgp(ctx context.Context, s *Snapshot) map[netip.Addr][]string {
	r := o.Lab.Cluster.Router
	out := map[netip.Addr][]string{}
	for _, fam := range []netlab.Family{netlab.IPv4Unicast, netlab.IPv6Unicast} {
		routes, err := r.Routes(ctx, fam)
		if err != nil {
			return nil
		}
		for _, rt := range routes {
			if !rt.Prefix.IsSingleIP() {
				continue
			}
			var names []string
			for _, nh := range rt.SelectedNextHops() {
				if n := o.Lab.NodeOfAddr(nh); n != nil {
					names = append(names, n.Name())
				} else {
					names = append(names, nh.String())
				}
			}
			slices.Sort(names)
			out[rt.Prefix.Addr()] = slices.Compact(names)
		}
	}
	nbrs, err := r.Neighbors(ctx)
	if err != nil {
		return nil
	}
	now := time.Now()
	for i := range s.Nodes {
		n := o.Lab.Node(s.Nodes[i].Name)
		for _, nb := range nbrs {
			if nb.Address == n.Addr4() && nb.Established() {
				s.Nodes[i].BGPUp = now.Add(-nb.Uptime)
			}
		}
	}
	return out
}

// heldOrAsked returns the addresses svcs hold and the spec.externalIPs not
// accepted yet: an external IP Herald allocates is written into the spec (and
// claimed, and announced) a moment before the condition that accepts it.
func heldOrAsked(svcs []Service) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, svc := range svcs {
		for _, h := range svc.Held {
			out[h.Addr] = true
		}
		for _, a := range svc.UnacceptedExternalIPs {
			out[a] = true
		}
	}
	return out
}
