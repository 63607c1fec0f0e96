package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
	"github.com/herald-dev/herald/speaker"
)

// statusReady waits until node's SpeakerStatus has Ready with the given
// status and reason.
func statusReady(t *testing.T, lab *speakerlab.Lab, node string, ready bool, reason string) {
	t.Helper()
	netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
		got, gotReason, err := lab.StatusReady(ctx, node)
		if err != nil {
			return err
		}
		if got != ready || gotReason != reason {
			return fmt.Errorf("SpeakerStatus %s: ready %v (%s), want %v (%s)", node, got, gotReason, ready, reason)
		}
		return nil
	})
}

// verdicts waits until node's fast failure detector counts at least want
// verdicts of kind.
func verdicts(t *testing.T, lab *speakerlab.Lab, node *speakerlab.Node, kind string, want float64) {
	t.Helper()
	netlab.Eventually(t, 15*time.Second, func(ctx context.Context) error {
		got, err := lab.Metric(ctx, node, "herald_speaker_heartbeat_verdicts_total", `kind="`+kind+`"`)
		if err != nil || got < want {
			return fmt.Errorf("%s: %v %s verdicts (%v), want %v", node.Name, got, kind, err, want)
		}
		return nil
	})
}

func TestFailover(t *testing.T) {
	lab := speakerlab.New(t, speakerlab.Options{})
	ctx := t.Context()
	addr := lbAddr(v4, 5)
	lab.AddVIP(addr)
	must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "web", Addresses: []netip.Addr{addr}}))
	must(t, lab.SetEndpoints(ctx, "web", v4, speakerlab.EndpointState{Node: "node1"}))
	ranking := speaker.Ranking(addr, lab.NodeNames())
	answeredBy(t, lab, addr, 10*time.Second, ranking[0])
	statusShows(t, lab, addr, "default/web", ranking[0])

	t.Run("node failure: kill -9 and link cut", func(t *testing.T) {
		owner := lab.Node(ranking[0])
		lab.KillSpeaker(owner)
		must(t, owner.Link.Detach())
		answeredBy(t, lab, addr, 5*time.Second, ranking[1])
		if got, err := lab.ConnectVIP(ctx, addr); err != nil || got != ranking[1] {
			t.Errorf("TCP to %s reached %q (%v), want %s", addr, got, err, ranking[1])
		}
		// The successor took over on the heartbeats' silence, and then
		// membership agreed.
		successor := lab.Node(ranking[1])
		verdicts(t, lab, successor, "presumed", 1)
		verdicts(t, lab, successor, "confirmed", 1)
		statusShows(t, lab, addr, "default/web", ranking[1])
		statusReady(t, lab, ranking[0], false, "SpeakerNotAlive")

		// The node comes back: it takes its address back, and its record is ready again.
		must(t, owner.Link.Attach())
		lab.StartSpeaker(owner)
		lab.WaitReady(owner)
		lab.WaitMembers(3)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
		statusShows(t, lab, addr, "default/web", ranking[0])
		statusReady(t, lab, ranking[0], true, "Running")
	})

	t.Run("graceful stop hands over", func(t *testing.T) {
		owner := lab.Node(ranking[0])
		if err := lab.StopSpeaker(owner); err != nil {
			t.Errorf("stop speaker: %v", err)
		}
		answeredBy(t, lab, addr, 2*time.Second, ranking[1])
		statusReady(t, lab, ranking[0], false, "Stopped")
		lab.StartSpeaker(owner)
		lab.WaitReady(owner)
		lab.WaitMembers(3)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
	})

	t.Run("kube-proxy says the node cannot serve: every speaker leaves it out", func(t *testing.T) {
		owner := lab.Node(ranking[0])
		health, err := lab.StartFakeKubeProxyHealth(owner, 10256)
		must(t, err)
		must(t, lab.StopSpeaker(owner))
		lab.StartSpeaker(owner, "--probe-kube-proxy")
		lab.WaitReady(owner)
		lab.WaitMembers(3)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
		health.SetHealthy(false)
		answeredBy(t, lab, addr, 5*time.Second, ranking[1])
		health.SetHealthy(true)
		answeredBy(t, lab, addr, 5*time.Second, ranking[0])
		must(t, lab.StopSpeaker(owner))
		lab.StartSpeaker(owner)
		lab.WaitReady(owner)
		lab.WaitMembers(3)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
	})

	t.Run("heartbeats lost while the owner's kernel answers: spared, nothing moves", func(t *testing.T) {
		successor := lab.Node(ranking[1])
		spared, err := lab.Metric(ctx, successor, "herald_speaker_heartbeat_verdicts_total", `kind="spared"`)
		must(t, err)
		presumed, err := lab.Metric(ctx, successor, "herald_speaker_heartbeat_verdicts_total", `kind="presumed"`)
		must(t, err)
		rule := []string{"INPUT", "-p", "udp", "--dport", "7947", "-j", "DROP"}
		successor.Host.MustRun(append([]string{"iptables", "-A"}, rule...)...)
		defer successor.Host.MustRun(append([]string{"iptables", "-D"}, rule...)...)
		// The owner's heartbeats stop reaching the successor, but its
		// kernel answers the successor's echo requests: the owner is up (a
		// stalled speaker looks the same), so no verdict is taken.
		verdicts(t, lab, successor, "spared", spared+1)
		for range 10 {
			answeredBy(t, lab, addr, time.Second, ranking[0])
			time.Sleep(300 * time.Millisecond)
		}
		if got, err := lab.Metric(ctx, successor, "herald_speaker_heartbeat_verdicts_total", `kind="presumed"`); err != nil || got != presumed {
			t.Errorf("presumed verdicts on %s: %v (%v), want %v: an owner whose kernel answers was presumed dead", successor.Name, got, err, presumed)
		}
	})

	t.Run("heartbeats and echo replies lost while membership sees the owner: a bounded false alarm", func(t *testing.T) {
		successor := lab.Node(ranking[1])
		// The previous subtest left the owner disarmed; its heartbeats arm it again.
		time.Sleep(time.Second)
		expired, err := lab.Metric(ctx, successor, "herald_speaker_heartbeat_verdicts_total", `kind="expired"`)
		must(t, err)
		presumed, err := lab.Metric(ctx, successor, "herald_speaker_heartbeat_verdicts_total", `kind="presumed"`)
		must(t, err)
		for _, rule := range [][]string{
			{"INPUT", "-p", "udp", "--dport", "7947", "-j", "DROP"},
			{"INPUT", "-p", "icmp", "--icmp-type", "echo-reply", "-j", "DROP"},
		} {
			successor.Host.MustRun(append([]string{"iptables", "-A"}, rule...)...)
			defer successor.Host.MustRun(append([]string{"iptables", "-D"}, rule...)...)
		}
		// The successor presumes the owner dead; membership never agrees,
		// so the verdict expires and the owner is not watched again until
		// its heartbeats come through: the address ends with the owner.
		verdicts(t, lab, successor, "presumed", presumed+1)
		verdicts(t, lab, successor, "expired", expired+1)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
		for range 5 {
			answeredBy(t, lab, addr, time.Second, ranking[0])
			time.Sleep(300 * time.Millisecond)
		}
		if got, err := lab.Metric(ctx, successor, "herald_speaker_heartbeat_verdicts_total", `kind="presumed"`); err != nil || got != presumed+1 {
			t.Errorf("presumed verdicts on %s: %v (%v), want %v: a disarmed owner was presumed dead again", successor.Name, got, err, presumed+1)
		}
	})

	t.Run("split brain: a membership partition is resolved on the wire", func(t *testing.T) {
		for _, n := range lab.Nodes {
			for _, proto := range []string{"udp", "tcp"} {
				n.Host.MustRun("iptables", "-A", "INPUT", "-p", proto, "--dport", "7946", "-j", "DROP")
			}
		}
		// Every speaker is alone now and elects itself; the conflicts leave
		// the address with the highest-ranked node only.
		lab.WaitMembers(1)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
		winner, loser := lab.Node(ranking[0]), lab.Node(ranking[1])
		netlab.Eventually(t, 10*time.Second, func(ctx context.Context) error {
			kept, err := lab.Metric(ctx, winner, "herald_speaker_layer2_conflicts_total", `outcome="kept"`)
			if err != nil || kept == 0 {
				return fmt.Errorf("winner %s kept %v conflicts (%v), want some", winner.Name, kept, err)
			}
			yielded, err := lab.Metric(ctx, loser, "herald_speaker_layer2_conflicts_total", `outcome="yielded"`)
			if err != nil || yielded == 0 {
				return fmt.Errorf("loser %s yielded %v conflicts (%v), want some", loser.Name, yielded, err)
			}
			events, err := lab.ServiceEvents(ctx, "web")
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(events, func(e string) bool {
				return strings.HasPrefix(e, "AddressConflict: ") && strings.Contains(e, ranking[0]+" outranks")
			}) {
				return fmt.Errorf("no AddressConflict event in %q", events)
			}
			return nil
		})

		for _, n := range lab.Nodes {
			for _, proto := range []string{"udp", "tcp"} {
				n.Host.MustRun("iptables", "-D", "INPUT", "-p", proto, "--dport", "7946", "-j", "DROP")
			}
		}
		lab.WaitMembers(3)
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])
		// It stays that way.
		for range 5 {
			answeredBy(t, lab, addr, time.Second, ranking[0])
			time.Sleep(300 * time.Millisecond)
		}
	})
}
