package decide

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestPlanDrains(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)
	window := time.Minute
	vip := netip.MustParseAddr("198.51.100.138")
	vip2 := netip.MustParseAddr("198.51.100.139")
	vip6 := netip.MustParseAddr("2001:db8::138")
	node3 := netip.MustParseAddr("203.0.113.3")
	node2 := netip.MustParseAddr("203.0.113.2")
	addrs := map[string]netip.Addr{"node2": node2, "node3": node3}
	owned := func(as ...netip.Addr) map[netip.Addr]Layer2Entry {
		m := map[netip.Addr]Layer2Entry{}
		for _, a := range as {
			m[a] = Layer2Entry{Interfaces: []string{"eth0"}}
		}
		return m
	}
	gained := func(a netip.Addr, prev string) OwnershipChange {
		return OwnershipChange{Addr: a, Gained: true, Previous: prev, Next: "node1"}
	}
	drain := func(a netip.Addr, node string, via netip.Addr, until time.Time) Drain {
		return Drain{Addr: a, Node: node, Via: via, Until: until}
	}
	advertised := func(as ...netip.Addr) map[netip.Addr]BGPEntry {
		m := map[netip.Addr]BGPEntry{}
		for _, a := range as {
			m[a] = BGPEntry{Advertisers: []string{"node1"}}
		}
		return m
	}
	tests := []struct {
		name     string
		in       DrainInputs
		want     []Drain
		wantNext time.Time
	}{
		{
			name: "an address gained from a live node drains to it for the window",
			in:   DrainInputs{Changes: []OwnershipChange{gained(vip, "node3")}, Layer2: owned(vip)},
			want: []Drain{drain(vip, "node3", node3, t0.Add(window))}, wantNext: t0.Add(window),
		},
		{
			name: "the previous owner is down (presumed dead, or its kernel did not answer): no drain, the client gets a reset rather than a black hole",
			in:   DrainInputs{Changes: []OwnershipChange{gained(vip, "node3")}, Layer2: owned(vip), Down: map[string]bool{"node3": true}},
		},
		{
			name: "no previous owner (a new address) or this node itself: nothing to drain",
			in:   DrainInputs{Changes: []OwnershipChange{gained(vip, ""), gained(vip2, "node1")}, Layer2: owned(vip, vip2)},
		},
		{
			name: "the previous owner's address is unknown, or of the other family: no drain",
			in:   DrainInputs{Changes: []OwnershipChange{gained(vip, "node9"), gained(vip6, "node3")}, Layer2: owned(vip, vip6)},
		},
		{
			name: "a window of zero drains nothing",
			in:   DrainInputs{Window: -1, Changes: []OwnershipChange{gained(vip, "node3")}, Layer2: owned(vip)},
		},
		{
			name: "a drain goes on until its end",
			in: DrainInputs{Now: t0.Add(59 * time.Second), Previous: []Drain{drain(vip, "node3", node3, t0.Add(window))},
				Layer2: owned(vip)},
			want: []Drain{drain(vip, "node3", node3, t0.Add(window))}, wantNext: t0.Add(window),
		},
		{
			name: "and ends at its end",
			in:   DrainInputs{Now: t0.Add(window), Previous: []Drain{drain(vip, "node3", node3, t0.Add(window))}, Layer2: owned(vip)},
		},
		{
			name: "a drain ends when this node no longer announces the address (the new owner drains, not this node)",
			in:   DrainInputs{Previous: []Drain{drain(vip, "node3", node3, t0.Add(window))}, Layer2: owned()},
		},
		{
			name: "a drain ends when its node goes down",
			in: DrainInputs{Previous: []Drain{drain(vip, "node3", node3, t0.Add(window))}, Layer2: owned(vip),
				Down: map[string]bool{"node3": true}},
		},
		{
			name: "a new move of a drained address replaces its drain; the earliest end comes first",
			in: DrainInputs{Now: t0.Add(10 * time.Second),
				Previous: []Drain{drain(vip, "node3", node3, t0.Add(window)), drain(vip2, "node3", node3, t0.Add(window))},
				Changes:  []OwnershipChange{gained(vip, "node2")}, Layer2: owned(vip, vip2)},
			want:     []Drain{drain(vip, "node2", node2, t0.Add(70*time.Second)), drain(vip2, "node3", node3, t0.Add(window))},
			wantNext: t0.Add(window),
		},
		{
			name: "a BGP address another live node stopped advertising drains to it for the window",
			in:   DrainInputs{Withdrawals: []Withdrawal{{Addr: vip, Node: "node3"}}, BGP: advertised(vip)},
			want: []Drain{drain(vip, "node3", node3, t0.Add(window))}, wantNext: t0.Add(window),
		},
		{
			name: "a BGP withdrawal by a node that is down, or of an address this node no longer advertises: no drain",
			in: DrainInputs{Withdrawals: []Withdrawal{{Addr: vip, Node: "node3"}, {Addr: vip2, Node: "node2"}},
				BGP: advertised(vip), Down: map[string]bool{"node3": true}},
		},
		{
			name: "a BGP drain goes on while this node advertises the address, and ends when it stops",
			in: DrainInputs{Now: t0.Add(time.Second), Previous: []Drain{drain(vip, "node3", node3, t0.Add(window)), drain(vip2, "node3", node3, t0.Add(window))},
				BGP: advertised(vip)},
			want: []Drain{drain(vip, "node3", node3, t0.Add(window))}, wantNext: t0.Add(window),
		},
		{
			name: "an address both gained at layer 2 and withdrawn over BGP drains to the previous layer-2 owner",
			in: DrainInputs{Changes: []OwnershipChange{gained(vip, "node2")}, Withdrawals: []Withdrawal{{Addr: vip, Node: "node3"}},
				Layer2: owned(vip), BGP: advertised(vip)},
			want: []Drain{drain(vip, "node2", node2, t0.Add(window))}, wantNext: t0.Add(window),
		},
		{
			name: "a lost address is no change to drain",
			in:   DrainInputs{Changes: []OwnershipChange{{Addr: vip, Previous: "node1"}}, Layer2: owned()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Self = "node1"
			if in.Now.IsZero() {
				in.Now = t0
			}
			if in.Window == 0 {
				in.Window = window
			}
			in.NodeAddrs = addrs
			got, next := PlanDrains(in)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PlanDrains (-want +got):\n%s", diff)
			}
			if !next.Equal(tt.wantNext) {
				t.Errorf("next = %v, want %v", next, tt.wantNext)
			}
		})
	}
}

func TestDrainCandidates(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	c := netip.MustParseAddr("198.51.100.3")
	d := netip.MustParseAddr("198.51.100.4")
	e := netip.MustParseAddr("198.51.100.5")
	got := DrainCandidates(DrainInputs{Self: "node1", Changes: []OwnershipChange{
		{Addr: a, Gained: true, Previous: "node3"},
		{Addr: b, Gained: true, Previous: "node2"},
		{Addr: c, Gained: true, Previous: "node3"},
		{Addr: c, Gained: true, Previous: "node1"},
		{Addr: a, Previous: "node1"},
		{Addr: b, Gained: true},
		{Addr: e, Gained: true, Previous: "node6"}, // not announced here (any more)
	}, Withdrawals: []Withdrawal{
		{Addr: d, Node: "node4"},
		{Addr: e, Node: "node5"}, // not advertised here (any more)
	},
		Layer2: map[netip.Addr]Layer2Entry{a: {}, b: {}, c: {}},
		BGP:    map[netip.Addr]BGPEntry{d: {}},
	})
	if diff := cmp.Diff([]string{"node2", "node3", "node4"}, got); diff != "" {
		t.Errorf("DrainCandidates (-want +got):\n%s", diff)
	}
}

func TestBGPWithdrawals(t *testing.T) {
	a := netip.MustParseAddr("203.0.113.1")
	entry := func(advertisers, serving []string) BGPEntry {
		return BGPEntry{Advertisers: advertisers, Serving: serving}
	}
	both := []string{"node1", "node2"}
	three := []string{"node1", "node2", "node3"}
	tests := []struct {
		name       string
		prev, next map[netip.Addr]BGPEntry
		want       []Withdrawal
	}{
		{
			name: "the last ready endpoint on node2 turned terminating but serving: node2 withdrew, node1 goes on",
			prev: map[netip.Addr]BGPEntry{a: entry(both, both)},
			next: map[netip.Addr]BGPEntry{a: entry([]string{"node1"}, both)},
			want: []Withdrawal{{Addr: a, Node: "node2"}},
		},
		{
			name: "node2's endpoint is gone (not serving): nothing there to drain to",
			prev: map[netip.Addr]BGPEntry{a: entry(both, both)},
			next: map[netip.Addr]BGPEntry{a: entry([]string{"node1"}, []string{"node1"})},
		},
		{
			name: "two nodes withdrew at once: whose a flow was is unknown, no drain",
			prev: map[netip.Addr]BGPEntry{a: entry(three, three)},
			next: map[netip.Addr]BGPEntry{a: entry([]string{"node1"}, three)},
		},
		{
			name: "this node begins advertising as node2 withdraws: it cannot tell where its flows came from",
			prev: map[netip.Addr]BGPEntry{},
			next: map[netip.Addr]BGPEntry{a: entry([]string{"node1"}, both)},
		},
		{
			name: "this node stops advertising: the others drain, not this one",
			prev: map[netip.Addr]BGPEntry{a: entry(both, both)},
			next: map[netip.Addr]BGPEntry{},
		},
		{
			name: "a node joins the advertisers: no withdrawal",
			prev: map[netip.Addr]BGPEntry{a: entry([]string{"node1"}, both)},
			next: map[netip.Addr]BGPEntry{a: entry(both, both)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BGPWithdrawals(Desired{BGP: tt.prev}, Desired{BGP: tt.next}, "node1")
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("BGPWithdrawals (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStartChanges(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	d := Desired{
		Layer2:     map[netip.Addr]Layer2Entry{b: {Interfaces: []string{"eth0"}}, a: {Interfaces: []string{"eth0"}}},
		Successors: map[netip.Addr]string{a: "node3", b: ""},
	}
	want := []OwnershipChange{
		{Addr: a, Gained: true, Previous: "node3", Next: "node1", Interfaces: []string{"eth0"}},
		{Addr: b, Gained: true, Next: "node1", Interfaces: []string{"eth0"}},
	}
	if diff := cmp.Diff(want, StartChanges(d, "node1"), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("StartChanges (-want +got):\n%s", diff)
	}
}
