package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// KubeVIPConfigMap is where kube-vip's cloud provider reads its address
// pools: kube-system/kubevip, keys cidr-<namespace> and range-<namespace>
// (cidr-global and range-global for every namespace).
const KubeVIPConfigMap = "kubevip"

// KubeVIPInput is what the kube-vip plan reads: its ConfigMap (nil when
// absent) and the cluster's Services.
type KubeVIPInput struct {
	ConfigMap *corev1.ConfigMap
	Services  []*corev1.Service
}

// KubeVIP plans a move from kube-vip's cloud provider to Herald: one IPPool
// per namespace's pool (kube-vip-<namespace>, for that namespace only) and
// one for the global pool (kube-vip-global, after the namespaces' pools, as
// kube-vip tries them), one L2Advertisement for them all (kube-vip's ARP
// mode; its BGP mode is configured on the kube-vip daemon, not here), and
// the Services' annotations. Services that share an address (kube-vip lets
// Services name the same address) get a sharing key. It is pure.
func KubeVIP(in KubeVIPInput) *Plan {
	p := &Plan{Source: "kube-vip"}
	var pools metallbPools
	pools.byName = map[string]*v1alpha1.IPPool{}
	if in.ConfigMap == nil {
		p.Problems = append(p.Problems, "no kube-vip ConfigMap kube-system/"+KubeVIPConfigMap+": kube-vip's pools are unknown")
	} else {
		byPool := map[string][]string{}
		keys := slices.Sorted(maps.Keys(in.ConfigMap.Data))
		for _, k := range keys {
			ns, ok := strings.CutPrefix(k, "cidr-")
			if !ok {
				ns, ok = strings.CutPrefix(k, "range-")
			}
			if !ok {
				p.Dropped = append(p.Dropped, Dropped{Object: "ConfigMap/kube-system/" + KubeVIPConfigMap, Field: "data." + k, Value: in.ConfigMap.Data[k], Reason: "not a kube-vip pool key (cidr-<namespace>, range-<namespace>)"})
				continue
			}
			for _, e := range strings.Split(in.ConfigMap.Data[k], ",") {
				if e = strings.TrimSpace(e); e != "" {
					byPool[ns] = append(byPool[ns], e)
				}
			}
		}
		for _, ns := range slices.Sorted(maps.Keys(byPool)) {
			pool := &v1alpha1.IPPool{TypeMeta: typeMeta("IPPool"), ObjectMeta: metav1.ObjectMeta{
				Name:        "kube-vip-" + ns,
				Labels:      map[string]string{LabelMigratedFrom: "kube-vip"},
				Annotations: map[string]string{AnnotationMigratedFrom: "ConfigMap/kube-system/" + KubeVIPConfigMap},
			}}
			if ns == "global" {
				pool.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{Priority: ptr.To(int32(1))}
			} else {
				pool.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{Namespaces: []string{ns}, Priority: ptr.To(int32(0))}
			}
			ok := true
			for _, e := range byPool[ns] {
				norm, r, note, err := normalizeBlock(e)
				if err != nil {
					p.Problems = append(p.Problems, fmt.Sprintf("ConfigMap kube-system/%s, pool %s: %v", KubeVIPConfigMap, ns, err))
					ok = false
					continue
				}
				if note != "" {
					p.Notes = append(p.Notes, "kube-vip pool "+ns+": "+note)
				}
				pool.Spec.Addresses = append(pool.Spec.Addresses, norm)
				pools.ranges = append(pools.ranges, poolRange{pool: pool.Name, from: r.from, to: r.to})
			}
			if ok {
				pools.byName[pool.Name] = pool
				p.IPPools = append(p.IPPools, pool)
			}
		}
		p.overlaps(pools.ranges)
		p.L2Advertisements = append(p.L2Advertisements, &v1alpha1.L2Advertisement{TypeMeta: typeMeta("L2Advertisement"), ObjectMeta: metav1.ObjectMeta{
			Name: "kube-vip", Labels: map[string]string{LabelMigratedFrom: "kube-vip"},
		}})
		p.Notes = append(p.Notes, "kube-vip's own daemon settings (ARP or BGP mode, its interface, its BGP peers) are not in the ConfigMap: the plan announces every pool at layer 2; for BGP, write BGPPeers and a BGPAdvertisement instead")
	}
	p.planServices(in.Services, kubeVIPAnnotations, pools, true)
	p.sort()
	return p
}

// kubeVIPAnnotations converts kube-vip's Service annotations.
func kubeVIPAnnotations(svc *corev1.Service) (map[string]string, []Dropped, []string) {
	out := map[string]string{}
	var dropped []Dropped
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(svc.Annotations)) {
		name, ok := strings.CutPrefix(k, "kube-vip.io/")
		if !ok {
			continue
		}
		v := svc.Annotations[k]
		switch name {
		case "loadbalancerIPs":
			out[config.AnnotationAddresses] = strings.Join(strings.Fields(strings.ReplaceAll(v, ",", " ")), ",")
		case "vipHost", "hwaddr", "requestedIP":
			// kube-vip's own records of where and what it announces.
		case "ignore":
			if v == "true" {
				problems = append(problems, "kube-vip ignores it (kube-vip.io/ignore), but Herald would serve it: give it a loadBalancerClass Herald does not serve, or remove the annotation")
			}
		default:
			dropped = append(dropped, Dropped{Object: svcRef(svc), Field: k, Value: v, Reason: "Herald has no equivalent of this kube-vip annotation"})
		}
	}
	return out, dropped, problems
}
