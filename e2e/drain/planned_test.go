package drain_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// AS numbers of the BGP test: the router's and the nodes'.
const (
	routerASN = 64512
	nodeASN   = 64513
)

// TestLocalRolloutKeepsConnections holds one connection to a layer-2,
// Local-policy Service whose only pod runs on node1 while a rolling update
// moves the pod to node2: the new pod becomes ready, then the old one turns
// terminating but serving, and the address moves to node2 (only a node with
// a ready endpoint may announce it). Without the drain the connection is
// reset (the control); with it node2 forwards it to node1, and node1's pod
// answers.
func TestLocalRolloutKeepsConnections(t *testing.T) {
	l := productlab.New(t, productlab.Options{})
	ctx := t.Context()
	l.Apply(productlab.L2PoolManifest(pool, false, netlab.L2PoolV4))
	nodes := l.Cluster.Nodes
	oldPod, newPod := echoPod(t, nodes[0], "echo-node1"), echoPod(t, nodes[1], "echo-node2")
	addr := netlab.NthAddr(netlab.L2PoolV4.Addr(), 10)
	l.Apply(echoService(serviceName, pool, "Local", addr))
	set := func(t *testing.T, eps ...netlab.Endpoint) {
		t.Helper()
		if err := l.Cluster.SetEndpoints(ctx, "default", serviceName, eps...); err != nil {
			t.Fatalf("%v", err)
		}
	}
	ready := func(p *netlab.Pod) netlab.Endpoint { return netlab.Endpoint{Pod: p, State: netlab.EndpointReady} }
	set(t, ready(oldPod))
	l.WaitAddresses("default", serviceName, 1, 60*time.Second)

	// roll opens a connection through node1, rolls the pod over to node2, and
	// returns the connection once the client's neighbour entry names node2;
	// then the pod is back on node1 alone.
	roll := func(t *testing.T, l *productlab.Lab) *echoConn {
		set(t, ready(oldPod))
		conn := openThrough(t, l, addr, nodes[0])
		set(t, ready(oldPod), ready(newPod))
		set(t, netlab.Endpoint{Pod: oldPod, State: netlab.EndpointTerminatingServing}, ready(newPod))
		l.WaitAnnouncer(addr, 60*time.Second, func(n string) error {
			if n != nodes[1].Name() {
				return fmt.Errorf("want %s", nodes[1].Name())
			}
			return nil
		})
		waitNeighbour(t, l, addr, nodes[1])
		t.Cleanup(func() { set(t, ready(oldPod)) })
		return conn
	}

	t.Run("without the drain the connection is reset", func(t *testing.T) {
		l := l.For(t)
		conn := roll(t, l)
		if _, err := conn.exchange("after the move"); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the rollout moved %s to %s without the drain: got %v, want the connection reset (ECONNRESET): "+
				"then this test cannot tell the drain's effect", addr, nodes[1].Name(), err)
		}
	})

	t.Run("with the drain the connection goes on", func(t *testing.T) {
		l := l.For(t)
		restartWithDrain(t, l)
		conn := roll(t, l)
		for _, line := range []string{"after the move", "again"} {
			got, err := conn.exchange(line)
			if err != nil {
				t.Fatalf("after the rollout moved %s to %s with the drain, the connection broke: %v\n%s", addr, nodes[1].Name(), err, l.Logs(20))
			}
			if want := oldPod.Name + " " + line; got != want {
				t.Fatalf("after the move the pod answered %q, want %q", got, want)
			}
		}
		// node2 saw only the client's half of the drained connection: its
		// tracking entry stays in a closing state once the client closes. A
		// new connection from the same client port must still reach node2's
		// own pod, not be taken for the old one and forwarded to node1
		// (the drain's connection timeouts, a second when closing; the
		// default, 60 s and more, caught it in a rollout measurement).
		port := conn.c.LocalAddr().(*net.TCPAddr).Port
		if err := conn.c.Close(); err != nil {
			t.Fatal(err)
		}
		l.Client.Sysctl("net.ipv4.tcp_tw_reuse=1")
		time.Sleep(3 * time.Second) // past the closing timeout, and tcp_tw_reuse's one second
		if _, pod := dialEchoFrom(t, l, addr, port); pod != newPod.Name {
			t.Fatalf("a new connection from the drained connection's client port %d, after it closed, was served by %s, want %s (node2's pod): "+
				"the closed connection's tracking on node2 took it for the drained one\n%s", port, pod, newPod.Name, l.Logs(20))
		}
	})
}

// TestLastLocalEndpointLeavingBGPKeepsConnections holds one connection to a
// Local-policy Service advertised over BGP by node1 and node2 (one pod on
// each; FRR spreads flows over both) while the pod of the node the
// connection goes through turns terminating but serving, as a deleted pod
// does: that node withdraws its route and FRR sends the flow to the other
// node. Without the drain the connection is reset there (the control); with
// it the other node forwards it back, and the old pod answers.
func TestLastLocalEndpointLeavingBGPKeepsConnections(t *testing.T) {
	l := productlab.New(t, productlab.Options{})
	ctx := t.Context()
	l.StartRouterBGP(pool, routerASN, nodeASN, false, netlab.RoutedPoolV4)
	nodes := l.Cluster.Nodes[:2]
	pods := []*netlab.Pod{echoPod(t, nodes[0], "echo-node1"), echoPod(t, nodes[1], "echo-node2")}
	l.Apply(echoService(serviceName, pool, "Local", netip.Addr{}))
	set := func(t *testing.T, eps ...netlab.Endpoint) {
		t.Helper()
		if err := l.Cluster.SetEndpoints(ctx, "default", serviceName, eps...); err != nil {
			t.Fatalf("%v", err)
		}
	}
	bothReady := []netlab.Endpoint{{Pod: pods[0], State: netlab.EndpointReady}, {Pod: pods[1], State: netlab.EndpointReady}}
	set(t, bothReady...)
	addr := l.WaitAddresses("default", serviceName, 1, 60*time.Second)[0]
	prefix := netip.PrefixFrom(addr, 32)

	// leave opens a connection, turns the pod that answered terminating but
	// serving, and returns the connection and that pod once the router's
	// kernel sends the prefix to the other node only; then both pods are
	// ready again.
	leave := func(t *testing.T, l *productlab.Lab) (*echoConn, *netlab.Pod) {
		l.WaitRouterNextHops(prefix, 60*time.Second, true, nodes...)
		conn, name := dialEcho(t, l, addr)
		i := slices.IndexFunc(pods, func(p *netlab.Pod) bool { return p.Name == name })
		if i < 0 {
			t.Fatalf("pod %q answered, not one of %s's", name, serviceName)
		}
		gone, other := pods[i], pods[1-i]
		set(t, netlab.Endpoint{Pod: gone, State: netlab.EndpointTerminatingServing}, netlab.Endpoint{Pod: other, State: netlab.EndpointReady})
		t.Cleanup(func() { set(t, bothReady...) })
		l.WaitRouterNextHops(prefix, 60*time.Second, true, other.Node)
		return conn, gone
	}

	t.Run("without the drain the connection is reset", func(t *testing.T) {
		l := l.For(t)
		conn, gone := leave(t, l)
		if _, err := conn.exchange("after the move"); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after %s withdrew %s without the drain: got %v, want the connection reset (ECONNRESET): "+
				"then this test cannot tell the drain's effect", gone.Node.Name(), addr, err)
		}
	})

	t.Run("with the drain the connection goes on", func(t *testing.T) {
		l := l.For(t)
		restartWithDrain(t, l)
		conn, gone := leave(t, l)
		for _, line := range []string{"after the move", "again"} {
			got, err := conn.exchange(line)
			if err != nil {
				t.Fatalf("after %s withdrew %s with the drain, the connection broke: %v\n%s", gone.Node.Name(), addr, err, l.Logs(20))
			}
			if want := gone.Name + " " + line; got != want {
				t.Fatalf("after the move the pod answered %q, want %q", got, want)
			}
		}
	})
}
