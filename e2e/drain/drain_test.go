// Package drain_test proves the speaker's drain of planned moves (issue 18) in the
// product lab: real kube-proxy, real kernel, real speakers, real FRR. A TCP
// connection open through a node when its traffic moves to another node in a
// planned way keeps exchanging data, because the node the traffic now reaches
// forwards the connection to the old node, whose connection tracking still holds
// it; without the drain, the same connection is reset. The planned moves: a
// graceful stop of the announcing speaker (layer 2), a rollout of a
// Local-policy Service's pod onto another node (layer 2), and the last local
// endpoint of a Local-policy Service leaving a node that advertises it over BGP
// (the router rehashes the node's flows onto the others).
package drain_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

const (
	echoPort    = 8081
	pool        = "drain"
	serviceName = "drain"
	// drainArg turns the drain on, long enough that no drain of the test ends
	// during it.
	drainArg = "--drain-window=10m"
)

// TestGracefulStopKeepsConnections holds one connection across a graceful stop of
// the announcing node's speaker, first without the drain (the connection is reset:
// the control that shows the test can fail), then with it (the connection goes on).
func TestGracefulStopKeepsConnections(t *testing.T) {
	l := productlab.New(t, productlab.Options{})
	ctx := t.Context()
	l.Apply(productlab.L2PoolManifest(pool, false, netlab.L2PoolV4))

	// node3 announces the address (it ranks first) and runs no pod: the echo
	// pod runs on node1, so the connection crosses kube-proxy's NAT on node3.
	nodes := l.Cluster.Nodes
	old := nodes[2]
	addr, ok := l.AddrRankingFirst(netlab.L2PoolV4, 10, old.Name())
	if !ok {
		t.Fatalf("no address of %s ranks %s first", netlab.L2PoolV4, old.Name())
	}
	pod := echoPod(t, nodes[0], "echo-node1")
	l.Apply(echoService(serviceName, pool, "Cluster", addr))
	if err := l.Cluster.SetEndpoints(ctx, "default", serviceName, netlab.Endpoint{Pod: pod, State: netlab.EndpointReady}); err != nil {
		t.Fatalf("%v", err)
	}
	l.WaitAddresses("default", serviceName, 1, 60*time.Second)

	t.Run("without the drain the connection is reset", func(t *testing.T) {
		l := l.For(t)
		conn := openThrough(t, l, addr, old)
		next := moveGracefully(t, l, addr, old)
		_, err := conn.exchange("after the move")
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after %s took %s over without the drain: got %v, want the connection reset (ECONNRESET): "+
				"then this test cannot tell the drain's effect", next, addr, err)
		}
	})

	t.Run("with the drain the connection goes on", func(t *testing.T) {
		l := l.For(t)
		// Every speaker with the drain, node3 last so that it takes the address
		// back.
		restartWithDrain(t, l)
		conn := openThrough(t, l, addr, old)
		next := moveGracefully(t, l, addr, old)
		got, err := conn.exchange("after the move")
		if err != nil {
			t.Fatalf("after %s took %s over with the drain, the connection broke: %v\n%s", next, addr, err, l.Logs(20))
		}
		if want := pod.Name + " after the move"; got != want {
			t.Fatalf("after the move the pod answered %q, want %q", got, want)
		}
		v, err := l.SpeakerMetric(ctx, l.Node(next), "herald_speaker_drained_addresses")
		if err != nil || v != 1 {
			t.Errorf("speaker on %s: herald_speaker_drained_addresses %v (%v), want 1", next, v, err)
		}
		// A second exchange: every later segment of the connection is drained too.
		if got, err := conn.exchange("again"); err != nil || got != pod.Name+" again" {
			t.Fatalf("second exchange after the move: %q, %v", got, err)
		}
		l.StartSpeaker(old, drainArg)
		l.WaitSpeakerReady(old)
	})
}

// echoConn is a connection from the client to the echo pod.
type echoConn struct {
	c     net.Conn
	lines *bufio.Reader
}

// exchange sends line and returns the pod's answer.
func (e *echoConn) exchange(line string) (string, error) {
	// A limit on a broken connection's wait, not a measurement.
	_ = e.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(e.c, "%s\n", line); err != nil {
		return "", err
	}
	s, err := e.lines.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// openThrough waits until old alone answers ARP for addr, opens a connection to
// addr:80 from the client, checks that the client's neighbour entry names old, and
// exchanges a first line.
func openThrough(t *testing.T, l *productlab.Lab, addr netip.Addr, old *netlab.Node) *echoConn {
	t.Helper()
	l.WaitAnnouncer(addr, 60*time.Second, func(n string) error {
		if n != old.Name() {
			return fmt.Errorf("want %s", old.Name())
		}
		return nil
	})
	e, _ := dialEcho(t, l, addr)
	// The connection made the client's kernel resolve addr: only old answers.
	waitNeighbour(t, l, addr, old)
	return e
}

// dialEcho opens a connection to addr:80 from the client, reads the greeting,
// exchanges a first line, and returns the connection and the name of the pod
// that answered.
func dialEcho(t *testing.T, l *productlab.Lab, addr netip.Addr) (*echoConn, string) {
	t.Helper()
	return dialEchoFrom(t, l, addr, 0)
}

// dialEchoFrom is dialEcho from the client's port port (any port when 0),
// which may be in TIME_WAIT: the socket reuses the address, and the client's
// namespace must allow the reuse (net.ipv4.tcp_tw_reuse=1).
func dialEchoFrom(t *testing.T, l *productlab.Lab, addr netip.Addr, port int) (*echoConn, string) {
	t.Helper()
	var c net.Conn
	err := l.Client.Do(func() error {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		if port != 0 {
			d.LocalAddr = &net.TCPAddr{Port: port}
		}
		var err error
		c, err = d.DialContext(t.Context(), "tcp", netip.AddrPortFrom(addr, 80).String())
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s from port %d: %v", addr, port, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e := &echoConn{c: c, lines: bufio.NewReader(c)}
	if greeting, err := e.lines.ReadString('\n'); err != nil {
		t.Fatalf("greeting from %s: %q, %v", addr, greeting, err)
	}
	got, err := e.exchange("before the move")
	pod, ok := strings.CutSuffix(got, " before the move")
	if err != nil || !ok {
		t.Fatalf("first exchange with %s: %q, %v", addr, got, err)
	}
	return e, pod
}

// echoPod starts a pod named name on n whose server echoes each line after
// its name, on echoPort.
func echoPod(t *testing.T, n *netlab.Node, name string) *netlab.Pod {
	t.Helper()
	pod := n.AddPod(name)
	server := pod.Start("podserver", netlab.BuildGo(t, netlab.PodServerPackage), "-name", pod.Name,
		"-listen", fmt.Sprintf(":%d", echoPort), "-echo")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := server.WaitLog(ctx, "listening on"); err != nil {
		t.Fatalf("%v", err)
	}
	return pod
}

// restartWithDrain restarts every speaker, in node order, with the drain on,
// and waits until each says it can drain.
func restartWithDrain(t *testing.T, l *productlab.Lab) {
	t.Helper()
	nodes := l.Cluster.Nodes
	for _, n := range nodes {
		l.StopSpeaker(n)
	}
	for _, n := range nodes {
		l.StartSpeaker(n, drainArg)
		l.WaitSpeakerReady(n)
	}
	for _, n := range nodes {
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			v, err := l.SpeakerMetric(ctx, n, "herald_speaker_drain_available")
			if err == nil && v != 1 {
				err = fmt.Errorf("speaker on %s: herald_speaker_drain_available %v, want 1", n.Name(), v)
			}
			return err
		})
	}
}

// moveGracefully stops old's speaker with SIGTERM and waits until another node
// answers for addr and the client's neighbour entry names it; it returns that node.
func moveGracefully(t *testing.T, l *productlab.Lab, addr netip.Addr, old *netlab.Node) string {
	t.Helper()
	l.StopSpeaker(old)
	next := l.WaitAnnouncer(addr, 60*time.Second, func(n string) error {
		if n == old.Name() {
			return errors.New("still the old owner")
		}
		return nil
	})
	waitNeighbour(t, l, addr, l.Node(next))
	return next
}

// echoService returns the manifest of a LoadBalancer Service named name in
// the default namespace with an address of pool (addr when valid), policy
// (Cluster or Local) and port 80 to echoPort.
func echoService(name, pool, policy string, addr netip.Addr) string {
	annotations := fmt.Sprintf("%s: %s", config.AnnotationPool, pool)
	if addr.IsValid() {
		annotations += fmt.Sprintf(", %s: %q", config.AnnotationAddresses, addr)
	}
	return fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: default
  annotations: {%s}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  externalTrafficPolicy: %s
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports: [{name: echo, port: 80, targetPort: %d, protocol: TCP}]
`, name, annotations, policy, echoPort)
}

// waitNeighbour waits until the client's neighbour entry for addr names n's MAC.
func waitNeighbour(t *testing.T, l *productlab.Lab, addr netip.Addr, n *netlab.Node) {
	t.Helper()
	mac := strings.ToLower(n.LAN.MAC.String())
	netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		out, err := l.Client.Run(ctx, "ip", "neigh", "show", addr.String())
		if err != nil {
			return err
		}
		if !strings.Contains(strings.ToLower(out), mac) {
			return fmt.Errorf("client's neighbour entry for %s: %q, want %s's MAC %s", addr, strings.TrimSpace(out), n.Name(), mac)
		}
		return nil
	})
}

// TestWithoutNetAdminTheSpeakerSaysSoAndWorks runs the speakers as deploy/default
// does (only NET_RAW) with the drain requested: each says the drain is unavailable,
// in its log and its metric, and still announces.
func TestWithoutNetAdminTheSpeakerSaysSoAndWorks(t *testing.T) {
	l := productlab.New(t, productlab.Options{Manifests: true, SpeakerArgs: []string{drainArg}})
	for _, n := range l.Cluster.Nodes {
		v, err := l.SpeakerMetric(t.Context(), n, "herald_speaker_drain_available")
		if err != nil || v != 0 {
			t.Errorf("speaker on %s without NET_ADMIN: herald_speaker_drain_available %v (%v), want 0", n.Name(), v, err)
		}
		if log := l.Speaker(n).Log(); !strings.Contains(log, "lacks CAP_NET_ADMIN") {
			t.Errorf("speaker on %s: no log line saying it lacks CAP_NET_ADMIN", n.Name())
		}
	}
	l.Apply(productlab.L2PoolManifest(pool, true, netlab.L2PoolV4))
	l.Apply(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
`)
	l.Backend("default", "web", productlab.WebPort, l.WebPods()...)
	addr := l.WaitAddresses("default", "web", 1, 60*time.Second)[0]
	l.WaitConnect(addr, 80, 60*time.Second, nil)
}
