package migrate

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// CiliumGroup is the API group of Cilium's resources.
const CiliumGroup = "cilium.io"

// The kinds of Cilium resources the plan reads.
const (
	KindCiliumLoadBalancerIPPool    = "CiliumLoadBalancerIPPool"
	KindCiliumL2AnnouncementPolicy  = "CiliumL2AnnouncementPolicy"
	KindCiliumBGPPeeringPolicy      = "CiliumBGPPeeringPolicy"
	KindCiliumBGPClusterConfig      = "CiliumBGPClusterConfig"
	KindCiliumBGPAdvertisement      = "CiliumBGPAdvertisement"
	KindCiliumBGPPeerConfig         = "CiliumBGPPeerConfig"
	ciliumServiceNamespaceLabel     = "io.kubernetes.service.namespace"
	ciliumInterfaceRegexpMetaChars  = `\.+*?()|[]{}^$`
	ciliumDefaultL2AnnouncementName = "cilium-l2"
)

// CiliumKinds are the Cilium kinds the plan reads.
var CiliumKinds = []string{KindCiliumLoadBalancerIPPool, KindCiliumL2AnnouncementPolicy, KindCiliumBGPPeeringPolicy, KindCiliumBGPClusterConfig, KindCiliumBGPAdvertisement, KindCiliumBGPPeerConfig}

// CiliumInput is what the Cilium plan reads.
type CiliumInput struct {
	Objects  []*unstructured.Unstructured
	Services []*corev1.Service
}

// Cilium plans a move from Cilium's LB-IPAM (and its L2 announcements) to
// Herald. Cilium's BGP resources are reported, not converted. It is pure.
func Cilium(in CiliumInput) *Plan {
	p := &Plan{Source: "Cilium LB-IPAM"}
	pools := metallbPools{byName: map[string]*v1alpha1.IPPool{}, labels: map[string]map[string]string{}}
	var objs []*unstructured.Unstructured
	for _, o := range in.Objects {
		if o != nil && o.GroupVersionKind().Group == CiliumGroup {
			objs = append(objs, o)
		}
	}
	slices.SortFunc(objs, func(a, b *unstructured.Unstructured) int {
		return strings.Compare(a.GetKind()+"/"+a.GetName(), b.GetKind()+"/"+b.GetName())
	})
	for _, o := range objs {
		switch o.GetKind() {
		case KindCiliumLoadBalancerIPPool:
			p.convertCiliumPool(o, &pools)
		case KindCiliumL2AnnouncementPolicy:
			p.convertCiliumL2(o)
		case KindCiliumBGPPeeringPolicy, KindCiliumBGPClusterConfig, KindCiliumBGPAdvertisement, KindCiliumBGPPeerConfig:
			p.Dropped = append(p.Dropped, Dropped{Object: ref(o), Field: "(whole object)", Reason: "Cilium's BGP resources are not converted: write Herald BGPPeers and a BGPAdvertisement for the pools (docs/reference.md)"})
		}
	}
	p.overlaps(pools.ranges)
	p.planServices(in.Services, ciliumAnnotations, pools, false)
	p.sort()
	return p
}

func (p *Plan) convertCiliumPool(o *unstructured.Unstructured, pools *metallbPools) {
	f := spec(o)
	pool := &v1alpha1.IPPool{TypeMeta: typeMeta("IPPool"), ObjectMeta: objectMeta(o, "cilium")}
	var blocks []any
	for _, key := range []string{"blocks", "cidrs"} {
		l, _, err := f.list(key)
		if err != nil {
			p.problem(o, err)
		}
		blocks = append(blocks, l...)
	}
	for i, b := range blocks {
		m, ok := b.(map[string]any)
		if !ok {
			p.problem(o, fmt.Errorf("spec.blocks[%d]: want {cidr} or {start, stop}", i))
			continue
		}
		bf := &fields{m: m}
		cidr, _, _ := bf.str("cidr")
		start, _, _ := bf.str("start")
		stop, _, _ := bf.str("stop")
		entry := cidr
		if cidr == "" {
			entry = start + "-" + stop
		}
		norm, r, note, err := normalizeBlock(entry)
		if err != nil {
			p.problem(o, err)
			continue
		}
		if note != "" {
			p.Notes = append(p.Notes, ref(o)+": "+note)
		}
		pool.Spec.Addresses = append(pool.Spec.Addresses, norm)
		pools.ranges = append(pools.ranges, poolRange{pool: o.GetName(), from: r.from, to: r.to})
		p.dropRest(o, bf, fmt.Sprintf("spec.blocks[%d].", i))
	}
	if len(pool.Spec.Addresses) == 0 {
		p.problem(o, fmt.Errorf("spec.blocks is empty: an IPPool needs at least one address"))
		return
	}
	if sels, _, err := p.selectors(o, &fields{m: map[string]any{"s": orNil(f, "serviceSelector")}}, "s"); err == nil && len(sels) == 1 {
		sel := sels[0]
		if ns, ok := sel.MatchLabels[ciliumServiceNamespaceLabel]; ok {
			delete(sel.MatchLabels, ciliumServiceNamespaceLabel)
			pool.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{Namespaces: []string{ns}}
		}
		for _, e := range sel.MatchExpressions {
			if e.Key == ciliumServiceNamespaceLabel {
				p.drop(o, "spec.serviceSelector.matchExpressions", e, "Herald selects namespaces by their own labels or names, not by an expression on the Service's namespace: list the namespaces in serviceAllocation.namespaces")
			}
		}
		sel.MatchExpressions = slices.DeleteFunc(sel.MatchExpressions, func(e metav1.LabelSelectorRequirement) bool { return e.Key == ciliumServiceNamespaceLabel })
		if len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0 {
			if pool.Spec.ServiceAllocation == nil {
				pool.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{}
			}
			pool.Spec.ServiceAllocation.ServiceSelector = &sel
		}
	}
	if v, set, err := f.boolean("disabled"); err != nil {
		p.problem(o, err)
	} else if set && v {
		p.drop(o, "spec.disabled", v, "Herald has no disabled pool: the IPPool would serve new Services (set autoAssign: false to serve only those that name it)")
		pool.Spec.AutoAssign = ptr.To(false)
	}
	if v, set, err := f.str("allowFirstLastIPs"); err != nil {
		p.problem(o, err)
	} else if set && v == "No" {
		p.drop(o, "spec.allowFirstLastIPs", v, "Herald hands out the first and last address of a CIDR (avoidBuggyIPs skips only .0 and .255): write ranges without them to keep them out")
	}
	p.dropRest(o, f, "spec.")
	pools.byName[o.GetName()] = pool
	pools.labels[o.GetName()] = pool.Labels
	p.IPPools = append(p.IPPools, pool)
}

// orNil takes a field out of f, for reading it as a one-element list.
func orNil(f *fields, key string) any {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	return []any{v}
}

var plainInterface = regexp.MustCompile(`^[^` + regexp.QuoteMeta(ciliumInterfaceRegexpMetaChars) + `]+$`)

func (p *Plan) convertCiliumL2(o *unstructured.Unstructured) {
	f := spec(o)
	adv := &v1alpha1.L2Advertisement{TypeMeta: typeMeta("L2Advertisement"), ObjectMeta: objectMeta(o, "cilium")}
	if sels, _, err := p.selectors(o, &fields{m: map[string]any{"s": orNil(f, "nodeSelector")}}, "s"); err == nil {
		adv.Spec.NodeSelectors = sels
	}
	ifaces, _, err := f.strings("interfaces")
	if err != nil {
		p.problem(o, err)
	}
	for _, i := range ifaces {
		if plainInterface.MatchString(i) {
			adv.Spec.Interfaces = append(adv.Spec.Interfaces, i)
		} else {
			p.drop(o, "spec.interfaces", i, "a regular expression: Herald takes interface names; list them")
		}
	}
	if _, set := f.take("serviceSelector"); set {
		p.drop(o, "spec.serviceSelector", "", "Herald's advertisements select pools, not Services: put the Services in a pool of their own (serviceAllocation.serviceSelector) and advertise that pool")
	}
	if v, set, _ := f.boolean("externalIPs"); set && v {
		p.Notes = append(p.Notes, ref(o)+": external IPs are announced by Herald only when a pool's allowExternalIPs admits their namespace")
	}
	f.take("loadBalancerIPs")
	p.dropRest(o, f, "spec.")
	p.L2Advertisements = append(p.L2Advertisements, adv)
}

// The Cilium Service annotations, new and old spellings.
var ciliumAnnotationMap = map[string]string{
	"lbipam.cilium.io/ips":                      config.AnnotationAddresses,
	"io.cilium/lb-ipam-ips":                     config.AnnotationAddresses,
	"lbipam.cilium.io/sharing-key":              config.AnnotationSharingKey,
	"io.cilium/lb-ipam-sharing-key":             config.AnnotationSharingKey,
	"lbipam.cilium.io/sharing-cross-namespace":  config.AnnotationSharingCrossNamespace,
	"io.cilium/lb-ipam-sharing-cross-namespace": config.AnnotationSharingCrossNamespace,
}

func ciliumAnnotations(svc *corev1.Service) (map[string]string, []Dropped, []string) {
	out := map[string]string{}
	var dropped []Dropped
	for _, k := range slices.Sorted(maps.Keys(svc.Annotations)) {
		v := svc.Annotations[k]
		if hk, ok := ciliumAnnotationMap[k]; ok {
			out[hk] = strings.Join(strings.Fields(strings.ReplaceAll(v, ",", " ")), ",")
			continue
		}
		if strings.HasPrefix(k, "lbipam.cilium.io/") || strings.HasPrefix(k, "io.cilium/lb-ipam") {
			dropped = append(dropped, Dropped{Object: svcRef(svc), Field: k, Value: v, Reason: "Herald has no equivalent of this Cilium LB-IPAM annotation"})
		}
	}
	return out, dropped, nil
}
