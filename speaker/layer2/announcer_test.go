package layer2

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

func testMACs() map[string]net.HardwareAddr {
	return map[string]net.HardwareAddr{"eth0": macEth0, "eth1": macEth1, "eth9": {0x02, 0, 0, 0, 0, 0x09}}
}

func startAnnouncer(t *testing.T, cfg Config) (*Announcer, *fakeSockets) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	socks := newFakeSockets(testMACs())
	a := newAnnouncer(ctx, cfg, socks)
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.Done():
		case <-time.After(10 * time.Second):
			t.Error("announcer goroutines did not stop")
		}
	})
	return a, socks
}

func mustSet(t *testing.T, a *Announcer, d Desired) {
	t.Helper()
	if err := a.Set(context.Background(), d); err != nil {
		t.Fatalf("Set(%v) error = %v", d, err)
	}
}

func parseARPFrame(t *testing.T, b []byte) (ethernet.Frame, arp.Packet) {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatalf("sent frame does not parse: %v", err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		t.Fatalf("sent ARP packet does not parse: %v", err)
	}
	return f, p
}

// gratuitousSent drains every fake socket and describes each gratuitous
// packet sent as "iface addr kind", sorted.
func gratuitousSent(t *testing.T, s *fakeSockets) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, c := range s.arp {
		for len(c.out) > 0 {
			_, p := parseARPFrame(t, <-c.out)
			if p.SenderIP == p.TargetIP {
				out = append(out, fmt.Sprintf("%s %s %s", name, p.SenderIP, p.Operation))
			}
		}
	}
	for name, c := range s.ndp {
		for len(c.out) > 0 {
			m := <-c.out
			if na, ok := m.msg.(*ndp.NeighborAdvertisement); ok && !na.Solicited && m.dst == allNodes {
				out = append(out, fmt.Sprintf("%s %s NA", name, na.TargetAddress))
			}
		}
	}
	slices.Sort(out)
	return out
}

func gratuitousCount(a *Announcer) uint64 {
	s := a.Stats()
	return s.ARP.Gratuitous + s.NDP.Gratuitous
}

func TestAnnouncerAnswersOwnedAddresses(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{0}})
	mustSet(t, a, Desired{v4Eth0: {"eth0"}, v6Eth0: {"eth0"}})
	eventually(t, "the takeover burst", func() bool { return gratuitousCount(a) == 3 })
	gratuitousSent(t, socks)

	arpConn, ndpConn := socks.arpConn("eth0"), socks.ndpConn("eth0")
	arpConn.deliver(arpRequest(t, macClient, v4Client, v4Eth0))
	f, p := parseARPFrame(t, <-arpConn.out)
	if p.Operation != arp.OperationReply || p.SenderIP != v4Eth0 || p.SenderHardwareAddr.String() != macEth0.String() ||
		p.TargetIP != v4Client || f.Destination.String() != macClient.String() {
		t.Errorf("ARP reply %+v to %s, want %s at %s to %s", p, f.Destination, v4Eth0, macEth0, macClient)
	}
	arpConn.deliver(arpRequest(t, macClient, v4Client, v4Free))

	ndpConn.deliver(ndpPacket{msg: ns(v6Eth0, macClient), src: v6Client, dst: solicitedNode(t, v6Eth0), hopLimit: 255, srcMAC: macClient})
	ndpConn.deliver(ndpPacket{msg: ns(v6Eth0, nil), src: v6ClientLL, dst: v6Eth0, hopLimit: 255, srcMAC: macClient})
	for _, want := range []netip.Addr{v6Client, v6ClientLL} {
		got := <-ndpConn.out
		na, ok := got.msg.(*ndp.NeighborAdvertisement)
		if !ok || got.dst != want || got.src != v6Eth0 || got.dstMAC.String() != macClient.String() ||
			!na.Solicited || !na.Override || na.TargetAddress != v6Eth0 {
			t.Errorf("NDP reply %+v from %s to %s at %s, want a solicited override advertisement of %s from itself to %s at %s",
				got.msg, got.src, got.dst, got.dstMAC, v6Eth0, want, macClient)
		}
	}
	ndpConn.deliver(ndpPacket{msg: ns(v6Free, macClient), src: v6Client, dst: solicitedNode(t, v6Free), hopLimit: 255, srcMAC: macClient})

	eventually(t, "every request counted", func() bool {
		s := a.Stats()
		return s.ARP.Requests == 2 && s.NDP.Requests == 3
	})
	if diff := cmp.Diff([]netip.Addr{solicitedNode(t, v6Eth0)}, ndpConn.joined(), cmpOpts); diff != "" {
		t.Errorf("solicited-node groups (-want +got):\n%s", diff)
	}
	got := a.Stats()
	want := Stats{
		ARP:       ProtocolStats{Requests: 2, Replies: 1, Gratuitous: 2, Drops: zeroDrops(map[DropReason]uint64{DropNotOwned: 1})},
		NDP:       ProtocolStats{Requests: 3, Replies: 2, Gratuitous: 1, Drops: zeroDrops(map[DropReason]uint64{DropNotOwned: 1})},
		Announced: 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func zeroDrops(m map[DropReason]uint64) map[DropReason]uint64 {
	out := map[DropReason]uint64{}
	for _, r := range DropReasons {
		out[r] = m[r]
	}
	return out
}

// TestAnnouncerSetSteps drives Set through a sequence of desired states and
// checks, after each, which sockets are open and which gratuitous packets
// were sent: only for addresses newly announced on an interface.
func TestAnnouncerSetSteps(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{0}})
	steps := []struct {
		name       string
		desired    Desired
		responders []string
		opens      int
		gratuitous []string
	}{
		{
			name:       "announce an IPv4 address on eth0",
			desired:    Desired{v4Eth0: {"eth0"}},
			responders: []string{"eth0/ARP"},
			opens:      1,
			gratuitous: []string{"eth0 198.51.100.10 OperationReply", "eth0 198.51.100.10 OperationRequest"},
		},
		{
			name:       "the same state again sends and opens nothing",
			desired:    Desired{v4Eth0: {"eth0"}},
			responders: []string{"eth0/ARP"},
			opens:      0,
		},
		{
			name:       "the same state written differently sends nothing",
			desired:    Desired{netip.MustParseAddr("::ffff:198.51.100.10"): {"eth0", "eth0", ""}},
			responders: []string{"eth0/ARP"},
			opens:      0,
		},
		{
			name:       "a second address, and the first one on eth1 too",
			desired:    Desired{v4Eth0: {"eth1", "eth0"}, v4Free: {"eth0"}},
			responders: []string{"eth0/ARP", "eth1/ARP"},
			opens:      1,
			gratuitous: []string{
				"eth0 198.51.100.12 OperationReply", "eth0 198.51.100.12 OperationRequest",
				"eth1 198.51.100.10 OperationReply", "eth1 198.51.100.10 OperationRequest",
			},
		},
		{
			name:       "the first address leaves eth0",
			desired:    Desired{v4Eth0: {"eth1"}, v4Free: {"eth0"}},
			responders: []string{"eth0/ARP", "eth1/ARP"},
			opens:      0,
		},
		{
			name:       "IPv6 only: ARP sockets close, NDP opens",
			desired:    Desired{v6Eth0: {"eth0"}},
			responders: []string{"eth0/NDP"},
			opens:      1,
			gratuitous: []string{"eth0 2001:db8::10 NA"},
		},
		{
			name:    "nothing",
			desired: Desired{},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before, opensBefore := gratuitousCount(a), socks.openCount()
			mustSet(t, a, st.desired)
			eventually(t, "the bursts", func() bool { return gratuitousCount(a) >= before+uint64(len(st.gratuitous)) })
			// Anything sent beyond the expectation would come right away.
			time.Sleep(20 * time.Millisecond)
			if diff := cmp.Diff(st.gratuitous, gratuitousSent(t, socks)); diff != "" {
				t.Errorf("gratuitous packets (-want +got):\n%s", diff)
			}
			var open []string
			for _, k := range sortedKeys(a.responders) {
				open = append(open, k.iface+"/"+k.proto.String())
			}
			if diff := cmp.Diff(st.responders, open); diff != "" {
				t.Errorf("responders (-want +got):\n%s", diff)
			}
			if got := socks.openCount() - opensBefore; got != st.opens {
				t.Errorf("opened %d sockets, want %d", got, st.opens)
			}
		})
	}
	for name, c := range socks.arp {
		if !c.isClosed() {
			t.Errorf("ARP socket on %s still open", name)
		}
	}
	for name, c := range socks.ndp {
		if !c.isClosed() {
			t.Errorf("NDP socket on %s still open", name)
		}
	}
	if n := a.Stats().Announced; n != 0 {
		t.Errorf("Stats().Announced = %d, want 0", n)
	}
}

func TestAnnouncerWrongInterface(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{}})
	mustSet(t, a, Desired{v4Eth0: {"eth1"}, v4Free: {"eth0"}})
	socks.arpConn("eth0").deliver(arpRequest(t, macClient, v4Client, v4Eth0))
	socks.arpConn("eth1").deliver(arpRequest(t, macClient, v4Client, v4Eth0))
	// Requests counts a request on arrival; the reply or the drop is counted
	// after: wait for both outcomes.
	eventually(t, "both requests", func() bool {
		s := a.Stats().ARP
		return s.Requests == 2 && s.Replies+s.Drops[DropWrongInterface] >= 2
	})
	s := a.Stats().ARP
	if s.Drops[DropWrongInterface] != 1 || s.Replies != 1 {
		t.Errorf("drops %v, replies %d; want one wrongInterface drop and one reply", s.Drops, s.Replies)
	}
	_, p := parseARPFrame(t, <-socks.arpConn("eth1").out)
	if p.SenderHardwareAddr.String() != macEth1.String() {
		t.Errorf("eth1 answered with %s, want its own MAC %s", p.SenderHardwareAddr, macEth1)
	}
}

func TestAnnouncerBurst(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond}})
	mustSet(t, a, Desired{v4Eth0: {"eth0"}, v6Eth0: {"eth0"}})
	eventually(t, "three rounds", func() bool { return gratuitousCount(a) == 9 })
	want := []string{
		"eth0 198.51.100.10 OperationReply", "eth0 198.51.100.10 OperationReply", "eth0 198.51.100.10 OperationReply",
		"eth0 198.51.100.10 OperationRequest", "eth0 198.51.100.10 OperationRequest", "eth0 198.51.100.10 OperationRequest",
		"eth0 2001:db8::10 NA", "eth0 2001:db8::10 NA", "eth0 2001:db8::10 NA",
	}
	if diff := cmp.Diff(want, gratuitousSent(t, socks)); diff != "" {
		t.Errorf("gratuitous packets (-want +got):\n%s", diff)
	}

	if !a.Reannounce(v6Eth0) {
		t.Error("Reannounce(owned address) = false")
	}
	if a.Reannounce(v6Free) {
		t.Error("Reannounce(address not owned) = true")
	}
	eventually(t, "the reannouncement", func() bool { return gratuitousCount(a) == 12 })
	if diff := cmp.Diff([]string{"eth0 2001:db8::10 NA", "eth0 2001:db8::10 NA", "eth0 2001:db8::10 NA"}, gratuitousSent(t, socks)); diff != "" {
		t.Errorf("reannounced packets (-want +got):\n%s", diff)
	}
}

// TestAnnouncerBurstStopsForRemovedAddress checks that a node that gives an
// address up (say, after losing a conflict) sends no more gratuitous packets
// for it, even in the middle of a burst.
func TestAnnouncerBurstStopsForRemovedAddress(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{0, 150 * time.Millisecond}})
	mustSet(t, a, Desired{v4Eth0: {"eth0"}, v4Free: {"eth0"}})
	eventually(t, "the first round", func() bool { return gratuitousCount(a) == 4 })
	mustSet(t, a, Desired{v4Free: {"eth0"}})
	eventually(t, "the second round", func() bool { return gratuitousCount(a) == 6 })
	time.Sleep(50 * time.Millisecond)
	want := []string{
		"eth0 198.51.100.10 OperationReply", "eth0 198.51.100.10 OperationRequest",
		"eth0 198.51.100.12 OperationReply", "eth0 198.51.100.12 OperationReply", "eth0 198.51.100.12 OperationRequest", "eth0 198.51.100.12 OperationRequest",
	}
	if diff := cmp.Diff(want, gratuitousSent(t, socks)); diff != "" {
		t.Errorf("gratuitous packets (-want +got):\n%s", diff)
	}
}

func TestAnnouncerConflicts(t *testing.T) {
	otherLL := netip.MustParseAddr("fe80::99")
	tests := []struct {
		name     string
		holdoff  time.Duration
		sends    int
		wantSeen int
	}{
		{name: "a repeated conflict is reported once per holdoff", holdoff: time.Hour, sends: 3, wantSeen: 1},
		{name: "after the holdoff it is reported again", holdoff: time.Nanosecond, sends: 3, wantSeen: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{}, ConflictHoldoff: tt.holdoff})
			mustSet(t, a, Desired{v4Eth0: {"eth0"}, v6Eth0: {"eth0"}})
			for i := 0; i < tt.sends; i++ {
				// Another speaker's gratuitous ARP and unsolicited advertisement.
				socks.arpConn("eth0").deliver(arpRequest(t, macOther, v4Eth0, v4Eth0))
				socks.ndpConn("eth0").deliver(ndpPacket{msg: na(v6Eth0, macOther), src: otherLL, dst: allNodes, hopLimit: 255, srcMAC: macOther})
				// Noise that is no conflict: our own packets and other addresses.
				socks.arpConn("eth0").deliver(arpRequest(t, macEth0, v4Eth0, v4Eth0))
				socks.arpConn("eth0").deliver(arpRequest(t, macOther, v4Free, v4Free))
			}
			eventually(t, "every conflict counted", func() bool {
				s := a.Stats()
				return s.ARP.Conflicts == uint64(tt.sends) && s.NDP.Conflicts == uint64(tt.sends) &&
					s.ARP.Drops[DropGratuitous]+s.ARP.Drops[DropFromSelf] == uint64(3*tt.sends)
			})
			var got []Conflict
			for len(a.Conflicts()) > 0 {
				got = append(got, <-a.Conflicts())
			}
			var want []Conflict
			for i := 0; i < tt.wantSeen; i++ {
				want = append(want,
					Conflict{Addr: v4Eth0, Interface: "eth0", OtherMAC: macOther, Evidence: EvidenceARPRequest},
					Conflict{Addr: v6Eth0, Interface: "eth0", OtherMAC: macOther, OtherIP: otherLL, Evidence: EvidenceNeighborAdvertisement},
				)
			}
			sortConflicts := func(c []Conflict) {
				slices.SortStableFunc(c, func(x, y Conflict) int { return x.Addr.Compare(y.Addr) })
			}
			sortConflicts(got)
			sortConflicts(want)
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("conflict events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnnouncerSolicitedNodeGroups checks group membership follows the
// owned IPv6 addresses, with several addresses sharing one group.
func TestAnnouncerSolicitedNodeGroups(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{}})
	x1, x2 := netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:2::10") // both ff02::1:ff00:10
	y := netip.MustParseAddr("2001:db8:1::20")
	steps := []struct {
		desired Desired
		want    []string
	}{
		{Desired{x1: {"eth0"}, x2: {"eth0"}}, []string{"ff02::1:ff00:10"}},
		{Desired{x2: {"eth0"}}, []string{"ff02::1:ff00:10"}},
		{Desired{x2: {"eth0"}, y: {"eth0"}}, []string{"ff02::1:ff00:10", "ff02::1:ff00:20"}},
		{Desired{y: {"eth0"}, v4Eth0: {"eth0"}}, []string{"ff02::1:ff00:20"}},
	}
	for i, st := range steps {
		mustSet(t, a, st.desired) // the fake fails a double join or a stray leave
		var got []string
		for _, g := range socks.ndpConn("eth0").joined() {
			got = append(got, g.String())
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("step %d: groups (-want +got):\n%s", i, diff)
		}
	}
}

// TestAnnouncerAllMulticastForManyGroups checks that above
// MaxSolicitedNodeGroups the responder leaves its groups for all-multicast
// mode, still answers, and goes back to single groups at half as many.
func TestAnnouncerAllMulticastForManyGroups(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{}})
	many := func(n int) Desired {
		d := Desired{}
		for i := range n {
			d[netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 14: byte(i >> 8), 15: byte(i)})] = []string{"eth0"}
		}
		return d
	}
	steps := []struct {
		n          int
		wantGroups int
		wantAll    bool
	}{
		{n: 10, wantGroups: 10},
		{n: MaxSolicitedNodeGroups + 1, wantAll: true},
		{n: MaxSolicitedNodeGroups/2 + 1, wantAll: true}, // hysteresis
		{n: MaxSolicitedNodeGroups / 2, wantGroups: MaxSolicitedNodeGroups / 2},
		{n: MaxSolicitedNodeGroups * 4, wantAll: true},
	}
	for i, st := range steps {
		mustSet(t, a, many(st.n))
		c := socks.ndpConn("eth0")
		if got := len(c.joined()); got != st.wantGroups {
			t.Errorf("step %d (%d addresses): %d groups joined, want %d", i, st.n, got, st.wantGroups)
		}
		if got := c.isAllMulti(); got != st.wantAll {
			t.Errorf("step %d (%d addresses): all-multicast %v, want %v", i, st.n, got, st.wantAll)
		}
	}
}
