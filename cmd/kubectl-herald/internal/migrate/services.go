package migrate

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
)

// annotationRules convert one source's Service annotations: the Herald
// annotations that carry them, and what is dropped.
type annotationRules func(svc *corev1.Service) (herald map[string]string, dropped []Dropped, problems []string)

// The MetalLB Service annotations, under either prefix.
var metallbPrefixes = []string{"metallb.io/", "metallb.universe.tf/"}

// metallbAnnotations converts MetalLB's Service annotations.
func metallbAnnotations(svc *corev1.Service) (map[string]string, []Dropped, []string) {
	out := map[string]string{}
	var dropped []Dropped
	var problems []string
	keys := slices.Sorted(maps.Keys(svc.Annotations))
	for _, k := range keys {
		var name string
		for _, p := range metallbPrefixes {
			if n, ok := strings.CutPrefix(k, p); ok {
				name = n
			}
		}
		if name == "" {
			continue
		}
		v := svc.Annotations[k]
		set := func(hk, hv string) {
			if prev, ok := out[hk]; ok && prev != hv {
				problems = append(problems, fmt.Sprintf("annotations of both prefixes set %s, to %q and %q: keep one", name, prev, hv))
			}
			out[hk] = hv
		}
		switch name {
		case "loadBalancerIPs":
			parts := strings.Split(v, ",")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			set(config.AnnotationAddresses, strings.Join(parts, ","))
		case "address-pool":
			set(config.AnnotationPool, strings.TrimSpace(v))
		case "allow-shared-ip":
			set(config.AnnotationSharingKey, strings.TrimSpace(v))
		case "ip-allocated-from-pool":
			// MetalLB's own record of the pool; Herald records it in the
			// address's AddressClaim. Nothing to carry.
		default:
			dropped = append(dropped, Dropped{Object: svcRef(svc), Field: k, Value: v, Reason: "Herald has no equivalent of this MetalLB annotation"})
		}
	}
	return out, dropped, problems
}

func svcRef(svc *corev1.Service) string { return "Service/" + svc.Namespace + "/" + svc.Name }

// holder is one Service holding an address, for the sharing checks.
type holder struct {
	plan *ServicePlan
	svc  *corev1.Service
	key  string
}

// planServices plans every Service: the annotations that carry the
// source's, and whether it keeps its address when Herald adopts the
// statuses.
func (p *Plan) planServices(services []*corev1.Service, rules annotationRules, pools metallbPools, implicitSharing bool) {
	byAddr := map[netip.Addr][]holder{}
	for _, svc := range services {
		if svc == nil {
			continue
		}
		ann, dropped, problems := rules(svc)
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && len(ann) == 0 && len(dropped) == 0 {
			continue
		}
		p.Dropped = append(p.Dropped, dropped...)
		sp := ServicePlan{Namespace: svc.Namespace, Name: svc.Name, Now: config.LoadBalancerAddresses(svc), Annotations: ann, Problems: problems}
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			sp.Problems = append(sp.Problems, fmt.Sprintf("it is of type %s, not LoadBalancer: its load-balancer annotations have no effect", svc.Spec.Type))
		}
		if c := svc.Spec.LoadBalancerClass; c != nil && *c != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("%s has loadBalancerClass %q: start Herald's controller and speakers with --load-balancer-class=%s to serve it", svcRef(svc), *c, *c))
		}
		if _, err := config.ParseServiceAnnotations(ann); err != nil {
			sp.Problems = append(sp.Problems, fmt.Sprintf("its annotations do not convert: %v", err))
		}
		req, _ := config.ParseServiceAnnotations(ann)
		for _, a := range sp.Now {
			pool := pools.poolOf(a)
			sp.Pools = append(sp.Pools, pool)
			switch {
			case pool == "":
				sp.Problems = append(sp.Problems, fmt.Sprintf("%s lies in no MetalLB pool: Herald would keep it, but no advertisement announces an address of no pool (add it to a pool first)", a))
			case req.Pool != "" && req.Pool != pool:
				sp.Problems = append(sp.Problems, fmt.Sprintf("%s lies in pool %s, but the Service asks for pool %s: Herald would move it (fix the annotation first)", a, pool, req.Pool))
			}
			byAddr[a] = append(byAddr[a], holder{plan: nil, svc: svc, key: ann[config.AnnotationSharingKey]})
		}
		requested := slices.Clone(req.Addresses)
		if a, err := netip.ParseAddr(svc.Spec.LoadBalancerIP); err == nil && !slices.Contains(requested, a) {
			requested = append(requested, a)
		}
		if len(requested) > 0 && len(sp.Now) > 0 {
			for _, r := range requested {
				if !slices.Contains(sp.Now, r) {
					sp.Problems = append(sp.Problems, fmt.Sprintf("it asks for %s but holds %s: Herald would move it to what it asks for (fix the annotation first)", r, config.JoinAddrs(sp.Now)))
				}
			}
		}
		p.Services = append(p.Services, sp)
	}
	index := map[string]int{}
	for i, s := range p.Services {
		index[s.Namespace+"/"+s.Name] = i
	}
	for _, a := range slices.SortedFunc(maps.Keys(byAddr), netip.Addr.Compare) {
		hs := byAddr[a]
		if len(hs) < 2 {
			continue
		}
		for i := range hs {
			hs[i].plan = &p.Services[index[hs[i].svc.Namespace+"/"+hs[i].svc.Name]]
		}
		if implicitSharing {
			shareImplicitly(a, hs)
		}
		p.checkSharing(a, hs)
	}
	for i := range p.Services {
		if len(p.Services[i].Problems) == 0 {
			p.Services[i].After = slices.Clone(p.Services[i].Now)
		}
	}
}

// shareImplicitly gives the holders of a that have no sharing key a common
// one, for sources (kube-vip) that let Services share an address by naming
// it: Herald shares only under a key.
func shareImplicitly(a netip.Addr, hs []holder) {
	key := "shared-" + strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
	for i := range hs {
		if hs[i].key == "" {
			hs[i].key = key
			hs[i].plan.Annotations[config.AnnotationSharingKey] = key
		}
	}
}

// checkSharing checks that the Services holding a one address may share it
// under Herald's rules, which are those of MetalLB plus tenancy: Services
// of different namespaces share only when each names the other's
// namespace, which the migration writes for them.
func (p *Plan) checkSharing(a netip.Addr, hs []holder) {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.svc.Namespace + "/" + h.svc.Name
	}
	fail := func(msg string) {
		for _, h := range hs {
			h.plan.Problems = append(h.plan.Problems, fmt.Sprintf("%s is held by %s: %s", a, strings.Join(names, ", "), msg))
		}
	}
	key := hs[0].key
	for _, h := range hs {
		if h.key == "" || h.key != key {
			fail("they do not all set the same sharing key (MetalLB's allow-shared-ip), so Herald would give the address to the oldest only")
			return
		}
	}
	type pp struct {
		proto corev1.Protocol
		port  int32
	}
	seen := map[pp]string{}
	for i, h := range hs {
		for _, port := range h.svc.Spec.Ports {
			k := pp{cmp.Or(port.Protocol, corev1.ProtocolTCP), port.Port}
			if other, ok := seen[k]; ok && other != names[i] {
				fail(fmt.Sprintf("both %s and %s use %s/%d", other, names[i], k.proto, k.port))
				return
			}
			seen[k] = names[i]
		}
	}
	var local []holder
	for _, h := range hs {
		if h.svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			local = append(local, h)
		}
	}
	for _, h := range local[min(1, len(local)):] {
		if h.svc.Namespace != local[0].svc.Namespace || !labels.Equals(h.svc.Spec.Selector, local[0].svc.Spec.Selector) {
			fail("with externalTrafficPolicy Local, Services sharing an address must select the same Pods in the same namespace")
			return
		}
	}
	nss := map[string]bool{}
	for _, h := range hs {
		nss[h.svc.Namespace] = true
	}
	if len(nss) < 2 {
		return
	}
	for _, h := range hs {
		var others []string
		for ns := range nss {
			if ns != h.svc.Namespace {
				others = append(others, ns)
			}
		}
		if prev := h.plan.Annotations[config.AnnotationSharingCrossNamespace]; prev != "" {
			others = append(others, strings.Split(prev, ",")...)
		}
		slices.Sort(others)
		h.plan.Annotations[config.AnnotationSharingCrossNamespace] = strings.Join(slices.Compact(others), ",")
	}
}
