package decide

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestResolveConflictIsAntisymmetric(t *testing.T) {
	for i := range 200 {
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		a := ResolveConflict(addr, "node-a", "node-b", true)
		b := ResolveConflict(addr, "node-b", "node-a", true)
		if a == b || (a != ConflictKept && a != ConflictYielded) || (b != ConflictKept && b != ConflictYielded) {
			t.Fatalf("%s: node-a %s, node-b %s: want one kept and one yielded", addr, a, b)
		}
		if want := Ranking(addr, []string{"node-a", "node-b"})[0]; (a == ConflictKept) != (want == "node-a") {
			t.Fatalf("%s: node-a %s, but the ranking puts %s first", addr, a, want)
		}
	}
	if got := ResolveConflict(lbV4, "node-a", "", false); got != ConflictForeign {
		t.Errorf("unknown MAC: %s, want %s", got, ConflictForeign)
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
