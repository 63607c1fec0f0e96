package suite

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
	"github.com/herald-dev/herald/speaker"
)

func init() { register(15, "layer-2 conflicts", testConflicts) }

// conflictRange holds the address of the conflict scenario: one of its addresses is
// picked so that the rogue node outranks both legitimate ones.
var conflictRange = netip.MustParsePrefix("198.51.100.184/29")

// testConflicts is issue 12's "yield only to a candidate": node3, which no
// L2Advertisement of the pool selects, claims the Service's address with gratuitous
// ARP from its own MAC (its speaker is a live member, so the MAC is known to be
// node3's), and node3 outranks the announcing node for that address. What node3 gets
// is nothing: the announcing node keeps answering, re-announces after each claim so
// the client's ARP entry comes back to it, records a Warning event naming node3 and
// its MAC, and counts the conflict as notCandidate, never as yielded.
func testConflicts(t *testing.T, l *productlab.Lab) {
	node3 := l.Cluster.Node(3)
	legit := []string{l.Cluster.Node(1).Name(), l.Cluster.Node(2).Name()}
	var addr netip.Addr
	for a := conflictRange.Addr(); conflictRange.Contains(a); a = a.Next() {
		if speaker.Ranking(a, append(slices.Clone(legit), node3.Name()))[0] == node3.Name() {
			addr = a
			break
		}
	}
	if !addr.IsValid() {
		t.Fatalf("no address of %v that %s outranks %v for", conflictRange, node3.Name(), legit)
	}
	owner := speaker.Ranking(addr, legit)[0]
	ownerNode := l.Node(owner)
	const pool, svc = "e2e-conflict", "conflict-web"
	l.Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: %[1]s}
spec:
  addresses: ["%[2]s/32"]
  autoAssign: false
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: %[1]s}
spec:
  ipPools: [%[1]s]
  nodeSelectors:
  - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [%[3]s]}]
`, pool, addr, strings.Join(legit, ", ")))
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--ignore-not-found", "--timeout=60s", "l2advertisement/"+pool, "ippool/"+pool); err != nil {
			t.Errorf("clean up pool %s: %v\n%s", pool, err, out)
		}
	})
	applyService(t, l, lbService{name: svc, pool: pool})
	if got := l.WaitAddresses("default", svc, 1, 30*time.Second); got[0] != addr {
		t.Fatalf("address %v, want %v", got[0], addr)
	}
	l.Backend("default", svc, productlab.WebPort, l.WebPods()...)
	l.WaitAnnouncer(addr, 30*time.Second, oneOf(owner))
	l.WaitStatusAnnouncer(addr, "default", svc, owner, 30*time.Second)
	// The client connects, so it holds a neighbour entry that claims can move.
	l.WaitConnect(addr, 80, 30*time.Second, nil)
	counter := func(outcome string) float64 {
		v, err := l.SpeakerMetric(t.Context(), ownerNode, `herald_speaker_layer2_conflicts_total{outcome="`+outcome+`"}`)
		if err != nil && !strings.Contains(err.Error(), "no metric") {
			t.Fatal(err)
		}
		return v
	}
	yieldedBefore, notCandidateBefore := counter("yielded"), counter("notCandidate")
	t.Logf("%s announces %v; %s outranks it there but is no candidate", owner, addr, node3.Name())

	rogue := node3.StartProcess(netlab.ProcessSpec{Name: "arpclaim", Args: []string{
		netlab.BuildGo(t, netlab.ARPClaimPackage), "-interface", "eth0", "-addr", addr.String(), "-every", "200ms",
	}})
	stopRogue := func() {
		if err := rogue.Kill(); err != nil {
			t.Logf("stop the rogue: %v", err)
		}
	}
	t.Cleanup(stopRogue)
	waitCtx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := rogue.WaitLog(waitCtx, "sent the first claims"); err != nil {
		t.Fatalf("the rogue did not start: %v\n%s", err, rogue.Log())
	}

	// For 3 s of claims every 200 ms, the owner alone answers the client's ARP.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		names, err := l.Answering(t.Context(), addr)
		if err != nil || !slices.Equal(names, []string{owner}) {
			t.Fatalf("while %s claims %v: answering %v (%v), want only %s", node3.Name(), addr, names, err, owner)
		}
	}
	mac := node3.LAN.MAC.String()
	l.WaitEvent("default", svc, "AddressConflict", fmt.Sprintf("Node %s (MAC %s) answered for %s", node3.Name(), mac, addr), 30*time.Second)
	if got := counter("notCandidate"); got <= notCandidateBefore {
		t.Errorf("%s counted %v notCandidate conflicts, %v before the claims: want more", owner, got, notCandidateBefore)
	}
	stopRogue()

	// After the rogue's last claim, the owner's re-announcement brings the client's
	// entry back to it, and the owner never yielded.
	netlab.Eventually(t, 10*time.Second, func(ctx context.Context) error {
		out, err := l.Client.Run(ctx, "ip", "neigh", "show", addr.String())
		if err != nil {
			return err
		}
		if !strings.Contains(out, "lladdr "+ownerNode.LAN.MAC.String()) {
			return fmt.Errorf("the client's neighbour entry for %v: %q, want %s's MAC %s", addr, strings.TrimSpace(out), owner, ownerNode.LAN.MAC)
		}
		return nil
	})
	l.WaitConnect(addr, 80, 30*time.Second, nil)
	l.WaitStatusAnnouncer(addr, "default", svc, owner, 30*time.Second)
	if got := counter("yielded"); got != yieldedBefore {
		t.Errorf("%s yielded %v times during the claims", owner, got-yieldedBefore)
	}
	if names, err := l.Answering(t.Context(), addr); err != nil || !slices.Equal(names, []string{owner}) {
		t.Errorf("after the claims: answering %v (%v), want only %s", names, err, owner)
	}
}
