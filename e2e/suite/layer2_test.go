package suite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(10, "layer 2", testLayer2) }

// l2Pool applies an IPPool named name holding prefixes, serving only Services that
// name it (autoAssign: false), and an L2Advertisement of the same name announcing
// it; both are deleted when t ends, after the Services t made (cleanups run last
// in, first out), waiting until the controller has freed the pool.
func l2Pool(t *testing.T, l *productlab.Lab, name string, prefixes ...netip.Prefix) {
	t.Helper()
	l.Apply(productlab.L2PoolManifest(name, false, prefixes...))
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--ignore-not-found", "--timeout=60s", "l2advertisement/"+name, "ippool/"+name); err != nil {
			t.Errorf("clean up pool %s: %v\n%s", name, err, out)
		}
	})
}

// lbService is a Service of type LoadBalancer on port 80 (target port
// productlab.WebPort) in the default namespace, allocated from pool.
type lbService struct {
	name, pool string
	// local sets externalTrafficPolicy: Local (else Cluster).
	local bool
	// families are the Service's IP families: nil is IPv4 only; two make it
	// RequireDualStack.
	families []string
}

// applyService creates s and deletes it when t ends.
func applyService(t *testing.T, l *productlab.Lab, s lbService) {
	t.Helper()
	policy := "Cluster"
	if s.local {
		policy = "Local"
	}
	families := s.families
	if families == nil {
		families = []string{"IPv4"}
	}
	familyPolicy := "SingleStack"
	if len(families) > 1 {
		familyPolicy = "RequireDualStack"
	}
	l.Apply(fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: default
  annotations: {herald.dev/pool: %s}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  externalTrafficPolicy: %s
  ipFamilyPolicy: %s
  ipFamilies: [%s]
  ports: [{name: http, port: 80, targetPort: %d}]
`, s.name, s.pool, policy, familyPolicy, strings.Join(families, ", "), productlab.WebPort))
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--ignore-not-found", "--timeout=60s", "-n", "default", "service/"+s.name); err != nil {
			t.Errorf("clean up service %s: %v\n%s", s.name, err, out)
		}
	})
}

// inPrefix fails t unless every address is in one of prefixes.
func inPrefix(t *testing.T, addrs []netip.Addr, prefixes ...netip.Prefix) {
	t.Helper()
	for _, a := range addrs {
		if !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) }) {
			t.Fatalf("address %v is outside the pool's %v", a, prefixes)
		}
	}
}

// podOn accepts a reply from a pod running on node.
func podOn(node *netlab.Node) func(netlab.PodReply) error {
	return func(r netlab.PodReply) error {
		for _, p := range node.Pods() {
			if p.Name == r.Pod {
				return nil
			}
		}
		return fmt.Errorf("pod %s answered, want a pod on %s", r.Pod, node.Name())
	}
}

// oneOf accepts a node among names.
func oneOf(names ...string) func(string) error {
	return func(n string) error {
		if !slices.Contains(names, n) {
			return fmt.Errorf("want one of %v", names)
		}
		return nil
	}
}

// not accepts any node but name.
func not(name string) func(string) error {
	return func(n string) error {
		if n == name {
			return fmt.Errorf("want another node than %s", name)
		}
		return nil
	}
}

// keepsClientAddr checks over several connections that they all reach a pod on
// node and that the pod sees the client's own LAN address as the source.
func keepsClientAddr(t *testing.T, l *productlab.Lab, addr netip.Addr, node *netlab.Node) {
	t.Helper()
	want := l.Client.Addr4()
	if addr.Is6() {
		want = l.Client.Addr6()
	}
	for range 5 {
		r, err := l.Connect(t.Context(), addr, 80)
		if err != nil {
			t.Fatalf("connect to %v: %v", addr, err)
		}
		if err := podOn(node)(r); err != nil {
			t.Errorf("through %v: %v", addr, err)
		}
		if r.Client.Addr() != want {
			t.Errorf("pod %s saw the connection from %v, want the client's own address %v", r.Pod, r.Client.Addr(), want)
		}
	}
}

var (
	layer2V4 = netip.MustParsePrefix("198.51.100.136/30")
	layer2V6 = netip.MustParsePrefix("2001:db8:1::1:100/121")
)

func testLayer2(t *testing.T, l *productlab.Lab) {
	const pool = "e2e-layer2"
	l2Pool(t, l, pool, layer2V4, layer2V6)
	web := l.WebPods()
	webNodes := []string{web[0].Node.Name(), web[1].Node.Name()}

	t.Run("Cluster policy: one node answers ARP and the client reaches a pod", func(t *testing.T) {
		l := l.For(t)
		applyService(t, l, lbService{name: "l2-cluster", pool: pool})
		addrs := l.WaitAddresses("default", "l2-cluster", 1, 30*time.Second)
		inPrefix(t, addrs, layer2V4)
		l.Backend("default", "l2-cluster", productlab.WebPort, web...)
		owner := l.WaitAnnouncer(addrs[0], 30*time.Second, oneOf(l.Cluster.NodeNames()...))
		l.WaitStatusAnnouncer(addrs[0], "default", "l2-cluster", owner, 30*time.Second)
		r := l.WaitConnect(addrs[0], 80, 30*time.Second, nil)
		if !slices.ContainsFunc(web, func(p *netlab.Pod) bool { return p.Name == r.Pod }) {
			t.Errorf("pod %s answered, want one of the Service's pods", r.Pod)
		}
		t.Logf("%s answers ARP for %v; the client reached pod %s", owner, addrs[0], r.Pod)
	})

	t.Run("Local policy: the announcing node has a ready pod and the client's address is kept", func(t *testing.T) {
		l := l.For(t)
		applyService(t, l, lbService{name: "l2-local", pool: pool, local: true})
		addrs := l.WaitAddresses("default", "l2-local", 1, 30*time.Second)
		inPrefix(t, addrs, layer2V4)
		l.Backend("default", "l2-local", productlab.WebPort, web...)
		owner := l.WaitAnnouncer(addrs[0], 30*time.Second, oneOf(webNodes...))
		l.WaitStatusAnnouncer(addrs[0], "default", "l2-local", owner, 30*time.Second)
		l.WaitEvent("default", "l2-local", "Announcing", fmt.Sprintf("Node %s announces %v over ARP", owner, addrs[0]), 30*time.Second)
		l.WaitConnect(addrs[0], 80, 30*time.Second, nil)
		keepsClientAddr(t, l, addrs[0], l.Node(owner))
	})

	t.Run("endpoints move, then the announcement moves", func(t *testing.T) {
		l := l.For(t)
		applyService(t, l, lbService{name: "l2-move", pool: pool, local: true})
		addrs := l.WaitAddresses("default", "l2-move", 1, 30*time.Second)
		node1, node2 := l.Node("node1"), l.Node("node2")
		app := l.NewApp("default", "l2-move", productlab.WebPort, node1)
		l.WaitAnnouncer(addrs[0], 30*time.Second, oneOf("node1"))
		l.WaitConnect(addrs[0], 80, 30*time.Second, podOn(node1))

		old := app.Pods()[0]
		app.AddPod(node2, netlab.EndpointReady)
		app.Remove(old)
		l.WaitAnnouncer(addrs[0], 30*time.Second, oneOf("node2"))
		l.WaitStatusAnnouncer(addrs[0], "default", "l2-move", "node2", 30*time.Second)
		l.WaitEvent("default", "l2-move", "Announcing",
			fmt.Sprintf("Node node2 announces %v over ARP on eth0, taking over from node node1.", addrs[0]), 30*time.Second)
		l.WaitConnect(addrs[0], 80, 30*time.Second, podOn(node2))
		keepsClientAddr(t, l, addrs[0], node2)
	})

	t.Run("IPv6 over NDP", func(t *testing.T) {
		l := l.For(t)
		applyService(t, l, lbService{name: "l2-ipv6", pool: pool, families: []string{"IPv6"}})
		addrs := l.WaitAddresses("default", "l2-ipv6", 1, 30*time.Second)
		inPrefix(t, addrs, layer2V6)
		l.Backend("default", "l2-ipv6", productlab.WebPort, web...)
		owner := l.WaitAnnouncer(addrs[0], 30*time.Second, oneOf(l.Cluster.NodeNames()...))
		l.WaitStatusAnnouncer(addrs[0], "default", "l2-ipv6", owner, 30*time.Second)
		l.WaitEvent("default", "l2-ipv6", "Announcing", fmt.Sprintf("Node %s announces %v over NDP", owner, addrs[0]), 30*time.Second)
		r := l.WaitConnect(addrs[0], 80, 30*time.Second, nil)
		t.Logf("%s answers NDP for %v; the client reached pod %s", owner, addrs[0], r.Pod)
	})

	t.Run("dual stack: both addresses answer and reach pods", func(t *testing.T) {
		l := l.For(t)
		applyService(t, l, lbService{name: "l2-dual", pool: pool, local: true, families: []string{"IPv4", "IPv6"}})
		addrs := l.WaitAddresses("default", "l2-dual", 2, 30*time.Second)
		slices.SortFunc(addrs, netip.Addr.Compare)
		if !addrs[0].Is4() || !addrs[1].Is6() {
			t.Fatalf("addresses %v, want one IPv4 and one IPv6", addrs)
		}
		inPrefix(t, addrs[:1], layer2V4)
		inPrefix(t, addrs[1:], layer2V6)
		l.Backend("default", "l2-dual", productlab.WebPort, web...)
		for _, a := range addrs {
			owner := l.WaitAnnouncer(a, 30*time.Second, oneOf(webNodes...))
			l.WaitStatusAnnouncer(a, "default", "l2-dual", owner, 30*time.Second)
			l.WaitConnect(a, 80, 30*time.Second, nil)
			keepsClientAddr(t, l, a, l.Node(owner))
			t.Logf("%s answers for %v", owner, a)
		}
	})

	t.Run("deleting the Service withdraws its address", func(t *testing.T) {
		l := l.For(t)
		applyService(t, l, lbService{name: "l2-gone", pool: pool})
		addrs := l.WaitAddresses("default", "l2-gone", 1, 30*time.Second)
		l.Backend("default", "l2-gone", productlab.WebPort, web...)
		l.WaitAnnouncer(addrs[0], 30*time.Second, nil)
		if out, err := l.Kubectl("delete", "--timeout=60s", "-n", "default", "service/l2-gone"); err != nil {
			t.Fatalf("delete service: %v\n%s", err, out)
		}
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			names, err := l.Answering(ctx, addrs[0])
			if errors.Is(err, netlab.ErrNoAnswer) {
				return nil
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%v still answer for %v", names, addrs[0])
		})
	})
}
