package suite

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
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
	r.owner = l.WaitAnnouncer(addr, 30*time.Second, r.ready)
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
// address must already be answered by a node with a ready pod.
func (r *rollout) replace(old *netlab.Pod, node *netlab.Node) {
	r.t.Helper()
	np := r.app.AddPod(node, netlab.EndpointReady)
	r.mark("new pod %s ready on %s", np.Name, node.Name())
	time.Sleep(rolloutReady)
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
			r.replace(p, p.Node)
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

	t.Run("pods replaced one by one on other nodes: the address moves while the old pod still serves", func(t *testing.T) {
		l := l.For(t)
		const svc = "rollout-move"
		applyService(t, l, lbService{name: svc, pool: pool, local: true})
		addr := l.WaitAddresses("default", svc, 1, 30*time.Second)[0]
		// The pods start on the two nodes the election ranks first for the address,
		// and every new pod starts on the last one: so each old pod deleted is the
		// announcing node's, and the address has to move while it still serves. A
		// new pod never lands on a node that outranks the announcing one: that
		// moves the address at once, before kube-proxy on the new node has the
		// pod's rules, and the client's connections fail until it has: a known
		// limitation of the stateless election, left out of this scenario.
		rank := speaker.Ranking(addr, l.Cluster.NodeNames())
		app := l.NewApp("default", svc, productlab.WebPort, l.Node(rank[0]), l.Node(rank[1]))
		r := startRollout(t, l, app, addr)
		if r.owner != rank[0] {
			t.Fatalf("%s answers ARP for %v, want %s, the first of the election's ranking %v", r.owner, addr, rank[0], rank)
		}
		for _, p := range app.Pods() {
			if p.Node.Name() != r.owner {
				t.Fatalf("the old pod %s on %s is not on the announcing node %s", p.Name, p.Node.Name(), r.owner)
			}
			r.replace(p, l.Node(rank[2]))
		}
		failed, attempts := r.finish()
		if r.moves != 2 || r.owner != rank[2] {
			t.Errorf("the address moved %d times, to %s, want 2 moves, to %s", r.moves, r.owner, rank[2])
		}
		if limit := rolloutMaxFailedPerMove * r.moves; len(failed) > limit {
			t.Errorf("%d of %d connections failed during the rollout, want at most %d (%d per move of the address); failures (time since the start): %v",
				len(failed), len(attempts), limit, rolloutMaxFailedPerMove, describeFailures(failed, r.start))
		}
	})
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
