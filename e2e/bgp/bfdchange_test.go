package bgp

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// TestBFDChange: against FRR with BFD configured for the node, turning BFD
// on for an Established session keeps the session (FRR counts no dropped
// connection, the speaker no drop, the route never leaves the router) and
// brings BFD up at both ends. Changing the timers of the BFD session once it
// is up re-creates the session (GoBGP v4.9.0 can only restart a BFD
// session, which FRR would take for a failure: docs/bgp.md), and FRR's BFD
// session then runs with the new timers. The outage of the second change is
// logged.
func TestBFDChange(t *testing.T) {
	l := NewLab(t, LabOptions{Nodes: 1})
	r, n := l.Router(), l.Nodes[0]
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
		c.BFD = true
		c.HoldTime, c.KeepaliveTime = 90*time.Second, 30*time.Second
	})})
	p := n.Peer("r1", r, false)
	p.HoldTime = 90 * time.Second
	p.Routes = []speakerbgp.Route{{Prefix: hostRoute}}
	n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
	WaitNextHops(t, r, hostRoute, 30*time.Second, n.Addr4())
	n.WaitPeer(t, "r1", 10*time.Second, bfdIs(speakerbgp.BFDOff))

	t.Run("BFD turned on keeps the session", func(t *testing.T) {
		before := snapshot(t, r, n)
		w := watchNextHops(r, hostRoute, n.Addr4(), 50*time.Millisecond)
		p.BFD = speakerbgp.BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 3}
		n.Apply(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
		waitRouterBFD(t, r, n, 3, 300*time.Millisecond)
		after := snapshot(t, r, n)
		_, missing, _, errs := w.result()
		if len(errs) > 0 {
			t.Fatalf("watching the router: %v", errs)
		}
		if !after.router.Established() || after.router.ConnectionsDropped != before.router.ConnectionsDropped || after.router.Uptime < before.router.Uptime {
			t.Errorf("router: the session was reset: before %s, %d drops, up %v; after %s, %d drops, up %v (FRR: %s)",
				before.router.State, before.router.ConnectionsDropped, before.router.Uptime,
				after.router.State, after.router.ConnectionsDropped, after.router.Uptime, after.lastReset)
		}
		if missing {
			t.Errorf("the route left the router")
		}
		if after.speaker.Counters.Drops != before.speaker.Counters.Drops || after.speaker.Counters.Established != before.speaker.Counters.Established {
			t.Errorf("speaker: the session dropped: established %d then %d times, dropped %d then %d times (last error %q)",
				before.speaker.Counters.Established, after.speaker.Counters.Established,
				before.speaker.Counters.Drops, after.speaker.Counters.Drops, after.speaker.LastError)
		}
	})

	t.Run("new timers of a live BFD session re-create the session", func(t *testing.T) {
		before := snapshot(t, r, n)
		w := watchNextHops(r, hostRoute, n.Addr4(), 50*time.Millisecond)
		p.BFD.Multiplier, p.BFD.MinTx = 4, 400*time.Millisecond
		n.Apply(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
		waitRouterBFD(t, r, n, 4, 400*time.Millisecond)
		WaitNextHops(t, r, hostRoute, 60*time.Second, n.Addr4())
		after := snapshot(t, r, n)
		_, _, _, errs := w.result()
		if len(errs) > 0 {
			t.Fatalf("watching the router: %v", errs)
		}
		outage := "the route never left the router"
		if gone, back := w.outage(); !gone.IsZero() {
			outage = fmt.Sprintf("the route left the router for %v", back.Sub(gone).Round(time.Millisecond))
		}
		t.Logf("BFD 300ms x 3 to 400ms x 4: FRR's session dropped %d times, %s (FRR: %s)",
			after.router.ConnectionsDropped-before.router.ConnectionsDropped, outage, after.lastReset)
	})
}

// sessionSnapshot is what the router and the speaker say of the session.
type sessionSnapshot struct {
	router    netlab.BGPNeighbor
	lastReset string
	speaker   speakerbgp.PeerStatus
}

func snapshot(t *testing.T, r *netlab.Router, n *Node) sessionSnapshot {
	t.Helper()
	var s sessionSnapshot
	var err error
	if s.router, _, err = r.Neighbor(t.Context(), n.Addr4()); err != nil {
		t.Fatal(err)
	}
	if s.lastReset, err = LastReset(t.Context(), r, n.Addr4()); err != nil {
		t.Fatal(err)
	}
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	s.speaker, _ = st.Peer("r1")
	return s
}

// waitRouterBFD waits until FRR's BFD session with n is up with the node's
// multiplier and transmit interval, bgpd sees it Up, and so does the
// speaker. bgpd hears of BFD states through zebra after bfdd: once it says
// Up with the new timers running, a BFD down on the way (which would reset
// the session) has reached it.
func waitRouterBFD(t *testing.T, r *netlab.Router, n *Node, multiplier int, tx time.Duration) {
	t.Helper()
	netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		peers, err := r.BFDPeers(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(peers, func(bp netlab.BFDPeer) bool { return bp.Peer == n.Addr4() })
		if i < 0 {
			return fmt.Errorf("router: no BFD session with %s: %+v", n.Addr4(), peers)
		}
		if bp := peers[i]; bp.Status != "up" || bp.RemoteDetectMultiplier != multiplier || bp.RemoteTransmitInterval != tx {
			return fmt.Errorf("router: BFD session with %s is %s with the node's multiplier %d and transmit interval %v; want up, %d and %v",
				n.Addr4(), bp.Status, bp.RemoteDetectMultiplier, bp.RemoteTransmitInterval, multiplier, tx)
		}
		return nil
	})
	waitBFDUp(t, r, n)
	n.WaitPeer(t, "r1", 10*time.Second, bfdIs(speakerbgp.BFDUp))
}

// bfdIs is a WaitPeer condition: the session is Established with BFD in
// state want.
func bfdIs(want speakerbgp.BFDState) func(speakerbgp.PeerStatus) error {
	return func(ps speakerbgp.PeerStatus) error {
		if err := Established(ps); err != nil {
			return err
		}
		if ps.BFD != want {
			return fmt.Errorf("BFD %q, want %q", ps.BFD, want)
		}
		return nil
	}
}
