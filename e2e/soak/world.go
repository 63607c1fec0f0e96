package soak

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// The BGP numbers of the soak's router and nodes.
const (
	RouterASN = 64512
	NodeASN   = 64513
	// announceLabel on a pool says how the soak's advertisements announce it.
	announceLabel = "soak.herald.dev/announce"
)

// poolDef is one of the soak's pools.
type poolDef struct {
	name, announce       string
	ranges               []string
	autoAssign           bool
	namespaces, external []string
}

// poolDefs are the soak's pools, soak-l2 at l2Size addresses per family.
func poolDefs(l2Size int) []poolDef {
	ab := []string{NamespaceA, NamespaceB}
	return []poolDef{
		{PoolL2, "l2", L2Ranges(l2Size), true, ab, nil},
		{PoolL2B, "l2", L2BRanges, false, []string{NamespaceB}, nil},
		{PoolExternal, "l2", ExtRanges, false, []string{NamespaceA}, []string{NamespaceA}},
		{PoolBGP, "bgp", BGPRanges, false, ab, nil},
		{PoolProbeL2, "l2", ProbeRanges[PoolProbeL2], false, []string{NamespaceProbe}, nil},
		{PoolProbeBGP, "bgp", ProbeRanges[PoolProbeBGP], false, []string{NamespaceProbe}, nil},
	}
}

func (d poolDef) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\napiVersion: herald.dev/v1alpha1\nkind: IPPool\nmetadata: {name: %s, labels: {%s: %s}}\nspec:\n  addresses: [%s]\n  autoAssign: %v\n",
		d.name, announceLabel, d.announce, quoteAll(d.ranges), d.autoAssign)
	if len(d.namespaces) > 0 {
		fmt.Fprintf(&b, "  serviceAllocation: {namespaces: [%s]}\n", strings.Join(d.namespaces, ", "))
	}
	if len(d.external) > 0 {
		fmt.Fprintf(&b, "  allowExternalIPs: {namespaces: [%s]}\n", strings.Join(d.external, ", "))
	}
	return b.String()
}

// overlapDef is pool soak-overlap, which the soak creates and deletes.
var overlapDef = poolDef{PoolOverlap, "l2", OverlapRanges, true, []string{NamespaceA, NamespaceB}, nil}

// poolYAML is the soak's pool name at ranges.
func poolYAML(name string, ranges []string) string {
	for _, d := range append(poolDefs(0), overlapDef) {
		if d.name == name {
			d.ranges = ranges
			return d.yaml()
		}
	}
	return ""
}

// configYAML is Herald's configuration for the soak: the pools, one
// L2Advertisement and one BGPAdvertisement selecting them by label, and the
// router as BGP peer with BFD.
func configYAML(l2Size int, router netip.Addr) string {
	var b strings.Builder
	for _, d := range poolDefs(l2Size) {
		b.WriteString(d.yaml())
	}
	b.WriteString(advertisementsYAML(InitialConfig, router))
	return b.String()
}

// advertisementsYAML is the soak's L2Advertisement, BGPAdvertisement and
// BGPPeer in state c.
func advertisementsYAML(c ConfigState, router netip.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: soak}
spec:
  ipPoolSelector: {matchLabels: {%s: l2}}
`, announceLabel)
	if c.L2Exclude != "" {
		fmt.Fprintf(&b, "  nodeSelectors: [{matchExpressions: [{key: kubernetes.io/hostname, operator: NotIn, values: [%s]}]}]\n", c.L2Exclude)
	}
	fmt.Fprintf(&b, `---
apiVersion: herald.dev/v1alpha1
kind: BGPAdvertisement
metadata: {name: soak}
spec:
  ipPoolSelector: {matchLabels: {%s: bgp}}
`, announceLabel)
	if c.Communities {
		fmt.Fprintf(&b, "  communities: [\"%d:100\"]\n", RouterASN)
	}
	fmt.Fprintf(&b, `---
apiVersion: herald.dev/v1alpha1
kind: BGPPeer
metadata: {name: router}
spec:
  peerAddress: "%s"
  peerASN: %d
  myASN: %d
  holdTime: 9s
  keepaliveTime: 3s
  bfd: {minRx: 300ms, minTx: 300ms, multiplier: %d}
`, router, RouterASN, NodeASN, c.BFDMultiplier)
	return b.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// ServiceObject is the Service the soak writes for spec.
func ServiceObject(s *ServiceSpec) *corev1.Service {
	ann := map[string]string{AsksAnnotation: strconv.Itoa(s.Asks)}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Annotations: ann,
			Labels: map[string]string{ManagedLabel: "true"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "web", Protocol: corev1.ProtocolTCP, Port: s.Port,
				TargetPort: intstr.FromInt32(productlab.WebPort)}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
		},
	}
	if s.Local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	bad := BadAnnotation
	switch s.Mode {
	case ModeL2B:
		ann[config.AnnotationPool] = PoolL2B
	case ModeBGP:
		ann[config.AnnotationPool] = PoolBGP
	case ModeProbeL2:
		ann[config.AnnotationPool] = PoolProbeL2
	case ModeProbeBGP:
		ann[config.AnnotationPool] = PoolProbeBGP
	case ModeExternal:
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		for _, a := range s.ExternalIPs {
			svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, a.String())
		}
	case ModeAllocExt:
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		// externalTrafficPolicy is only valid once spec.externalIPs has an
		// entry, which the controller writes.
		svc.Spec.ExternalTrafficPolicy = ""
		ann[config.AnnotationAllocateExternalIP] = PoolExternal
		bad = config.AnnotationPool
	case ModeOtherClass:
		svc.Spec.LoadBalancerClass = ptr(OtherClass)
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		svc.Spec.AllocateLoadBalancerNodePorts = ptr(false)
	}
	if s.Bad {
		ann[bad] = BadValue
	}
	if s.SharingKey != "" {
		ann[config.AnnotationSharingKey] = s.SharingKey
	}
	if len(s.Requested) > 0 {
		ann[config.AnnotationAddresses] = config.JoinAddrs(s.Requested)
		ann[config.AnnotationAddresses] = strings.ReplaceAll(ann[config.AnnotationAddresses], " ", "")
	}
	switch s.Families {
	case V6:
		svc.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	case Dual:
		svc.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	default:
		svc.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	return svc
}

func ptr[T any](v T) *T { return &v }

// Probe modes: the probed Services, which no operation touches.
const (
	ModeProbeL2  Mode = "probe-l2"
	ModeProbeBGP Mode = "probe-bgp"
)

// ProbeServices are the probed Services: Cluster policy, one pod on node1
// and one on node2 (see ProbePod), a fixed address each.
func ProbeServices() []*ServiceSpec {
	return []*ServiceSpec{
		{Namespace: NamespaceProbe, Name: "probe-l2", Mode: ModeProbeL2, Families: V4, Port: 80, Requested: []netip.Addr{ProbeL2}},
		{Namespace: NamespaceProbe, Name: "probe-bgp", Mode: ModeProbeBGP, Families: V4, Port: 80, Requested: []netip.Addr{ProbeBGP}},
	}
}

// ProbePod names the probed Services' pod on node.
func ProbePod(node string) string { return "probe-" + node }

// world applies ServiceSpecs and pool changes to the lab.
type world struct {
	lab  *productlab.Lab
	pods map[string]*netlab.Pod
}

// endpoints writes the EndpointSlices of s.
func (w *world) endpoints(ctx context.Context, s *ServiceSpec) error {
	var eps []netlab.Endpoint
	for _, name := range slices.Sorted(maps.Keys(s.Endpoints)) {
		pod := w.pods[name]
		if pod == nil {
			return fmt.Errorf("soak: no pod %s", name)
		}
		eps = append(eps, netlab.Endpoint{Pod: pod, State: netlabState(s.Endpoints[name])})
	}
	return w.lab.Cluster.SetEndpoints(ctx, s.Namespace, s.Name, eps...)
}

func netlabState(s EndpointState) netlab.EndpointState {
	switch s {
	case NotReady:
		return netlab.EndpointNotReady
	case TerminatingServing:
		return netlab.EndpointTerminatingServing
	case Terminating:
		return netlab.EndpointTerminating
	}
	return netlab.EndpointReady
}

// apply makes the lab match op.
func (w *world) apply(ctx context.Context, op *Op) error {
	switch op.Kind {
	case OpCreate:
		if _, err := w.lab.Kube.CoreV1().Services(op.Service.Namespace).Create(ctx, ServiceObject(op.Service), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("soak: create service %s: %w", op.Service.Key(), err)
		}
		return w.endpoints(ctx, op.Service)
	case OpEdit:
		if err := w.update(ctx, op.Service); err != nil {
			return err
		}
		return w.endpoints(ctx, op.Service)
	case OpEndpoints:
		return w.endpoints(ctx, op.Service)
	case OpDelete:
		s := op.Service
		err := w.lab.Kube.CoreV1().Services(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("soak: delete service %s: %w", s.Key(), err)
		}
		// No garbage collector runs in the lab: the slices go too.
		err = w.lab.Kube.DiscoveryV1().EndpointSlices(s.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + s.Name})
		if err != nil {
			return fmt.Errorf("soak: delete endpointslices of %s: %w", s.Key(), err)
		}
		return nil
	case OpConfig:
		return w.applyYAML(ctx, advertisementsYAML(*op.Config, w.lab.Cluster.Router.Addr4()))
	case OpPool:
		if op.PoolRanges == nil {
			err := w.lab.Herald.HeraldV1alpha1().IPPools().Delete(ctx, op.Pool, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("soak: delete ippool %s: %w", op.Pool, err)
			}
			return nil
		}
		return w.applyYAML(ctx, poolYAML(op.Pool, op.PoolRanges))
	}
	return fmt.Errorf("soak: unknown operation %q", op.Kind)
}

// update writes spec's wishes over the live Service: annotations (Herald's,
// the soak's), ports, policy and user-written external IPs. An external IP
// the controller allocated (ModeAllocExt) is kept.
func (w *world) update(ctx context.Context, s *ServiceSpec) error {
	api := w.lab.Kube.CoreV1().Services(s.Namespace)
	want := ServiceObject(s)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := api.Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, k := range []string{config.AnnotationPool, config.AnnotationAddresses, config.AnnotationSharingKey,
			config.AnnotationAllocateExternalIP, AsksAnnotation} {
			delete(svc.Annotations, k)
		}
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		maps.Copy(svc.Annotations, want.Annotations)
		svc.Spec.Ports[0].Port = want.Spec.Ports[0].Port
		if s.Mode == ModeExternal {
			svc.Spec.ExternalIPs = want.Spec.ExternalIPs
		}
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0 {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			if s.Local {
				svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}
		}
		_, err = api.Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("soak: update service %s: %w", s.Key(), err)
	}
	return nil
}

// applyYAML applies manifests with kubectl.
func (w *world) applyYAML(ctx context.Context, manifests string) error {
	cmd := w.lab.CP.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", "-")
	cmd.Stdin = strings.NewReader(manifests)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("soak: kubectl apply: %w: %s", err, out)
	}
	return nil
}
