package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// TestECMPAndWithdraw: two nodes announcing the same /32 give FRR one route
// with two next hops; a node that withdraws takes only its own next hop away.
func TestECMPAndWithdraw(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 2})
	r, n1, n2 := l.Router(), l.Nodes[0], l.Nodes[1]
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, nil)})
	announce := func(n *Node, routes ...speakerbgp.Route) speakerbgp.Desired {
		p := n.Peer("r1", r, false)
		p.Routes = routes
		return speakerbgp.Desired{Peers: []speakerbgp.Peer{p}}
	}
	other := netip.MustParsePrefix("203.0.113.131/32")
	n1.Start(t, announce(n1, speakerbgp.Route{Prefix: hostRoute}, speakerbgp.Route{Prefix: other}))
	n2.Start(t, announce(n2, speakerbgp.Route{Prefix: hostRoute}, speakerbgp.Route{Prefix: other}))
	WaitNextHops(t, r, hostRoute, 30*time.Second, n1.Addr4(), n2.Addr4())
	WaitNextHops(t, r, other, 10*time.Second, n1.Addr4(), n2.Addr4())

	// Node 2 withdraws hostRoute only: FRR keeps node 1's next hop for it,
	// and both for the other route.
	n2.Apply(t, announce(n2, speakerbgp.Route{Prefix: other}))
	WaitNextHops(t, r, hostRoute, 10*time.Second, n1.Addr4())
	WaitNextHops(t, r, other, 10*time.Second, n1.Addr4(), n2.Addr4())
	// And announces it again.
	n2.Apply(t, announce(n2, speakerbgp.Route{Prefix: hostRoute}, speakerbgp.Route{Prefix: other}))
	WaitNextHops(t, r, hostRoute, 10*time.Second, n1.Addr4(), n2.Addr4())
}

// watchNextHops polls the router's next hops for prefix every interval and
// records when node's address leaves them, until stop is called.
type nextHopWatch struct {
	mu      sync.Mutex
	gone    time.Time
	back    time.Time // the first poll after gone that has the next hop again
	missing bool      // the prefix had no next hop at all at some poll
	stale   bool      // a path of the prefix was stale at some poll
	errs    []error
	stop    func()
	done    chan struct{}
}

func watchNextHops(r *netlab.Router, prefix netip.Prefix, node netip.Addr, interval time.Duration) *nextHopWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &nextHopWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			paths, err := Paths(ctx, r, prefix)
			now := time.Now()
			w.mu.Lock()
			if err != nil && ctx.Err() == nil {
				w.errs = append(w.errs, err)
			}
			if err == nil {
				has := false
				valid := 0
				for _, p := range paths {
					if p.Stale {
						w.stale = true
					}
					if p.Valid {
						valid++
						has = has || slices.Contains(p.NextHops, node)
					}
				}
				if valid == 0 {
					w.missing = true
				}
				if !has && w.gone.IsZero() {
					w.gone = now
				}
				if has && !w.gone.IsZero() && w.back.IsZero() {
					w.back = now
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// waitGone waits until the watch has seen the node's next hop leave.
func (w *nextHopWatch) waitGone(t *testing.T) {
	t.Helper()
	netlab.Eventually(t, 10*time.Second, func(context.Context) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gone.IsZero() {
			return fmt.Errorf("the watch has not seen the next hop leave (errors %v)", w.errs)
		}
		return nil
	})
}

// outage returns when the next hop first left and came back (zero when it
// did not); call it after result.
func (w *nextHopWatch) outage() (gone, back time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone, w.back
}

func (w *nextHopWatch) result() (gone time.Time, missing, stale bool, errs []error) {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone, w.missing, w.stale, w.errs
}

var failures = []failure{{name: "process killed"}, {name: "node cut off", cut: true}}

// TestNodeFailureWithBFD: with BFD (300 ms x 3) and a 90 s hold time, a
// failed node loses its next hop at FRR while the other node's stays. A
// killed speaker's kernel closes the TCP connection, which FRR sees at once;
// a node cut off from the LAN is detected by BFD, not by the hold timer. The
// times are logged; the figures are measured with cmd/measure-bgp.
func TestNodeFailureWithBFD(t *testing.T) {
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			l := NewLab(t, LabOptions{Nodes: 2})
			r, n1, n2 := l.Router(), l.Nodes[0], l.Nodes[1]
			r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
				c.BFD = true
				c.HoldTime, c.KeepaliveTime = 90*time.Second, 30*time.Second
			})})
			for _, n := range l.Nodes {
				p := n.Peer("r1", r, false)
				p.HoldTime = 90 * time.Second
				p.BFD = speakerbgp.BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 3}
				p.Routes = []speakerbgp.Route{{Prefix: hostRoute}}
				n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
			}
			WaitNextHops(t, r, hostRoute, 30*time.Second, n1.Addr4(), n2.Addr4())
			waitBFDUp(t, r, l.Nodes...)
			ps := n1.WaitPeer(t, "r1", 10*time.Second, func(ps speakerbgp.PeerStatus) error {
				if ps.BFD != speakerbgp.BFDUp {
					return fmt.Errorf("BFD %q", ps.BFD)
				}
				return nil
			})
			if ps.Counters.BFDPacketsReceived == 0 || ps.Counters.BFDPacketsSent == 0 {
				t.Errorf("BFD packet counters %+v", ps.Counters)
			}

			w := watchNextHops(r, hostRoute, n1.Addr4(), 20*time.Millisecond)
			failed := time.Now()
			if f.cut {
				// Cut off first, and kill only once node 1's speaker (still
				// running) has reported the BFD failure too.
				if err := n1.Links()[0].Detach(); err != nil {
					t.Fatal(err)
				}
				n1.WaitPeer(t, "r1", 10*time.Second, func(ps speakerbgp.PeerStatus) error {
					if !strings.Contains(ps.LastError, "BFD: no packet from the router") || ps.Counters.BFDFailures == 0 {
						return fmt.Errorf("no BFD failure reported")
					}
					return nil
				})
			}
			failure{}.failNode(t, n1) // kill
			WaitNextHops(t, r, hostRoute, 30*time.Second, n2.Addr4())
			w.waitGone(t)
			gone, missing, _, errs := w.result()
			if len(errs) > 0 {
				t.Fatalf("watching the router: %v", errs)
			}
			if missing {
				t.Errorf("the route had no next hop at some point: node 2's path must stay")
			}
			reset, err := LastReset(t.Context(), r, n1.Addr4())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("node 1's next hop left FRR %v after the failure (BFD 300ms x 3, hold time 90s); FRR: %s",
				gone.Sub(failed).Round(time.Millisecond), reset)
			if f.cut && !strings.Contains(strings.ToLower(reset), "bfd") {
				t.Errorf("router: node 1's last reset: %s; want BFD", reset)
			}
		})
	}
}

// TestNodeFailureWithoutBFD: without BFD, a node cut off from the LAN keeps
// its next hop at FRR until the hold timer (9 s here) expires. The time is
// logged.
func TestNodeFailureWithoutBFD(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 2})
	r, n1, n2 := l.Router(), l.Nodes[0], l.Nodes[1]
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
		c.HoldTime, c.KeepaliveTime = 9*time.Second, 3*time.Second
	})})
	for _, n := range l.Nodes {
		p := n.Peer("r1", r, false)
		p.HoldTime, p.KeepaliveTime = 9*time.Second, 3*time.Second
		p.Routes = []speakerbgp.Route{{Prefix: hostRoute}}
		n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
	}
	WaitNextHops(t, r, hostRoute, 30*time.Second, n1.Addr4(), n2.Addr4())
	w := watchNextHops(r, hostRoute, n1.Addr4(), 50*time.Millisecond)
	failed := time.Now()
	failure{cut: true}.failNode(t, n1)
	WaitNextHops(t, r, hostRoute, 30*time.Second, n2.Addr4())
	w.waitGone(t)
	gone, _, _, errs := w.result()
	if len(errs) > 0 {
		t.Fatalf("watching the router: %v", errs)
	}
	t.Logf("node 1's next hop left FRR %v after it was cut off (no BFD, hold time 9s)", gone.Sub(failed).Round(time.Millisecond))
	reset, err := LastReset(t.Context(), r, n1.Addr4())
	if err != nil || !strings.Contains(strings.ToLower(reset), "hold timer") {
		t.Errorf("router: node 1's last reset: %s (%v); want the hold timer", reset, err)
	}
}

func waitBFDUp(t *testing.T, r *netlab.Router, nodes ...*Node) {
	t.Helper()
	netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		peers, err := r.BFDPeers(ctx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if !slices.ContainsFunc(peers, func(p netlab.BFDPeer) bool { return p.Peer == n.Addr4() && p.Status == "up" }) {
				return fmt.Errorf("router: no BFD session up with %s: %+v", n.Addr4(), peers)
			}
			nb, _, err := r.Neighbor(ctx, n.Addr4())
			if err != nil {
				return err
			}
			if nb.BFDStatus != "Up" {
				return fmt.Errorf("router: bgpd sees BFD %q for %s", nb.BFDStatus, n.Addr4())
			}
		}
		return nil
	})
}

// TestGracefulRestart: a speaker with graceful restart that is killed and
// restarted keeps its routes at FRR, stale in between, then refreshed, with no
// poll finding the route gone. Without graceful restart the same restart
// takes the route away, which shows the watch would see a gap.
func TestGracefulRestart(t *testing.T) {
	for _, tt := range []struct {
		name    string
		gr, bfd bool
		restart func(t *testing.T, n *Node, d speakerbgp.Desired)
	}{
		{"SIGTERM with BFD", true, true, func(t *testing.T, n *Node, d speakerbgp.Desired) {
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
			n.Start(t, d)
		}},
		{"SIGKILL", true, false, func(t *testing.T, n *Node, d speakerbgp.Desired) {
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
			n.Start(t, d)
		}},
		{"SIGTERM", true, false, func(t *testing.T, n *Node, d speakerbgp.Desired) {
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
			n.Start(t, d)
		}},
		{"SIGTERM without graceful restart", false, false, func(t *testing.T, n *Node, d speakerbgp.Desired) {
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
			n.Start(t, d)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLab(t, LabOptions{Nodes: 1})
			r, n := l.Router(), l.Nodes[0]
			r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
				c.BFD = tt.bfd
			})})
			p := n.Peer("r1", r, false)
			p.BFD.Enabled = tt.bfd
			p.GracefulRestart = speakerbgp.GracefulRestart{Enabled: tt.gr, RestartTime: 60 * time.Second}
			p.Routes = []speakerbgp.Route{{Prefix: hostRoute}, {Prefix: hostRoute6}}
			d := speakerbgp.Desired{Peers: []speakerbgp.Peer{p}}
			n.Start(t, d)
			WaitNextHops(t, r, hostRoute, 30*time.Second, n.Addr4())
			WaitNextHops(t, r, hostRoute6, 10*time.Second, n.Addr6())

			w := watchNextHops(r, hostRoute, n.Addr4(), 20*time.Millisecond)
			restarted := time.Now()
			tt.restart(t, n, d)
			if !tt.gr {
				w.waitGone(t)
			}
			n.WaitPeer(t, "r1", 30*time.Second, Established)
			// Refreshed: valid, not stale, through the node.
			netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
				for _, prefix := range []netip.Prefix{hostRoute, hostRoute6} {
					paths, err := Paths(ctx, r, prefix)
					if err != nil {
						return err
					}
					if len(paths) != 1 || paths[0].Stale || !paths[0].Valid {
						return fmt.Errorf("paths of %s: %+v, want one valid, not stale", prefix, paths)
					}
				}
				return nil
			})
			gone, missing, stale, errs := w.result()
			if len(errs) > 0 {
				t.Fatalf("watching the router: %v", errs)
			}
			t.Logf("restart at %v: route gone at %v, missing %v, stale seen %v, refreshed by %v",
				restarted.Format("15:04:05.000"), gone.Format("15:04:05.000"), missing, stale, time.Since(restarted).Round(time.Millisecond))
			if tt.gr {
				if missing || !gone.IsZero() {
					t.Errorf("with graceful restart the route left the router at %v", gone)
				}
				if !stale {
					t.Errorf("the route was never stale: the restart was not seen as graceful")
				}
			} else if !missing {
				t.Errorf("without graceful restart the route never left the router")
			}
		})
	}
}
