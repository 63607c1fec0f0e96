package main

import (
	"context"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

const (
	namespace  = "default"
	l2Pool     = "measure-l2"
	routedPool = "measure-routed"
	routerASN  = 64512
	nodeASN    = 64513
	// servicePort is the port clients connect to; pods serve productlab.WebPort.
	servicePort = 80
	// failNode is the node the failure measurements fail: it runs no pod of
	// the Services they use.
	failNode = "node3"
)

// measurement is the running lab and what the phases share.
type measurement struct {
	cfg  options
	sess *netlab.Session
	lab  *productlab.Lab
	web  []*netlab.Pod

	localAddr netip.Addr
	localPods []*netlab.Pod
}

func (m *measurement) fatalf(format string, args ...any) {
	m.sess.Fatalf(format+"\n--- logs (tails)\n%s", append(args, m.lab.Logs(15))...)
}

// setUp configures Herald (a layer-2 pool and L2Advertisement, a routed pool,
// its BGPAdvertisement and a BGPPeer with BFD towards the router), starts FRR
// on the router with every node as a BFD-watched neighbour whose routes it
// installs in its kernel, and starts the web pods on node1 and node2.
func (m *measurement) setUp(ctx context.Context) {
	l := m.lab
	l.StartRouterBGP(routedPool, routerASN, nodeASN, true, netlab.RoutedPoolV4)
	l.Apply(productlab.L2PoolManifest(l2Pool, true, netlab.L2PoolV4, netlab.L2PoolV6))
	m.web = l.WebPods()
}

// serviceSpec describes a Service the measurements create.
type serviceSpec struct {
	name  string
	pool  string
	local bool
	addr  netip.Addr // requested; the zero Addr lets the controller allocate
}

// newService returns the Service object for spec: type LoadBalancer, port
// servicePort to productlab.WebPort, no node ports.
func newService(spec serviceSpec) *corev1.Service {
	ann := map[string]string{config.AnnotationPool: spec.pool}
	if spec.addr.IsValid() {
		ann[config.AnnotationAddresses] = spec.addr.String()
	}
	policy := corev1.ServiceExternalTrafficPolicyCluster
	if spec.local {
		policy = corev1.ServiceExternalTrafficPolicyLocal
	}
	no := false
	families := []corev1.IPFamily{corev1.IPv4Protocol}
	if spec.addr.Is6() {
		families = []corev1.IPFamily{corev1.IPv6Protocol}
	}
	single := corev1.IPFamilyPolicySingleStack
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: spec.name, Namespace: namespace, Annotations: ann},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: &no,
			ExternalTrafficPolicy:         policy,
			IPFamilies:                    families,
			IPFamilyPolicy:                &single,
			Selector:                      map[string]string{"app": spec.name},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: servicePort, TargetPort: intstr.FromInt32(productlab.WebPort),
			}},
		},
	}
}

// createService creates the Service, writes its EndpointSlices with eps, and
// waits until it has an address and a client connection reaches a pod.
func (m *measurement) createService(ctx context.Context, spec serviceSpec, eps ...netlab.Endpoint) netip.Addr {
	l := m.lab
	if _, err := l.Kube.CoreV1().Services(namespace).Create(ctx, newService(spec), metav1.CreateOptions{}); err != nil {
		m.fatalf("create Service %s: %v", spec.name, err)
	}
	if err := l.Cluster.SetEndpoints(ctx, namespace, spec.name, eps...); err != nil {
		m.fatalf("%v", err)
	}
	addr := l.WaitAddresses(namespace, spec.name, 1, 60*time.Second)[0]
	l.WaitConnect(addr, servicePort, 60*time.Second, nil)
	return addr
}

// readyEndpoints returns pods as ready endpoints.
func readyEndpoints(pods ...*netlab.Pod) []netlab.Endpoint {
	var eps []netlab.Endpoint
	for _, p := range pods {
		eps = append(eps, netlab.Endpoint{Pod: p, State: netlab.EndpointReady})
	}
	return eps
}

// l2AddrRankingFirst returns the first address of the layer-2 pool from its
// 10th on whose election ranks node first among all nodes.
func (m *measurement) l2AddrRankingFirst(node string) netip.Addr {
	return m.l2AddrRankingFirstFrom(node, 10)
}

// l2AddrRankingFirstFrom returns the first address of the layer-2 pool from
// its skip-th on whose election ranks node first among all nodes.
func (m *measurement) l2AddrRankingFirstFrom(node string, skip int) netip.Addr {
	pool := netlab.L2PoolV4
	if m.cfg.ipv6 {
		pool = netlab.L2PoolV6
	}
	a, ok := m.lab.AddrRankingFirst(pool, skip, node)
	if !ok {
		m.fatalf("no address of %s is ranked first by %s", pool, node)
	}
	return a
}

// recovered waits until an attempt of p started after from succeeded, up to
// limit, and reports whether one did.
func recovered(p *productlab.Prober, from time.Time, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, a := range p.Attempts() {
			if a.OK() && a.Start.After(from) {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// nodeAddrs returns the nodes' LAN addresses, sorted.
func nodeAddrs(nodes ...*netlab.Node) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		out = append(out, n.Addr4())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
