package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// waitingLine is what a starting speaker logs when it waits for the
// speakers it expects before its first reconcile.
const waitingLine = "waiting for the expected speakers before the first reconcile"

// TestSpeakersStartingTogether stops every speaker (their SpeakerStatus
// records say Stopped, as in a whole-cluster restart or measure-failover
// -memory) and starts them again one after the other: the first waits for
// the others before its first reconcile, so no speaker ever announces an
// address that another node ends up holding (before the wait, the first
// claimed all of them and handed two thirds back). A speaker restarting
// beside running ones does not wait; one whose expected peers never come
// stops waiting at the bound and announces everything.
func TestSpeakersStartingTogether(t *testing.T) {
	lab := speakerlab.New(t, speakerlab.Options{})
	ctx := t.Context()
	const services = 24
	for i := range services {
		name := fmt.Sprintf("start-%02d", i)
		must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: name, Addresses: []netip.Addr{lbAddr(v4, 10+i)}}))
		must(t, lab.SetEndpoints(ctx, name, v4, speakerlab.EndpointState{Node: "node1"}, speakerlab.EndpointState{Node: "node2"},
			speakerlab.EndpointState{Node: "node3"}))
	}
	announcedBy(t, lab, lab.Nodes, services)

	stopAll := func(t *testing.T) {
		t.Helper()
		for _, n := range lab.Nodes {
			must(t, lab.StopSpeaker(n))
		}
	}
	// logOf returns what n's running speaker logged (each start has a log
	// of its own).
	logOf := func(n *speakerlab.Node) string {
		if n.Speaker == nil {
			return ""
		}
		return n.Speaker.Log()
	}

	t.Run("speakers started one after the other wait for each other", func(t *testing.T) {
		stopAll(t)
		first, others := lab.Nodes[0], lab.Nodes[1:]
		// A bound far above what the lab needs: the others start only once
		// the first waits, and must all join within it on a loaded machine
		// too (the second waits for the third as well).
		const wait = "--startup-member-wait=2m"
		lab.StartSpeaker(first, wait)
		netlab.Eventually(t, 60*time.Second, func(context.Context) error {
			if !strings.Contains(logOf(first), waitingLine) {
				return fmt.Errorf("%s's speaker does not log that it waits for the others", first.Name)
			}
			return nil
		})
		for _, n := range others {
			lab.StartSpeaker(n, wait)
		}
		for _, n := range lab.Nodes {
			lab.WaitReady(n)
		}
		announcedBy(t, lab, lab.Nodes, services)
		// Every address a speaker took since its start, it still holds:
		// none was taken while its owner had not joined, then handed back.
		// (The counter of addresses lost is absent until one is.)
		for _, n := range lab.Nodes {
			announced, err := lab.Metric(ctx, n, "herald_speaker_announced_addresses", `protocol="arp"`)
			must(t, err)
			gained, err := lab.Metric(ctx, n, "herald_speaker_layer2_ownership_changes_total", `change="gained"`)
			if err != nil && announced > 0 {
				t.Fatal(err)
			}
			if gained != announced {
				t.Errorf("%s's speaker took %v addresses since its start and holds %v: it announced addresses of speakers that had not joined yet\n%s",
					n.Name, gained, announced, logOf(n))
			}
		}
		// The first stops waiting when it sees both others joined, or
		// when one of them, which saw all three first, already runs.
		_, joined := lab.Metric(ctx, first, "herald_speaker_startup_wait_seconds", `outcome="joined"`)
		_, running := lab.Metric(ctx, first, "herald_speaker_startup_wait_seconds", `outcome="running"`)
		if joined != nil && running != nil {
			t.Errorf("%s's speaker did not end its wait with the others joined or running: %v; %v\n%s", first.Name, joined, running, logOf(first))
		}
	})

	t.Run("a speaker restarting beside running ones does not wait", func(t *testing.T) {
		n := lab.Nodes[1]
		must(t, lab.StopSpeaker(n))
		lab.StartSpeaker(n)
		lab.WaitReady(n)
		if _, err := lab.Metric(ctx, n, "herald_speaker_startup_wait_seconds", `outcome="running"`); err != nil {
			t.Errorf("%s's speaker did not find the running speakers: %v\n%s", n.Name, err, logOf(n))
		}
		if log := logOf(n); strings.Contains(log, waitingLine) {
			t.Errorf("%s's speaker waited beside running speakers:\n%s", n.Name, log)
		}
		announcedBy(t, lab, lab.Nodes, services)
	})

	t.Run("expected speakers that never come: the bound ends the wait", func(t *testing.T) {
		stopAll(t)
		n := lab.Nodes[0]
		lab.StartSpeaker(n, "--startup-member-wait=1s")
		lab.WaitReady(n)
		log := logOf(n)
		if _, err := lab.Metric(ctx, n, "herald_speaker_startup_wait_seconds", `outcome="bound"`); err != nil {
			t.Errorf("%s's speaker did not stop waiting at the bound: %v\n%s", n.Name, err, log)
		}
		if !strings.Contains(log, `outcome=bound`) || !strings.Contains(log, `missing="[node2 node3]"`) {
			t.Errorf("%s's speaker does not log that node2 and node3 were missing at the bound:\n%s", n.Name, log)
		}
		announcedBy(t, lab, []*speakerlab.Node{n}, services)
	})
}

// announcedBy waits until the speakers of nodes announce want addresses
// over ARP between them.
func announcedBy(t *testing.T, lab *speakerlab.Lab, nodes []*speakerlab.Node, want int) {
	t.Helper()
	netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		total := 0.0
		for _, n := range nodes {
			v, err := lab.Metric(ctx, n, "herald_speaker_announced_addresses", `protocol="arp"`)
			if err != nil {
				return err
			}
			total += v
		}
		if int(total) != want {
			return fmt.Errorf("the speakers of %d nodes announce %v addresses over ARP, want %d", len(nodes), total, want)
		}
		return nil
	})
}
