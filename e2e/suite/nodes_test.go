package suite

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(50, "nodes", testNodes) }

var nodesV4 = netip.MustParsePrefix("198.51.100.140/31")

// drainMaxFailed is how many of the client's connections, one every 10 ms, may
// fail while the announcing node's speaker stops gracefully. The speaker promises
// a near-zero handover (docs/speaker.md: the old owner answers until its
// successor's burst; measured client TCP outage p99 20 ms), so a couple of
// connections at most; 5 leaves room for a loaded machine.
const drainMaxFailed = 5

func testNodes(t *testing.T, l *productlab.Lab) {
	const pool, svc = "e2e-nodes", "nodes-web"
	l2Pool(t, l, pool, nodesV4)
	applyService(t, l, lbService{name: svc, pool: pool})
	addrs := l.WaitAddresses("default", svc, 1, 30*time.Second)
	inPrefix(t, addrs, nodesV4)
	addr := addrs[0]
	l.Backend("default", svc, productlab.WebPort, l.WebPods()...)
	// Cluster policy: every node may announce, and the election picks the same
	// node each time the same nodes are eligible.
	owner := l.WaitAnnouncer(addr, 30*time.Second, nil)
	l.WaitConnect(addr, 80, 30*time.Second, nil)
	t.Logf("%s announces %v", owner, addr)

	// movesAway checks that the announcement leaves owner, that the client reaches
	// the Service through the new node, and that SpeakerStatus agrees.
	movesAway := func(t *testing.T, l *productlab.Lab) string {
		t.Helper()
		next := l.WaitAnnouncer(addr, 30*time.Second, not(owner))
		l.WaitStatusAnnouncer(addr, "default", svc, next, 30*time.Second)
		l.WaitEvent("default", svc, "Announcing",
			fmt.Sprintf("Node %s announces %v over ARP on eth0, taking over from node %s.", next, addr, owner), 30*time.Second)
		l.WaitConnect(addr, 80, 30*time.Second, nil)
		return next
	}
	// comesBack checks that the announcement returns to owner once it may announce
	// again, so the lab is left as it was found.
	comesBack := func(t *testing.T, l *productlab.Lab) {
		t.Helper()
		l.WaitAnnouncer(addr, 60*time.Second, oneOf(owner))
		l.WaitStatusAnnouncer(addr, "default", svc, owner, 30*time.Second)
		l.WaitConnect(addr, 80, 30*time.Second, nil)
	}

	t.Run("the exclusion label moves the announcement", func(t *testing.T) {
		l := l.For(t)
		restore := func() {
			if err := l.SetNodeLabel(context.Background(), owner, productlab.ExcludeLabel, nil); err != nil {
				t.Errorf("restore: %v", err)
			}
		}
		t.Cleanup(restore)
		value := "true"
		if err := l.SetNodeLabel(t.Context(), owner, productlab.ExcludeLabel, &value); err != nil {
			t.Fatal(err)
		}
		next := movesAway(t, l)
		t.Logf("%s excluded: %s took %v over", owner, next, addr)
		restore()
		comesBack(t, l)
	})

	t.Run("NetworkUnavailable moves the announcement", func(t *testing.T) {
		l := l.For(t)
		restore := func() {
			if err := l.SetNetworkUnavailable(context.Background(), owner, false); err != nil {
				t.Errorf("restore: %v", err)
			}
		}
		t.Cleanup(restore)
		if err := l.SetNetworkUnavailable(t.Context(), owner, true); err != nil {
			t.Fatal(err)
		}
		next := movesAway(t, l)
		t.Logf("%s network unavailable: %s took %v over", owner, next, addr)
		restore()
		comesBack(t, l)
	})

	t.Run("a drained node hands its address over with the client's connections going on", func(t *testing.T) {
		l := l.For(t)
		n := l.Node(owner)
		t.Cleanup(func() {
			if l.Speaker(n) == nil {
				l.StartSpeaker(n)
				l.WaitSpeakerReady(n)
			}
		})
		const interval = 10 * time.Millisecond
		prober := l.Probe(addr, 80, interval, time.Second)
		// Let the prober see the Service answer before the drain.
		netlab.Eventually(t, 10*time.Second, func(context.Context) error {
			if ok := len(prober.Attempts()) - len(productlab.Failed(prober.Attempts())); ok < 50 {
				return fmt.Errorf("%d successful connections before the drain, want 50", ok)
			}
			return nil
		})
		stopped := time.Now()
		l.StopSpeaker(n)
		next := l.WaitAnnouncer(addr, 30*time.Second, not(owner))
		// Keep probing a while after the takeover, so late failures count too.
		took := time.Now()
		netlab.Eventually(t, 30*time.Second, func(context.Context) error {
			if after := countAfter(prober.Attempts(), took); after < 100 {
				return fmt.Errorf("%d connections since the takeover, want 100", after)
			}
			return nil
		})
		attempts := prober.Stop()
		failed := productlab.Failed(attempts)
		outage, ok := productlab.Outage(attempts, stopped, interval)
		t.Logf("drain of %s: %s took %v over; %d of %d connections failed (client-observed outage %v, recovered %v)",
			owner, next, addr, len(failed), len(attempts), outage, ok)
		if len(failed) > drainMaxFailed {
			logFailedConnections(t, l, addr, failed)
			t.Errorf("%d of %d connections failed during the drain, want at most %d; failures: %v",
				len(failed), len(attempts), drainMaxFailed, describeFailures(failed, stopped))
		}
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			st, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, owner, metav1.GetOptions{})
			if err != nil {
				return err
			}
			c := meta.FindStatusCondition(st.Status.Conditions, v1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.SpeakerReasonStopped {
				return fmt.Errorf("SpeakerStatus %s Ready condition %+v, want False, reason Stopped", owner, c)
			}
			return nil
		})
		l.WaitStatusAnnouncer(addr, "default", svc, next, 30*time.Second)

		l.StartSpeaker(n)
		l.WaitSpeakerReady(n)
		comesBack(t, l)
	})
}

// countAfter returns how many attempts started after t.
func countAfter(as []productlab.Attempt, t time.Time) int {
	n := 0
	for _, a := range as {
		if a.Start.After(t) {
			n++
		}
	}
	return n
}

// describeFailures lists failed attempts relative to an event at t, at most 10.
func describeFailures(failed []productlab.Attempt, t time.Time) []string {
	var out []string
	for i, a := range failed {
		if i == 10 {
			out = append(out, fmt.Sprintf("... and %d more", len(failed)-10))
			break
		}
		out = append(out, fmt.Sprintf("%+v: %v", a.Start.Sub(t).Round(time.Millisecond), a.Err))
	}
	return out
}
