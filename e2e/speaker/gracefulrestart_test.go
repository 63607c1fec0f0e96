package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/bgp"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// TestBGPGracefulRestartAndBFD runs herald-speaker with graceful restart and
// BFD (300 ms x 3, hold time 9 s) against FRR: a speaker restart (SIGTERM,
// then start, as in an upgrade) keeps the node's route at the router the
// whole time, and a node that dies (link cut, speaker killed) leaves the
// router's next hops through BFD, well before the hold time and the restart
// time (120 s) that graceful restart would otherwise keep its route for.
func TestBGPGracefulRestartAndBFD(t *testing.T) {
	bgp.RequireFRR(t)
	lab := speakerlab.New(t, speakerlab.Options{})
	r, err := lab.StartRouterWith(t.Context(), speakerlab.RouterOptions{Password: "gr-secret", BFD: true, GracefulRestart: true})
	if err != nil {
		t.Fatal(err)
	}
	l := &bgpLab{Lab: lab, Router: r}
	ctx := t.Context()
	addr := speakerlab.RoutedAddr(4)
	prefix := netip.PrefixFrom(addr, 32)
	if err := lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "gr", Addresses: []netip.Addr{addr}}); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetEndpoints(ctx, "gr", v4, speakerlab.EndpointState{Node: "node1"}); err != nil {
		t.Fatal(err)
	}
	bfdUp := func(node string, s v1alpha1.BGPSessionStatus) error {
		if s.State != "Established" || s.BFDState != "Up" {
			return fmt.Errorf("state %s, BFD %q (lastError %q), want Established with BFD Up", s.State, s.BFDState, s.LastError)
		}
		return nil
	}
	// A session's first BFD start resets it once against FRR (docs/bgp.md):
	// allow for that before the restart.
	sessionsAre(t, lab, 90*time.Second, bfdUp)
	l.nextHopsAre(t, prefix, 20*time.Second, "node1", "node2", "node3")

	t.Run("speaker restart keeps the route", func(t *testing.T) {
		node2 := lab.Node("node2")
		watch := watchNextHops(t, l, prefix, node2.Addr4)
		start := time.Now()
		if err := lab.StopSpeaker(node2); err != nil {
			t.Fatal(err)
		}
		lab.StartSpeaker(node2)
		lab.WaitReady(node2)
		sessionsAre(t, lab, 90*time.Second, bfdUp)
		// Past the new session's BFD start, and its one reset if any.
		time.Sleep(15 * time.Second)
		sessionsAre(t, lab, 10*time.Second, bfdUp)
		samples, missing := watch()
		t.Logf("restart and settling: %v, %d samples of the router's next hops, %d without node2", time.Since(start).Round(time.Second), samples, len(missing))
		if len(missing) > 0 {
			t.Errorf("the router lost node2's route during its speaker's restart: %d samples without it, over %v", len(missing), missing[len(missing)-1].Sub(missing[0]).Round(10*time.Millisecond))
		}
	})
	t.Run("node death: BFD removes the route", func(t *testing.T) {
		node3 := lab.Node("node3")
		cut := time.Now()
		if err := node3.Link.Detach(); err != nil {
			t.Fatal(err)
		}
		lab.KillSpeaker(node3)
		// Within the BFD time, not the 9 s hold time nor the 120 s restart time;
		// 5 s leaves room for a loaded machine.
		l.nextHopsAre(t, prefix, 5*time.Second, "node1", "node2")
		t.Logf("node3's next hop gone %v after its link was cut (BFD 300 ms x 3)", time.Since(cut).Round(10*time.Millisecond))
	})
}

// watchNextHops samples the router's next hops to prefix every 100 ms until
// the returned function is called, which returns how many samples it took and
// the times of those without want.
func watchNextHops(t *testing.T, l *bgpLab, prefix netip.Prefix, want netip.Addr) func() (int, []time.Time) {
	ctx, cancel := context.WithCancel(t.Context())
	var (
		wg      sync.WaitGroup
		samples int
		missing []time.Time
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; ctx.Err() == nil; sleepCtx(ctx, 100*time.Millisecond) {
			hops, err := l.nextHops(ctx, prefix)
			if err != nil {
				continue // the router's vtysh failed, not the route
			}
			samples++
			if !slices.Contains(hops, want) {
				missing = append(missing, time.Now())
			}
		}
	}()
	return func() (int, []time.Time) {
		cancel()
		wg.Wait()
		return samples, missing
	}
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
