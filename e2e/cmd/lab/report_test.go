package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func status(node string, ready bool, l2 []v1alpha1.Layer2Announcement, bgp ...v1alpha1.BGPSessionStatus) v1alpha1.SpeakerStatus {
	cond := metav1.ConditionFalse
	if ready {
		cond = metav1.ConditionTrue
	}
	return v1alpha1.SpeakerStatus{
		ObjectMeta: metav1.ObjectMeta{Name: node},
		Status: v1alpha1.SpeakerStatusStatus{
			Conditions:  []metav1.Condition{{Type: "Ready", Status: cond}},
			Layer2:      l2,
			BGPSessions: bgp,
		},
	}
}

func TestAnnouncements(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.144")
	v6 := netip.MustParseAddr("2001:db8:1::1:100")
	routedAddr := netip.MustParseAddr("203.0.113.128")
	l2 := func(addr, svc string, ifs ...string) v1alpha1.Layer2Announcement {
		return v1alpha1.Layer2Announcement{Address: addr, Service: svc, Interfaces: ifs}
	}
	tests := []struct {
		name     string
		statuses []v1alpha1.SpeakerStatus
		service  string
		bgp      []netip.Addr
		want     map[netip.Addr][]Announcer
	}{
		{
			name: "ARP and NDP from different nodes, other Services ignored",
			statuses: []v1alpha1.SpeakerStatus{
				status("node3", true, []v1alpha1.Layer2Announcement{l2(v6.String(), "default/dual-stack", "eth0")}),
				status("node1", true, []v1alpha1.Layer2Announcement{
					l2(v4.String(), "default/dual-stack", "eth0"),
					l2("198.51.100.128", "default/web", "eth0"),
				}),
			},
			service: "default/dual-stack",
			want: map[netip.Addr][]Announcer{
				v4: {{Node: "node1", How: "ARP on eth0"}},
				v6: {{Node: "node3", How: "NDP on eth0"}},
			},
		},
		{
			name: "a speaker that is not ready does not count",
			statuses: []v1alpha1.SpeakerStatus{
				status("node2", false, []v1alpha1.Layer2Announcement{l2(v4.String(), "default/web")}),
			},
			service: "default/web",
			want:    map[netip.Addr][]Announcer{},
		},
		{
			name: "BGP: only Established sessions advertising prefixes, nodes sorted",
			statuses: []v1alpha1.SpeakerStatus{
				status("node2", true, nil, v1alpha1.BGPSessionStatus{Peer: "router", State: "Established", PrefixesAdvertised: 1}),
				status("node1", true, nil, v1alpha1.BGPSessionStatus{Peer: "router", State: "Established", PrefixesAdvertised: 2}),
				status("node3", true, nil, v1alpha1.BGPSessionStatus{Peer: "router", State: "Active"}),
			},
			service: "default/routed-web",
			bgp:     []netip.Addr{routedAddr},
			want: map[netip.Addr][]Announcer{
				routedAddr: {{Node: "node1", How: "BGP via router"}, {Node: "node2", How: "BGP via router"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Announcements(tt.statuses, tt.service, tt.bgp)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Announcements (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormatReport(t *testing.T) {
	web := netip.MustParseAddr("198.51.100.128")
	routedAddr := netip.MustParseAddr("203.0.113.128")
	rows := []ServiceRow{
		{
			Service:    "default/routed-web",
			Addresses:  []netip.Addr{routedAddr},
			Probes:     []Probe{{Target: netip.AddrPortFrom(routedAddr, 80), Err: "timed out"}},
			Note:       "not advertised",
			Announcers: map[netip.Addr][]Announcer{},
		},
		{Service: "default/pending", Note: "AllocationFailed: pool exhausted"},
		{
			Service:    "default/web",
			Addresses:  []netip.Addr{web},
			Announcers: map[netip.Addr][]Announcer{web: {{Node: "node2", How: "ARP on eth0"}}},
			Probes:     []Probe{{Target: netip.AddrPortFrom(web, 80), Pod: "web-node1"}},
		},
		{Service: "default/dns-udp", Addresses: []netip.Addr{web}, Announcers: map[netip.Addr][]Announcer{}},
	}
	want := `SERVICE             ADDRESS         ANNOUNCED BY         CLIENT TCP CONNECTION
default/routed-web  203.0.113.128   nobody               port 80: FAILED (timed out)
default/pending     <none>          -                    AllocationFailed: pool exhausted
default/web         198.51.100.128  node2 (ARP on eth0)  port 80: ok, pod web-node1
default/dns-udp     198.51.100.128  nobody               not tried (no TCP port)

Notes:
  default/routed-web: not advertised
`
	if diff := cmp.Diff(want, FormatReport(rows)); diff != "" {
		t.Errorf("FormatReport (-want +got):\n%s", diff)
	}
}
