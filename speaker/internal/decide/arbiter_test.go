package decide

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestResolveConflictIsAntisymmetric(t *testing.T) {
	for i := range 200 {
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		a := ResolveConflict(ConflictParties{Addr: addr, Self: "node-a", Other: "node-b", OtherKnown: true, OtherIsCandidate: true})
		b := ResolveConflict(ConflictParties{Addr: addr, Self: "node-b", Other: "node-a", OtherKnown: true, OtherIsCandidate: true})
		if a == b || (a != ConflictKept && a != ConflictYielded) || (b != ConflictKept && b != ConflictYielded) {
			t.Fatalf("%s: node-a %s, node-b %s: want one kept and one yielded", addr, a, b)
		}
		if want := Ranking(addr, []string{"node-a", "node-b"})[0]; (a == ConflictKept) != (want == "node-a") {
			t.Fatalf("%s: node-a %s, but the ranking puts %s first", addr, a, want)
		}
	}
}

// TestResolveConflict: this node yields only to a speaker that outranks it and may
// announce the address in its view; a node that is no candidate gets nothing by
// answering, however it ranks.
func TestResolveConflict(t *testing.T) {
	// winner outranks loser for lbV4.
	winner, loser := "node-a", "node-b"
	if !Outranks(lbV4, winner, loser) {
		winner, loser = loser, winner
	}
	for _, tc := range []struct {
		name string
		p    ConflictParties
		want ConflictOutcome
	}{
		{"a device that is no speaker", ConflictParties{Addr: lbV4, Self: loser}, ConflictForeign},
		{"a candidate that outranks this node", ConflictParties{Addr: lbV4, Self: loser, Other: winner, OtherKnown: true, OtherIsCandidate: true}, ConflictYielded},
		{"a candidate that this node outranks", ConflictParties{Addr: lbV4, Self: winner, Other: loser, OtherKnown: true, OtherIsCandidate: true}, ConflictKept},
		{"a speaker that outranks this node but may not announce the address", ConflictParties{Addr: lbV4, Self: loser, Other: winner, OtherKnown: true}, ConflictNotCandidate},
		{"a speaker that this node outranks and that may not announce the address", ConflictParties{Addr: lbV4, Self: winner, Other: loser, OtherKnown: true}, ConflictNotCandidate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResolveConflict(tc.p); got != tc.want {
				t.Errorf("ResolveConflict(%+v) = %s, want %s", tc.p, got, tc.want)
			}
		})
	}
}

// TestMayAnnounce: who is a candidate for an address, in a view where some speakers
// are not alive: advertisements, exclusion and endpoints rule a node out, its
// speaker's liveness, kube-proxy's verdicts and a takeover delay do not.
func TestMayAnnounce(t *testing.T) {
	rack := func(r string) map[string]string { return map[string]string{"rack": r} }
	nodes := aliveNodes("n1", "n2", "n3", "n4")
	for i := range nodes {
		nodes[i].Labels["rack"] = "a"
	}
	nodes[3].Labels["rack"] = "b"                   // n4: no L2Advertisement selects it
	nodes[1].State.SpeakerAlive = false             // n2: its speaker looks dead here
	nodes[2].State.ExcludedFromLoadBalancers = true // n3: excluded
	settling := ready("n2")
	settling.Settling = true
	model := testModel([]*v1alpha1.L2Advertisement{l2Adv("rack-a", nil, rack("a"))}, nil)
	for _, tc := range []struct {
		name     string
		services []Service
		addr     netip.Addr
		down     map[string]bool
		want     []string // the candidates among n1..n5
	}{
		{"Cluster: every selected node that is not excluded, dead or not",
			[]Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)}, lbV4, nil, []string{"n1", "n2"}},
		{"Cluster without a ready endpoint: nobody",
			[]Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, nil, nil)}, lbV4, nil, nil},
		{"Local: only nodes with an endpoint, settling ones included",
			[]Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1"), settling, ready("n3"), ready("n4")}, nil)}, lbV4, nil, []string{"n1", "n2"}},
		{"Local: a node without an endpoint is none, even while others are dead",
			[]Service{svc("web", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n2")}, nil)}, lbV4, nil, []string{"n2"}},
		{"kube-proxy verdicts do not rule a node out",
			[]Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)}, lbV4, map[string]bool{"n1": true}, []string{"n1", "n2"}},
		{"an address no Service has: nobody",
			[]Service{svc("web", TrafficPolicyCluster, []netip.Addr{lbV4}, []Endpoint{ready("n1")}, nil)}, lbV4b, nil, nil},
		{"shared: the nodes serving the most sharers",
			[]Service{
				svc("a", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n1"), ready("n2")}, nil),
				svc("b", TrafficPolicyLocal, []netip.Addr{lbV4}, []Endpoint{ready("n2")}, nil),
			}, lbV4, nil, []string{"n2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := NewIncremental()
			inc.Compute(Inputs{Self: "n1", Model: model, Services: tc.services, Nodes: nodes, DataPlaneDown: tc.down})
			var got []string
			for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
				if inc.MayAnnounce(tc.addr, n) {
					got = append(got, n)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
		})
	}
	if NewIncremental().MayAnnounce(lbV4, "n1") {
		t.Error("MayAnnounce before any Compute: true, want false")
	}
}

func TestHoldBack(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := NewHoldBack(5 * time.Second)
	type step struct {
		name     string
		yield    *heldAddr // yield lbV4 to this winner before checking
		yield6   *heldAddr
		at       time.Duration
		alive    []string
		want     []netip.Addr
		wantNext time.Duration // 0: none
	}
	steps := []step{
		{name: "nothing held", at: 0, alive: []string{"a", "b"}},
		{name: "yield to a live winner: held firmly for a second", yield: &heldAddr{winner: "b", winnerWasAlive: true}, at: 0, alive: []string{"a", "b"}, want: []netip.Addr{lbV4}, wantNext: time.Second},
		{name: "yield in a partition (winner looks dead): held for the whole hold", yield6: &heldAddr{winner: "c"}, at: 500 * time.Millisecond, alive: []string{"a", "b"}, want: []netip.Addr{lbV4, lbV6}, wantNext: time.Second},
		{name: "the live winner's firm hold ends: released (it is not eligible here, so it withdraws)", at: time.Second, alive: []string{"a", "b"}, want: []netip.Addr{lbV6}, wantNext: 5500 * time.Millisecond},
		{name: "the same winner re-asserts: twice as firm", yield: &heldAddr{winner: "b", winnerWasAlive: true}, at: 1500 * time.Millisecond, alive: []string{"a", "b"}, want: []netip.Addr{lbV4, lbV6}, wantNext: 3500 * time.Millisecond},
		{name: "the winner dies before: released at once", at: 2 * time.Second, alive: []string{"a"}, want: []netip.Addr{lbV6}, wantNext: 5500 * time.Millisecond},
		{name: "the partition hold ends after hold", at: 5500 * time.Millisecond, alive: []string{"a"}},
		{name: "yield to a winner not yet seen alive (it just restarted)", yield: &heldAddr{winner: "b"}, at: 40 * time.Second, alive: []string{"a"}, want: []netip.Addr{lbV4}, wantNext: 45 * time.Second},
		{name: "the winner is seen joining: held for the firm second", at: 40100 * time.Millisecond, alive: []string{"a", "b"}, want: []netip.Addr{lbV4}, wantNext: 41 * time.Second},
		{name: "the winner dies before the hold ends: released at once", at: 40500 * time.Millisecond, alive: []string{"a"}},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.yield != nil {
			h.Yield(lbV4, s.yield.winner, s.yield.winnerWasAlive, now)
		}
		if s.yield6 != nil {
			h.Yield(lbV6, s.yield6.winner, s.yield6.winnerWasAlive, now)
		}
		alive := map[string]bool{}
		for _, n := range s.alive {
			alive[n] = true
		}
		got, next := h.Active(alive, now)
		want := map[netip.Addr]bool{}
		for _, a := range s.want {
			want[a] = true
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("%s: held (-want +got):\n%s", s.name, diff)
		}
		var wantNext time.Time
		if s.wantNext != 0 {
			wantNext = t0.Add(s.wantNext)
		}
		if !next.Equal(wantNext) {
			t.Errorf("%s: next = %v, want %v", s.name, next, wantNext)
		}
	}
}
