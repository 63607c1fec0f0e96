package explain

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

var since = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func node(name string, labels map[string]string, opts ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for k, v := range labels {
		n.Labels[k] = v
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func speakerStatus(name string, ready bool, reason string) *v1alpha1.SpeakerStatus {
	st := metav1.ConditionTrue
	if !ready {
		st = metav1.ConditionFalse
	}
	return &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1alpha1.SpeakerStatusStatus{
		Members:    3,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: st, Reason: reason, Message: reason + " message"}},
	}}
}

func ipPool(name, addrs string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: since}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{addrs}},
		Status: v1alpha1.IPPoolStatus{IPv4: &v1alpha1.AddressCounts{Total: "16", Used: "16", Free: "0"}}}
}

const uid = "uid-web"

func service(addr string, opts ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web", UID: uid},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if addr != "" {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: addr}}
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func claim(addr, pool string) *v1alpha1.AddressClaim {
	return config.NewClaim(netip.MustParseAddr(addr), pool, v1alpha1.AddressHolder{Namespace: "app", Name: "web", UID: uid, As: v1alpha1.HolderLoadBalancer})
}

func slice(nodes ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4}
	for _, n := range nodes {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}

func condition(reason, msg string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{Type: config.ConditionAddressAllocated, Status: metav1.ConditionFalse, Reason: reason, Message: msg})
	}
}

// TestService: the explanation names each reason a Service is pending or
// a node does not announce it, and who announces it now.
func TestService(t *testing.T) {
	l2All := &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2"}, Spec: v1alpha1.L2AdvertisementSpec{
		IPPools: []string{"pool-a"}, NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "a"}}}}}
	bgpAll := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bgp"}, Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"pool-b"}}}
	peer := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPPeerSpec{PeerAddress: "203.0.113.1", PeerASN: 64512, MyASN: 64513,
		PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "unreadable", Key: "password"}}}
	rackA := map[string]string{"rack": "a"}
	announcing := speakerStatus("n1", true, "Running")
	announcing.Status.Layer2 = []v1alpha1.Layer2Announcement{{Address: "198.51.100.7", Service: "app/web", Interfaces: []string{"eth0"}, Since: since}}
	announcing.Status.BGPSessions = []v1alpha1.BGPSessionStatus{{Peer: "router", PeerAddress: "203.0.113.1", State: "Established", BFDState: "Up"}}
	nodes := []*corev1.Node{
		node("n1", rackA),
		node("n2", rackA, func(n *corev1.Node) { n.Labels[corev1.LabelNodeExcludeBalancers] = "" }),
		node("n3", rackA, func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}}
		}),
		node("n4", rackA),
		node("n5", rackA),
		node("n6", map[string]string{"rack": "b"}),
	}
	speakers := []*v1alpha1.SpeakerStatus{announcing, speakerStatus("n2", true, "Running"), speakerStatus("n3", true, "Running"),
		speakerStatus("n4", false, v1alpha1.SpeakerReasonNotAlive), speakerStatus("n6", true, "Running")}
	cluster := Cluster{
		Pools:            []*v1alpha1.IPPool{ipPool("pool-a", "198.51.100.0/28"), ipPool("pool-b", "198.51.100.16/28"), ipPool("pool-c", "198.51.100.32/28")},
		L2Advertisements: []*v1alpha1.L2Advertisement{l2All}, BGPAdvertisements: []*v1alpha1.BGPAdvertisement{bgpAll}, BGPPeers: []*v1alpha1.BGPPeer{peer},
		Claims:   []*v1alpha1.AddressClaim{claim("198.51.100.7", "pool-a"), claim("198.51.100.17", "pool-b"), claim("198.51.100.33", "pool-c")},
		Nodes:    nodes,
		Speakers: speakers,
	}
	for _, tc := range []struct {
		name    string
		cluster func(Cluster) Cluster
		in      ServiceInput
		want    []string
		notWant []string
	}{
		{
			name: "pending: every pool is full",
			in:   ServiceInput{Service: service("", condition("PoolExhausted", "no pool has a free address"))},
			want: []string{"No address (pending).", "Why: PoolExhausted: no pool has a free address", "pool-a (autoAssign, IPv4 16 of 16 used)"},
		},
		{
			name: "pending: the controller has not decided",
			in:   ServiceInput{Service: service("")},
			want: []string{"Herald's controller has not decided about it"},
		},
		{
			name: "pending: a class Herald does not serve",
			in:   ServiceInput{Service: service("", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("other.example/lb") })},
			want: []string{"--load-balancer-class=other.example/lb"},
		},
		{
			name:    "pending: no pool at all",
			cluster: func(c Cluster) Cluster { c.Pools = nil; return c },
			in:      ServiceInput{Service: service("")},
			want:    []string{"there is no IPPool"},
		},
		{
			name: "pending: warning events are shown",
			in: ServiceInput{Service: service("", condition("AddressInUse", "198.51.100.3 is held by app/db")), Events: []corev1.Event{
				{Type: corev1.EventTypeWarning, Reason: "AddressInUse", Message: "198.51.100.3 is held by app/db", Count: 4, LastTimestamp: since},
				{Type: corev1.EventTypeNormal, Reason: "Allocated", Message: "old"},
			}},
			want:    []string{"Event AddressInUse (x4): 198.51.100.3 is held by app/db"},
			notWant: []string{"Event Allocated"},
		},
		{
			name: "layer 2: who announces and why each other node does not",
			in:   ServiceInput{Service: service("198.51.100.7"), EndpointSlices: []*discoveryv1.EndpointSlice{slice("n1", "n5")}},
			want: []string{
				`Address 198.51.100.7, from IPPool pool-a (AddressClaim 198.51.100.7).`,
				"Announced now by: n1 on eth0 since 2026-01-02 03:04:05Z.",
				"May announce: n1",
				"n2 may not: it carries the label node.kubernetes.io/exclude-from-external-load-balancers",
				"n3 may not: its NetworkUnavailable condition is True",
				"n4 may not: its speaker is not running (SpeakerStatus n4: SpeakerNotAlive",
				"n5 may not: no Herald speaker runs there (no SpeakerStatus",
				"n6 may not: no L2Advertisement of IPPool pool-a selects it",
			},
		},
		{
			name: "layer 2, Local: nodes without a ready endpoint",
			in: ServiceInput{Service: service("198.51.100.7", func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}), EndpointSlices: []*discoveryv1.EndpointSlice{slice("n4")}},
			want: []string{"May announce: no node.", "n1 may not: externalTrafficPolicy is Local and no ready endpoint of the Service runs on it"},
		},
		{
			name: "no endpoint at all",
			in:   ServiceInput{Service: service("198.51.100.7")},
			want: []string{"Nobody may announce it: the Service has no ready (or serving) endpoint on any node."},
		},
		{
			name: "BGP: the sessions it rides on",
			in:   ServiceInput{Service: service("198.51.100.17"), EndpointSlices: []*discoveryv1.EndpointSlice{slice("n1")}},
			want: []string{"BGP, by BGPAdvertisement bgp:", "n1 advertises it over: BGPPeer router (203.0.113.1) Established, BFD Up.", "Advertised now by: n1.", "n6 advertises it over: BGPPeer router (203.0.113.1) unknown"},
		},
		{
			name: "a pool no advertisement announces",
			in:   ServiceInput{Service: service("198.51.100.33"), EndpointSlices: []*discoveryv1.EndpointSlice{slice("n1")}},
			want: []string{"Nobody may announce it: no L2Advertisement or BGPAdvertisement of IPPool pool-c selects any node."},
		},
		{
			name: "an address no claim records",
			in:   ServiceInput{Service: service("198.51.100.9")},
			want: []string{"no AddressClaim records it, so Herald's speakers do not announce it"},
		},
		{
			name: "kube-proxy in IPVS mode without strictARP",
			cluster: func(c Cluster) Cluster {
				c.KubeProxy = &KubeProxy{Mode: "ipvs"}
				return c
			},
			in:   ServiceInput{Service: service("198.51.100.7"), EndpointSlices: []*discoveryv1.EndpointSlice{slice("n1")}},
			want: []string{"PROBLEM: kube-proxy runs in IPVS mode without strictARP", "Nodes labelled node.kubernetes.io/exclude-from-external-load-balancers never announce: n2", "Nodes without a running speaker: n4, n5.", "port 7946 (UDP and TCP)"},
		},
		{
			name: "what could not be read is said",
			cluster: func(c Cluster) Cluster {
				c.Nodes = nil
				c.Unreadable = []string{"Nodes: Forbidden (which nodes may announce is unknown)"}
				return c
			},
			in:      ServiceInput{Service: service("198.51.100.7")},
			want:    []string{"Which nodes may announce it is unknown", "Not read (the explanation above lacks them): Nodes: Forbidden (which nodes may announce is unknown)."},
			notWant: []string{"Nobody may announce it"},
		},
		{
			name: "not a load balancer",
			in:   ServiceInput{Service: service("", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })},
			want: []string{"this Service is of type ClusterIP and has no external IP"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster
			if tc.cluster != nil {
				c = tc.cluster(c)
			}
			got := Service(c, tc.in)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("the explanation lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("the explanation has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestParseKubeProxyConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want KubeProxy
	}{
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  strictARP: true\n", KubeProxy{Mode: "ipvs", StrictARP: true}},
		{"mode: \"\"\n", KubeProxy{}},
		{"mode: nftables\n", KubeProxy{Mode: "nftables"}},
	} {
		got, err := ParseKubeProxyConfig(tc.in)
		if err != nil || *got != tc.want {
			t.Errorf("ParseKubeProxyConfig(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseKubeProxyConfig("mode: [\n"); err == nil {
		t.Error("a broken configuration parsed")
	}
}

func TestStatus(t *testing.T) {
	p := ipPool("pool-a", "198.51.100.0/28")
	p.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Valid"},
		{Type: v1alpha1.ConditionAddressesOutsidePool, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAddressesInUse, Message: "198.51.100.40 is outside"}}
	sp := speakerStatus("n1", true, "Running")
	sp.Status.BGPSessions = []v1alpha1.BGPSessionStatus{{Peer: "router", PeerAddress: "203.0.113.1", State: "Active", LastError: "connection refused"}}
	got := Status(Cluster{Pools: []*v1alpha1.IPPool{p}, Speakers: []*v1alpha1.SpeakerStatus{sp, speakerStatus("n2", false, v1alpha1.SpeakerReasonStopped)}},
		[]*corev1.Service{service("", condition("PoolExhausted", "no pool has a free address")), service("198.51.100.7")})
	for _, w := range []string{
		"pool-a", "16/16",
		"n2       False (Stopped)",
		"IPPool pool-a: AddressesOutsidePool AddressesInUse: 198.51.100.40 is outside",
		"SpeakerStatus n2: Ready Stopped",
		"BGP session n1 -> router (203.0.113.1): Active, last error: connection refused",
		"Service app/web: PoolExhausted: no pool has a free address",
		"Services of type LoadBalancer without an address: 1.",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("status lacks %q:\n%s", w, got)
		}
	}
}
