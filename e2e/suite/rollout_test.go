package suite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
	"github.com/herald-dev/herald/speaker"
)

func init() { register(60, "rollout", testRollout) }

var rolloutV4 = netip.MustParsePrefix("198.51.100.142/31")

const (
	// rolloutInterval and rolloutTimeout are the client's probing: a new TCP
	// connection every interval, each given timeout to reach a pod.
	rolloutInterval = 10 * time.Millisecond
	rolloutTimeout  = time.Second
	// rolloutReady is how long a new pod has been ready before the old one it
	// replaces is deleted (a Deployment's minReadySeconds).
	rolloutReady = time.Second
	// rolloutTerminating is how long a replaced pod stays terminating but serving
	// (its preStop hook and graceful shutdown) before it is gone.
	rolloutTerminating = 2 * time.Second
	// rolloutMaxFailedPerMove bounds the connections one move of the address may
	// break: those whose handshake is under way when the client learns the new
	// node's MAC. Their SYN went to the old node, their ACK goes to the new one,
	// which has no connection-tracking entry for them and answers with a reset.
	// No layer-2 handover can save those; with a connection every 10 ms and a
	// handshake well under that, at most one or two are in flight.
	rolloutMaxFailedPerMove = 2
)

// rollout is one rolling update of a Local Service's pods, probed by the client.
type rollout struct {
	t      *testing.T
	l      *productlab.Lab
	app    *productlab.App
	addr   netip.Addr
	start  time.Time
	prober *productlab.Prober
	// owner is the node answering ARP for addr; moves counts its changes.
	owner string
	moves int

	timeline []string
}

// startRollout waits until a node with a ready pod of app answers for addr and
// the client reaches it, then starts probing.
func startRollout(t *testing.T, l *productlab.Lab, app *productlab.App, addr netip.Addr) *rollout {
	t.Helper()
	r := &rollout{t: t, l: l, app: app, addr: addr}
	// Wait for the elected node, not for any node with a ready pod: the app's
	// first pods become ready a few milliseconds apart, and the first one's node
	// may answer for a moment before the election settles on the other.
	var withPods []string
	for _, n := range l.Cluster.NodeNames() {
		if hasReadyPod(app, n) == nil {
			withPods = append(withPods, n)
		}
	}
	elected := speaker.Ranking(addr, withPods)[0]
	r.owner = l.WaitAnnouncer(addr, 30*time.Second, func(node string) error {
		if node != elected {
			return fmt.Errorf("%s answers for %v, want %s, elected among the nodes with a ready pod %v", node, addr, elected, withPods)
		}
		return nil
	})
	l.WaitConnect(addr, 80, 30*time.Second, podOn(l.Node(r.owner)))
	r.start = time.Now()
	r.prober = l.Probe(addr, 80, rolloutInterval, rolloutTimeout)
	t.Cleanup(func() { r.prober.Stop() })
	waitProbes(t, r.prober, r.start, 50)
	r.mark("%s answers ARP for %v", r.owner, addr)
	return r
}

// ready accepts a node that runs a ready pod of the app.
func (r *rollout) ready(node string) error { return hasReadyPod(r.app, node) }

func (r *rollout) mark(format string, args ...any) {
	r.timeline = append(r.timeline, fmt.Sprintf("%7v  %s", time.Since(r.start).Round(time.Millisecond), fmt.Sprintf(format, args...)))
}

// replace replaces old with a new pod on node as a Deployment does: the new pod
// starts and is ready for rolloutReady, then old is deleted: terminating but
// serving for rolloutTerminating (its server still answers), then removed from
// the EndpointSlices and its server stopped. While old still serves, the
// address must already be answered by a node with a ready pod. settling, when
// not nil, runs as soon as the new pod is ready.
func (r *rollout) replace(old *netlab.Pod, node *netlab.Node, settling func()) {
	r.t.Helper()
	np := r.app.AddPod(node, netlab.EndpointReady)
	r.mark("new pod %s ready on %s", np.Name, node.Name())
	start := time.Now()
	if settling != nil {
		settling()
	}
	time.Sleep(rolloutReady - time.Since(start))
	r.app.Set(netlab.EndpointTerminatingServing, old)
	r.mark("old pod %s on %s terminating, still serving", old.Name, old.Node.Name())
	r.follow()
	time.Sleep(rolloutTerminating)
	r.app.Remove(old)
	r.mark("old pod %s removed, its server stopped", old.Name)
	r.follow()
}

// follow waits until a node with a ready pod answers ARP, and notes a move.
func (r *rollout) follow() {
	r.t.Helper()
	owner := r.l.WaitAnnouncer(r.addr, 30*time.Second, r.ready)
	if owner != r.owner {
		r.moves++
		r.mark("%s answers ARP (was %s)", owner, r.owner)
		r.owner = owner
	}
}

// finish probes 100 more connections, stops, and returns the failed attempts and
// all of them.
func (r *rollout) finish() (failed, attempts []productlab.Attempt) {
	r.t.Helper()
	waitProbes(r.t, r.prober, time.Now(), 100)
	attempts = r.prober.Stop()
	failed = productlab.Failed(attempts)
	r.t.Logf("rollout: %d of %d client connections failed (one every %v, %v timeout) over %v; the address moved %d times; timeline:\n%s",
		len(failed), len(attempts), rolloutInterval, rolloutTimeout, time.Since(r.start).Round(time.Millisecond), r.moves, strings.Join(r.timeline, "\n"))
	if len(failed) > 0 {
		r.t.Logf("failed connections (time since the start): %v", describeFailures(failed, r.start))
		logFailedConnections(r.t, r.l, r.addr, failed)
	}
	return failed, attempts
}

func testRollout(t *testing.T, l *productlab.Lab) {
	const pool = "e2e-rollout"
	l2Pool(t, l, pool, rolloutV4)

	t.Run("pods replaced one by one on their nodes: the address stays and no connection fails", func(t *testing.T) {
		l := l.For(t)
		const svc = "rollout-stay"
		applyService(t, l, lbService{name: svc, pool: pool, local: true})
		addr := l.WaitAddresses("default", svc, 1, 30*time.Second)[0]
		app := l.NewApp("default", svc, productlab.WebPort, l.Node("node1"), l.Node("node2"))
		r := startRollout(t, l, app, addr)
		owner := r.owner
		// The announcing node's pod goes first: its node keeps serving through the
		// new pod, so the address must not move at all.
		old := app.Pods()
		if old[0].Node.Name() != owner {
			old[0], old[1] = old[1], old[0]
		}
		for _, p := range old {
			r.replace(p, p.Node, nil)
		}
		failed, attempts := r.finish()
		if r.owner != owner || r.moves != 0 {
			t.Errorf("the address moved %d times (now on %s), want it to stay on %s, whose pod was replaced on the node", r.moves, r.owner, owner)
		}
		if len(failed) > 0 {
			t.Errorf("%d of %d connections failed during the rollout, want 0; failures (time since the start): %v",
				len(failed), len(attempts), describeFailures(failed, r.start))
		}
	})

	t.Run("pods replaced one by one on a node that outranks the announcing one: the address moves only once that node can forward", func(t *testing.T) {
		l := l.For(t)
		const svc = "rollout-move"
		applyService(t, l, lbService{name: svc, pool: pool, local: true})
		addr := l.WaitAddresses("default", svc, 1, 30*time.Second)[0]
		// The pods start on the second and third nodes of the election's ranking
		// for the address, so the second announces; every new pod starts on the
		// first, which outranks it. The new node's kube-proxy programs the new
		// pod some time after the EndpointSlice says it is ready (27 ms in this
		// lab, up to its --iptables-min-sync-period in a cluster), and drops the
		// Service's traffic until then: the speakers' --takeover-delay (2 s) keeps
		// the address on the announcing node, which still forwards, until the new
		// node has settled, then it moves (once).
		rank := speaker.Ranking(addr, l.Cluster.NodeNames())
		app := l.NewApp("default", svc, productlab.WebPort, l.Node(rank[1]), l.Node(rank[2]))
		created := time.Now()
		r := startRollout(t, l, app, addr)
		// A new node waits only for a node that has forwarded for the takeover
		// delay (the first pods of a Service wait for nothing): let the first
		// pods come of age.
		time.Sleep(time.Until(created.Add(speaker.DefaultTakeoverDelay + 500*time.Millisecond)))
		if r.owner != rank[1] {
			t.Fatalf("%s answers ARP for %v, want %s, the first node with a pod in the election's ranking %v", r.owner, addr, rank[1], rank)
		}
		old := app.Pods()
		if old[0].Node.Name() == r.owner {
			old[0], old[1] = old[1], old[0]
		}
		// The first replacement leaves the announcing node's pod alone: only the
		// new node's settling decides whether the address moves at once.
		r.replace(old[0], l.Node(rank[0]), func() {
			names, err := l.Answering(t.Context(), addr)
			r.mark("while the new pod settles, %v answer ARP (err %v)", names, err)
			if err != nil || len(names) != 1 || names[0] != rank[1] {
				t.Errorf("while the new pod on %s settles, %v answer for %v (err %v), want %s, whose pod is ready and programmed", rank[0], names, addr, err, rank[1])
			}
		})
		r.replace(old[1], l.Node(rank[0]), nil)
		failed, attempts := r.finish()
		if r.moves != 1 || r.owner != rank[0] {
			t.Errorf("the address moved %d times, to %s, want 1 move, to %s", r.moves, r.owner, rank[0])
		}
		// A connection may only fail by the reset of a handshake under way at the
		// move; a dropped one (a timeout) means the address reached a node that
		// could not forward yet.
		resets, dropped := splitResets(failed)
		if len(dropped) > 0 {
			t.Errorf("%d of %d connections failed otherwise than by a reset during the rollout, want 0; failures (time since the start): %v",
				len(dropped), len(attempts), describeFailures(dropped, r.start))
		}
		if limit := rolloutMaxFailedPerMove * r.moves; len(resets) > limit {
			t.Errorf("%d of %d connections were reset during the rollout, want at most %d (%d per move of the address); resets (time since the start): %v",
				len(resets), len(attempts), limit, rolloutMaxFailedPerMove, describeFailures(resets, r.start))
		}
	})
}

// splitResets splits failed attempts into those reset by the peer (a handshake
// that straddled a move of the address) and the others.
func splitResets(failed []productlab.Attempt) (resets, others []productlab.Attempt) {
	for _, a := range failed {
		if errors.Is(a.Err, syscall.ECONNRESET) {
			resets = append(resets, a)
		} else {
			others = append(others, a)
		}
	}
	return resets, others
}

// hasReadyPod reports an error unless node runs a ready pod of app (per the
// app's pods still in its EndpointSlices).
func hasReadyPod(app *productlab.App, node string) error {
	for _, p := range app.Pods() {
		if p.Node.Name() == node && app.State(p) == netlab.EndpointReady {
			return nil
		}
	}
	return fmt.Errorf("no ready pod of %s on %s", app.Service, node)
}

// waitProbes waits until the prober has at least n successful connections that
// started after since.
func waitProbes(t *testing.T, p *productlab.Prober, since time.Time, n int) {
	t.Helper()
	netlab.Eventually(t, 30*time.Second, func(context.Context) error {
		ok := 0
		for _, a := range p.Attempts() {
			if a.OK() && a.Start.After(since) {
				ok++
			}
		}
		if ok < n {
			return fmt.Errorf("%d successful connections, want %d", ok, n)
		}
		return nil
	})
}
