package plugin

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/herald-dev/herald/e2e/metallb"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

const (
	// realMetalLBPort is where MetalLB's daemons serve /metrics (127.0.0.1 in
	// each host), clear of Herald's ports.
	realMetalLBPort = 7572
	routerASN       = 64512
	nodeASN         = 64513
	// requestedAddr is the address the Service "requested" asks for.
	requestedAddr = "203.0.113.200"
	// probeInterval is how often each prober connects.
	probeInterval = 10 * time.Millisecond
)

// realMetalLBConfig is MetalLB's configuration: a layer-2 pool on the LAN, a
// BGP pool (only on request) announced to the lab's FRR router in MetalLB's
// native BGP mode.
var realMetalLBConfig = fmt.Sprintf(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: metallb-system}
spec:
  addresses: [198.51.100.160/28]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: metallb-system}
spec:
  addresses: [203.0.113.192/27]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [l2-pool]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec:
  ipAddressPools: [bgp-pool]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  peerAddress: %s
  peerASN: %d
  myASN: %d
`, routerLANAddr(), routerASN, nodeASN)

// routerLANAddr returns the lab router's IPv4 address on the LAN.
func routerLANAddr() netip.Addr {
	a4, _ := netlab.LANAddrs(netlab.RouterHostNumber)
	return a4.Addr()
}

// realMetalLBService is one Service of the run, and the prober's target when
// probe is set (one per address: the second Service of a shared address is
// checked after the hand-over, not probed).
type realMetalLBService struct {
	namespace, name, kind string
	port                  int32
	annotations           map[string]string
	probe                 bool
}

var realMetalLBServices = []realMetalLBService{
	{"shop", "l2-web", "layer 2", 80, nil, true},
	{"shop", "shared-a", "layer 2, shared address", 80, map[string]string{"metallb.io/allow-shared-ip": "shared"}, true},
	{"infra", "shared-b", "layer 2, shared address", 8080, map[string]string{"metallb.io/allow-shared-ip": "shared"}, false},
	{"shop", "bgp-web", "BGP", 80, map[string]string{"metallb.io/address-pool": "bgp-pool"}, true},
	{"shop", "requested", "BGP, requested address", 443, map[string]string{"metallb.io/loadBalancerIPs": requestedAddr}, true},
}

// TestMigrateRealMetalLB runs a real MetalLB (controller and speakers built
// from go.universe.tf/metallb) in the product lab, with layer-2 and BGP
// Services, a shared and a requested address; then, while the client
// connects to every address every 10 ms, migrates with kubectl herald migrate
// metallb --apply and performs the documented hand-over: stop MetalLB (its
// speakers, then its controller, with SIGTERM), start Herald. Every Service
// must keep its address and the client must reach each again; the longest
// client-observed outage per address is logged (a measurement, not asserted:
// see docs/figures.md).
func TestMigrateRealMetalLB(t *testing.T) {
	productlab.Require(t) // before the build: without root there is no lab to run MetalLB in
	mlb := metallb.Build(t)
	l := productlab.New(t, productlab.Options{WithoutHerald: true})
	p := newPlugin(t, l.CP.Config())
	ctx := t.Context()

	widened, err := metallb.InstallCRDs(ctx, l.CP.Config(), mlb.CRDDir)
	for _, path := range widened {
		t.Logf("MetalLB %s's CRD: %s is format int32 with a maximum beyond it, which this lab's kube-apiserver refuses; installed as int64, as MetalLB later fixed it", metallb.Version, path)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{metallb.Namespace, "shop", "infra"} {
		if _, err := l.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	router := l.Cluster.Router
	var neighbors []netlab.BGPNeighborConfig
	for _, n := range l.Cluster.Nodes {
		neighbors = append(neighbors, netlab.BGPNeighborConfig{Address: n.Addr4(), ASN: nodeASN, Passive: true})
	}
	router.StartBGP(netlab.BGPConfig{ASN: routerASN, Neighbors: neighbors, InstallRoutes: true})
	router.Sysctl("net.ipv4.fib_multipath_hash_policy=1")

	mlbProcs := startRealMetalLB(t, l, mlb)
	l.Apply(realMetalLBConfig)
	web := l.WebPods()
	for _, s := range realMetalLBServices {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name, Annotations: s.annotations},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{
				{Name: "tcp", Port: s.port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(productlab.WebPort)},
			}},
		}
		if _, err := l.Kube.CoreV1().Services(s.namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		l.Backend(s.namespace, s.name, productlab.WebPort, web...)
	}

	// MetalLB assigns and announces: the client reaches every Service.
	before := map[string]netip.Addr{}
	for _, s := range realMetalLBServices {
		addrs := l.WaitAddresses(s.namespace, s.name, 1, 60*time.Second)
		before[s.namespace+"/"+s.name] = addrs[0]
	}
	t.Logf("MetalLB's addresses: %v", before)
	if a, b := before["shop/shared-a"], before["infra/shared-b"]; a != b {
		t.Fatalf("MetalLB gave the sharing Services different addresses: %v and %v", a, b)
	}
	if got := before["shop/requested"]; got.String() != requestedAddr {
		t.Fatalf("MetalLB gave shop/requested %v, want the requested %s", got, requestedAddr)
	}
	for _, s := range realMetalLBServices {
		l.WaitConnect(before[s.namespace+"/"+s.name], int(s.port), 60*time.Second, nil)
	}
	for _, prefix := range []string{"shop/bgp-web", "shop/requested"} {
		l.WaitRouterNextHops(netip.PrefixFrom(before[prefix], 32), 60*time.Second, true, l.Cluster.Nodes...)
	}
	l2Announcer := map[string]string{}
	for _, key := range []string{"shop/l2-web", "shop/shared-a"} {
		l2Announcer[key] = arpAnnouncer(t, l, before[key])
	}
	t.Logf("MetalLB announces by ARP: %v", l2Announcer)

	probers := map[string]*productlab.Prober{}
	for _, s := range realMetalLBServices {
		if s.probe {
			probers[s.name] = l.Probe(before[s.namespace+"/"+s.name], int(s.port), probeInterval, time.Second)
		}
	}
	defer func() {
		for _, pr := range probers {
			pr.Stop()
		}
	}()
	time.Sleep(time.Second) // a second of successes before anything changes
	start := time.Now()

	stdout, stderr, code := p.run(t, "migrate", "metallb", "--apply")
	if code != 0 {
		t.Fatalf("kubectl herald migrate metallb --apply: exit %d: %s\n%s", code, stderr, stdout)
	}
	t.Logf("kubectl herald migrate metallb --apply:\n%s", stdout)

	// The documented hand-over: stop MetalLB, start Herald.
	stopped := time.Now()
	for _, proc := range mlbProcs {
		if err := proc.Stop(15 * time.Second); err != nil {
			t.Errorf("stop MetalLB's %s on %s: %v", proc.Name(), proc.Host().Name(), err)
		}
	}
	t.Logf("MetalLB stopped in %v", time.Since(stopped).Round(time.Millisecond))
	l.StartHerald()
	t.Logf("Herald's controller and speakers ready %v after MetalLB's stop began", time.Since(stopped).Round(time.Millisecond))

	netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		for _, s := range realMetalLBServices {
			svc, err := l.Kube.CoreV1().Services(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !apimeta.IsStatusConditionTrue(svc.Status.Conditions, "herald.dev/AddressAllocated") {
				return fmt.Errorf("Service %s/%s: no True AddressAllocated condition yet: %v", s.namespace, s.name, svc.Status.Conditions)
			}
		}
		return nil
	})
	for _, s := range realMetalLBServices {
		l.WaitConnect(before[s.namespace+"/"+s.name], int(s.port), 60*time.Second, nil)
	}
	time.Sleep(2 * time.Second) // the probers see Herald's steady state

	for _, s := range realMetalLBServices {
		key := s.namespace + "/" + s.name
		svc, err := l.Kube.CoreV1().Services(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := productlab.IngressAddrs(svc); !slices.Equal(got, []netip.Addr{before[key]}) {
			t.Errorf("Service %s: address %v after the hand-over, MetalLB's was %v", key, got, before[key])
		}
		if _, err := l.Herald.HeraldV1alpha1().AddressClaims().Get(ctx, before[key].String(), metav1.GetOptions{}); err != nil {
			t.Errorf("Service %s: Herald claims no %v: %v", key, before[key], err)
		}
	}

	// Herald, not a leftover, serves every address: one node answers ARP for
	// each layer-2 address (the client asks afresh), the router routes each BGP
	// address over every node.
	for _, key := range []string{"shop/l2-web", "shop/shared-a"} {
		t.Logf("%s: MetalLB announced %v from %s, Herald from %s", key, before[key], l2Announcer[key], arpAnnouncer(t, l, before[key]))
	}
	for _, key := range []string{"shop/bgp-web", "shop/requested"} {
		l.WaitRouterNextHops(netip.PrefixFrom(before[key], 32), 60*time.Second, true, l.Cluster.Nodes...)
	}
	if err := l.Client.FlushNeighbors(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range realMetalLBServices {
		l.WaitConnect(before[s.namespace+"/"+s.name], int(s.port), 30*time.Second, nil)
	}

	var report strings.Builder
	for _, s := range realMetalLBServices {
		pr := probers[s.name]
		if pr == nil {
			continue
		}
		as := pr.Stop()
		from, to, ok := productlab.LongestOutageRun(as, start)
		last := as[len(as)-1]
		if !ok || !last.OK() {
			t.Errorf("%s/%s: the client does not reach %v again: last attempt %v", s.namespace, s.name, before[s.namespace+"/"+s.name], last.Err)
		}
		fmt.Fprintf(&report, "\n  %-10s %-26s %-15v outage %-8v (%d of %d connections failed)",
			s.name, s.kind, before[s.namespace+"/"+s.name], to.Sub(from).Round(time.Millisecond), productlab.FailedAfter(as, start), len(as))
		if to.After(from) {
			fmt.Fprintf(&report, ", from %v to %v after MetalLB's stop began",
				from.Sub(stopped).Round(time.Millisecond), to.Sub(stopped).Round(time.Millisecond))
		}
	}
	t.Logf("hand-over from MetalLB %s to Herald, longest client-observed outage per address (a connection every %v):%s",
		metallb.Version, probeInterval, report.String())
}

// startRealMetalLB starts MetalLB's controller on the control-plane host and a
// speaker on every node (in the node's network namespace, as a host-network
// Pod runs), all with the lab's admin kubeconfig, and stops them in t's
// cleanup when the test has not. The controller runs without its webhooks;
// the speakers without memberlist (--ml-bindaddr unset), so that each
// considers every node eligible, as MetalLB documents for that mode. Each
// speaker reads its own Pod object at start, so the Pods are created here
// (Pending: the lab has no kubelet).
func startRealMetalLB(t *testing.T, l *productlab.Lab, mlb metallb.Binaries) []*netlab.Process {
	t.Helper()
	env := []string{"KUBECONFIG=" + l.Cluster.NodeKubeconfig}
	var procs []*netlab.Process
	names := make([]string, len(l.Cluster.Nodes))
	for i, n := range l.Cluster.Nodes {
		names[i] = n.Name()
	}
	if err := metallb.CreateSpeakerPods(t.Context(), l.Kube, names...); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Cluster.Nodes {
		procs = append(procs, n.StartProcess(netlab.ProcessSpec{Name: "metallb-speaker", Env: env,
			// Debug logs say why a speaker does or does not announce
			// (MetalLB's "shouldannounce" lines), shown if the test fails.
			Args: mlb.SpeakerArgs(n.Name(), "127.0.0.1", realMetalLBPort, "--log-level=debug")}))
	}
	procs = append(procs, l.Cluster.ControlPlane.StartProcess(netlab.ProcessSpec{Name: "metallb-controller", Env: env,
		Args: mlb.ControllerArgs(realMetalLBPort)}))
	// MetalLB's speaker (v0.15.3) decides a Service with the Nodes its
	// NodeReconciler has handed it so far, and a Node it learns of later
	// does not make it decide again (isNodeAvailableChanged ignores a new
	// Node): a Service it handles first, within a second of its start,
	// stays unannounced ("no available nodes"), as CI saw twice. In a
	// cluster the speakers run long before the Services; so here, every
	// speaker has handled every Node before the Services are written.
	netlab.Eventually(t, 60*time.Second, func(context.Context) error {
		for _, p := range procs {
			if p.Name() != "metallb-speaker" {
				continue
			}
			log := p.Log()
			for _, n := range names {
				if !strings.Contains(log, `"controller":"NodeReconciler","end reconcile":"/`+n+`"`) {
					return fmt.Errorf("MetalLB's speaker on %s has not handled Node %s yet", p.Host().Name(), n)
				}
			}
		}
		return nil
	})
	t.Cleanup(func() {
		for _, p := range procs {
			if !p.Exited() {
				_ = p.Kill()
			}
			if t.Failed() {
				t.Logf("--- MetalLB's %s on %s, its decisions and errors:\n%s\n--- its last lines:\n%s",
					p.Name(), p.Host().Name(), tail(decisionLines(p.Log()), 60), tail(p.Log(), 20))
			}
		}
	})
	return procs
}

// arpAnnouncer returns the node that answers the client's ARP request for
// addr, failing t unless exactly one node does.
func arpAnnouncer(t *testing.T, l *productlab.Lab, addr netip.Addr) string {
	t.Helper()
	var node string
	netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		macs, err := l.Client.ARPAll(ctx, addr, time.Second)
		if err != nil {
			return err
		}
		if len(macs) != 1 {
			return fmt.Errorf("%d MACs answer ARP for %v: %v", len(macs), addr, macs)
		}
		for _, n := range l.Cluster.Nodes {
			for _, link := range n.Links() {
				if mac, err := n.MAC(link.Name); err == nil && mac.String() == macs[0].String() {
					node = n.Name()
					return nil
				}
			}
		}
		return fmt.Errorf("%v answers ARP for %v: no node's", macs[0], addr)
	})
	return node
}

// decisionLines returns the lines of a MetalLB log that tell what it
// decided for a Service, or that report an error or a warning.
func decisionLines(log string) string {
	var keep []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warn"`) ||
			strings.Contains(line, "announce") || strings.Contains(line, "memberlist") || strings.Contains(line, "skipping") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
