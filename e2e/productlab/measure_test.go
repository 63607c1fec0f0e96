package productlab

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
)

func TestLongestOutage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	ok := func(n int) Attempt { return Attempt{Start: ms(n), Pod: "p"} }
	bad := func(n int) Attempt { return Attempt{Start: ms(n), Err: errors.New("x")} }
	tests := []struct {
		name   string
		as     []Attempt
		from   int
		want   time.Duration
		wantOK bool
	}{
		{"no outage", []Attempt{ok(0), ok(10), ok(20), ok(30)}, 15, 0, true},
		{"late probes are no outage", []Attempt{ok(0), ok(10), ok(60), ok(70)}, 15, 0, true},
		{"outage across from", []Attempt{ok(0), ok(10), bad(20), bad(30), ok(40)}, 15, 20 * time.Millisecond, true},
		{"later outage is longer", []Attempt{ok(0), ok(10), bad(20), ok(30), bad(40), bad(50), bad(60), ok(70)}, 15, 30 * time.Millisecond, true},
		{"outage before from only", []Attempt{ok(0), bad(10), bad(20), ok(30), ok(40), ok(50)}, 35, 0, true},
		{"run that began before from counts whole", []Attempt{ok(0), bad(10), bad(20), ok(30)}, 15, 20 * time.Millisecond, true},
		{"no success after", []Attempt{ok(0), bad(20)}, 15, 0, false},
		{"no success before", []Attempt{bad(0), bad(10), ok(40)}, 5, 40 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotOK := LongestOutage(tt.as, ms(tt.from))
			if got != tt.want || gotOK != tt.wantOK {
				t.Errorf("LongestOutage = %v, %v; want %v, %v", got, gotOK, tt.want, tt.wantOK)
			}
			start, end, runOK := LongestOutageRun(tt.as, ms(tt.from))
			if end.Sub(start) != tt.want || runOK != tt.wantOK || (tt.want > 0 && !slices.ContainsFunc(tt.as, func(a Attempt) bool { return a.Start.Equal(start) && !a.OK() })) {
				t.Errorf("LongestOutageRun = %v to %v, %v; want a run of %v starting at a failed attempt, %v", start, end, runOK, tt.want, tt.wantOK)
			}
		})
	}
}

func TestGratuitousARP(t *testing.T) {
	t0 := time.Unix(1000, 0)
	bcast, _ := net.ParseMAC("ff:ff:ff:ff:ff:ff")
	old, _ := net.ParseMAC("02:68:6c:00:00:01")
	nw, _ := net.ParseMAC("02:68:6c:00:00:02")
	client, _ := net.ParseMAC("02:68:6c:00:00:03")
	addr := netip.MustParseAddr("198.51.100.130")
	pkts := []netlab.Packet{
		{Time: t0.Add(1), Src: nw, Dst: bcast, Line: "Reply 198.51.100.130 is-at 02:68:6c:00:00:02, length 28"},  // before
		{Time: t0.Add(2), Src: old, Dst: bcast, Line: "Reply 198.51.100.130 is-at 02:68:6c:00:00:01, length 28"}, // the old owner
		{Time: t0.Add(3), Src: nw, Dst: client, Line: "Reply 198.51.100.130 is-at 02:68:6c:00:00:02, length 28"}, // an answer
		{Time: t0.Add(4), Src: nw, Dst: bcast, Line: "Reply 198.51.100.131 is-at 02:68:6c:00:00:02, length 28"},  // another address
		{Time: t0.Add(5), Src: nw, Dst: bcast, Line: "Request who-has 198.51.100.130 tell 198.51.100.130, length 28"},
	}
	p, ok := GratuitousARP(pkts, addr, t0.Add(1), old.String())
	if !ok || !p.Time.Equal(t0.Add(5)) {
		t.Errorf("GratuitousARP = %+v, %v; want the packet at +5ns", p, ok)
	}
	if _, ok := GratuitousARP(pkts, addr, t0.Add(5), ""); ok {
		t.Errorf("GratuitousARP after the last packet found one")
	}
}

func TestTroubledConnections(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	pkt := func(ms int, line string) netlab.Packet {
		return netlab.Packet{Time: t0.Add(time.Duration(ms) * time.Millisecond), Line: line}
	}
	// A complete connection (the server closes first), one reset after its
	// handshake went on at another node, one whose SYN got no answer, and
	// one that begins after the window.
	ok := []netlab.Packet{
		pkt(0, "198.51.100.100.40000 > 198.51.100.140.80: Flags [S], seq 1, length 0"),
		pkt(1, "198.51.100.140.80 > 198.51.100.100.40000: Flags [S.], seq 9, ack 2, length 0"),
		pkt(2, "198.51.100.100.40000 > 198.51.100.140.80: Flags [.], ack 1, length 0"),
		pkt(3, "198.51.100.140.80 > 198.51.100.100.40000: Flags [F.], seq 1, ack 1, length 0"),
		pkt(4, "198.51.100.140.80 > 198.51.100.100.40000: Flags [R], seq 2, length 0"),
	}
	reset := []netlab.Packet{
		pkt(10, "198.51.100.100.40002 > 198.51.100.140.80: Flags [S], seq 1, length 0"),
		pkt(11, "198.51.100.140.80 > 198.51.100.100.40002: Flags [S.], seq 9, ack 2, length 0"),
		pkt(12, "198.51.100.100.40002 > 198.51.100.140.80: Flags [.], ack 1, length 0"),
		pkt(13, "198.51.100.140.80 > 198.51.100.100.40002: Flags [R], seq 1, length 0"),
	}
	unanswered := []netlab.Packet{
		pkt(20, "198.51.100.100.40004 > 198.51.100.140.80: Flags [S], seq 1, length 0"),
		pkt(1020, "198.51.100.100.40004 > 198.51.100.140.80: Flags [S], seq 1, length 0"),
	}
	late := []netlab.Packet{
		pkt(5000, "198.51.100.100.40006 > 198.51.100.140.80: Flags [S], seq 1, length 0"),
	}
	other := pkt(15, "198.51.100.100.40008 > 198.51.100.141.80: Flags [S], seq 1, length 0")
	var all []netlab.Packet
	all = append(all, ok[:3]...)
	all = append(all, reset[:2]...)
	all = append(all, ok[3:]...)
	all = append(all, reset[2:]...)
	all = append(all, other, unanswered[0])
	all = append(all, unanswered[1:]...)
	all = append(all, late...)
	svc := netip.MustParseAddrPort("198.51.100.140:80")
	for _, tc := range []struct {
		name     string
		from, to time.Duration
		want     [][]netlab.Packet
	}{
		{"all of them", 0, 10 * time.Second, [][]netlab.Packet{reset, unanswered, late}},
		{"a window", 5 * time.Millisecond, time.Second, [][]netlab.Packet{reset, unanswered}},
		{"none", 30 * time.Millisecond, time.Second, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TroubledConnections(all, svc, t0.Add(tc.from), t0.Add(tc.to))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestUnsolicitedNA(t *testing.T) {
	t0 := time.Unix(1000, 0)
	allNodes, _ := net.ParseMAC("33:33:00:00:00:01")
	old, _ := net.ParseMAC("02:68:6c:00:00:01")
	nw, _ := net.ParseMAC("02:68:6c:00:00:02")
	client, _ := net.ParseMAC("02:68:6c:00:00:03")
	addr := netip.MustParseAddr("2001:db8:1::1:5")
	na := func(tgt string) string {
		return "fe80::68:6cff:fe00:2 > ff02::1: ICMP6, neighbor advertisement, tgt is " + tgt + ", length 32"
	}
	pkts := []netlab.Packet{
		{Time: t0.Add(1), Src: nw, Dst: allNodes, Line: na("2001:db8:1::1:5")},  // before
		{Time: t0.Add(2), Src: old, Dst: allNodes, Line: na("2001:db8:1::1:5")}, // the old owner
		{Time: t0.Add(3), Src: nw, Dst: client, Line: na("2001:db8:1::1:5")},    // solicited
		{Time: t0.Add(4), Src: nw, Dst: allNodes, Line: na("2001:db8:1::1:50")}, // another address
		{Time: t0.Add(5), Src: nw, Dst: allNodes, Line: na("2001:db8:1::1:5")},
	}
	p, ok := Gratuitous(pkts, addr, t0.Add(1), old.String())
	if !ok || !p.Time.Equal(t0.Add(5)) {
		t.Errorf("Gratuitous = %+v, %v; want the packet at +5ns", p, ok)
	}
	if _, ok := UnsolicitedNA(pkts, addr, t0.Add(5), ""); ok {
		t.Errorf("UnsolicitedNA after the last packet found one")
	}
}

func TestClientEnd(t *testing.T) {
	pkt := func(line string) []netlab.Packet { return []netlab.Packet{{Line: line}} }
	for _, tc := range []struct {
		name string
		conn []netlab.Packet
		want netip.AddrPort
		ok   bool
	}{
		{"IPv4", pkt("198.51.100.3.47178 > 198.51.100.128.80: Flags [S], seq 1, length 0"), netip.MustParseAddrPort("198.51.100.3:47178"), true},
		{"IPv6", pkt("2001:db8::3.47178 > 2001:db8:1::1:5.80: Flags [S], seq 1, length 0"), netip.MustParseAddrPort("[2001:db8::3]:47178"), true},
		{"no port", pkt("198.51.100.1 > 198.51.100.3: ICMP host 198.51.100.128 unreachable, length 68"), netip.AddrPort{}, false},
		{"no packet", nil, netip.AddrPort{}, false},
		{"no addresses", pkt("Request who-has 198.51.100.130 tell 198.51.100.130, length 28"), netip.AddrPort{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClientEnd(tc.conn)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ClientEnd = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestConnectionPackets(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	pkt := func(ms int, iface, dir, line string) netlab.Packet {
		return netlab.Packet{Time: t0.Add(time.Duration(ms) * time.Millisecond), Iface: iface, Dir: dir, Line: line}
	}
	// What node2 sees of a connection from 198.51.100.3.47178 to the
	// Service at 198.51.100.128.80 whose pod is 203.0.113.66.8080: the SYN
	// arrives, kube-proxy's DNAT sends it to the pod over the bridge and its
	// veth; and around it another connection of the client, the same port
	// later, an ICMP error to the client and a neighbour solicitation.
	syn := pkt(0, "eth0", "In", "198.51.100.3.47178 > 198.51.100.128.80: Flags [S], seq 2844757622, win 64240, length 0")
	bridge := pkt(0, "cni0", "Out", "198.51.100.3.47178 > 203.0.113.66.8080: Flags [S], seq 2844757622, win 64240, length 0")
	veth := pkt(0, "veth2", "Out", "198.51.100.3.47178 > 203.0.113.66.8080: Flags [S], seq 2844757622, win 64240, length 0")
	synAck := pkt(1, "veth2", "In", "203.0.113.66.8080 > 198.51.100.3.47178: Flags [S.], seq 7, ack 2844757623, win 65160, length 0")
	icmp := pkt(2, "eth0", "Out", "198.51.100.12 > 198.51.100.3: ICMP host 198.51.100.128 unreachable, length 68")
	other := pkt(1, "eth0", "In", "198.51.100.3.47180 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	otherHost := pkt(1, "eth0", "In", "198.51.100.30.47178 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	prefix := pkt(1, "eth0", "In", "198.51.100.3.4717 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	ndp := pkt(1, "eth0", "In", "2001:db8::3 > ff02::1:ff00:c: ICMP6, neighbor solicitation, who has 2001:db8::c, length 32")
	icmp6 := pkt(2, "eth0", "Out", "2001:db8::c > 2001:db8::3: ICMP6, destination unreachable, unreachable route 2001:db8:1::1:5, length 88")
	later := pkt(5000, "eth0", "In", "198.51.100.3.47178 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	pkts := []netlab.Packet{syn, other, bridge, otherHost, prefix, veth, synAck, icmp, ndp, icmp6, later}
	for _, tc := range []struct {
		name     string
		client   string
		from, to time.Duration
		want     []netlab.Packet
	}{
		{"the connection and an ICMP error", "198.51.100.3:47178", -time.Millisecond, 2 * time.Second, []netlab.Packet{syn, bridge, veth, synAck, icmp}},
		{"the port reused later", "198.51.100.3:47178", 4 * time.Second, 6 * time.Second, []netlab.Packet{later}},
		{"another port", "198.51.100.3:47180", -time.Millisecond, 2 * time.Second, []netlab.Packet{other, icmp}},
		{"IPv6, without neighbour discovery", "[2001:db8::3]:47178", -time.Millisecond, 2 * time.Second, []netlab.Packet{icmp6}},
		{"no such client", "198.51.100.4:47178", -time.Millisecond, 10 * time.Second, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ConnectionPackets(pkts, netip.MustParseAddrPort(tc.client), t0.Add(tc.from), t0.Add(tc.to))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}
