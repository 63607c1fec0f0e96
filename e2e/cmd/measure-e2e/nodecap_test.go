package main

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
)

func TestOnNodes(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	pkt := func(us int, line string) netlab.Packet {
		return netlab.Packet{Time: t0.Add(time.Duration(us) * time.Microsecond), Line: line}
	}
	// node2 takes the SYN and sends it on to node1 (as a drain would a
	// segment without SYN), which sends it to its pod.
	in2 := pkt(10, "198.51.100.3.47178 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	out2 := pkt(20, "198.51.100.3.47178 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	in1 := pkt(30, "198.51.100.3.47178 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	veth1 := pkt(40, "198.51.100.3.47178 > 203.0.113.2.8080: Flags [S], seq 1, win 64240, length 0")
	other := pkt(35, "198.51.100.3.47180 > 198.51.100.128.80: Flags [S], seq 1, win 64240, length 0")
	client := netip.MustParseAddrPort("198.51.100.3:47178")
	cs := nodeCaptures{
		{name: "node1", pkts: []netlab.Packet{in1, other, veth1}},
		{name: "node2", pkts: []netlab.Packet{in2, out2}},
		{name: "node3", pkts: []netlab.Packet{other}},
	}
	for _, tc := range []struct {
		name     string
		from, to time.Duration
		want     []nodePacket
		none     []string
	}{
		{"in time order, node by node", 0, time.Second,
			[]nodePacket{{"node2", in2}, {"node2", out2}, {"node1", in1}, {"node1", veth1}}, []string{"node3"}},
		{"a window", 25 * time.Microsecond, time.Second,
			[]nodePacket{{"node1", in1}, {"node1", veth1}}, []string{"node2", "node3"}},
		{"nothing", time.Second, 2 * time.Second, nil, []string{"node1", "node2", "node3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, none := onNodes(cs, client, t0.Add(tc.from), t0.Add(tc.to))
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(none, tc.none) {
				t.Errorf("onNodes = %v, %v\nwant %v, %v", got, none, tc.want, tc.none)
			}
		})
	}
}

func TestConntrackEntries(t *testing.T) {
	// A real one, from node2 after a rollout trial.
	entry := "tcp      6 117 TIME_WAIT src=198.51.100.3 dst=198.51.100.128 sport=48590 dport=80 src=203.0.113.19 dst=198.51.100.3 sport=8080 dport=48590 [ASSURED] mark=0 use=1"
	for _, tc := range []struct {
		name, out string
		want      []string
	}{
		{"none", "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n", nil},
		{"one", entry + "\nconntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n", []string{entry}},
		{"summary first", "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n" + entry + "\n", []string{entry}},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := conntrackEntries(tc.out); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("conntrackEntries = %q, want %q", got, tc.want)
			}
		})
	}
}
