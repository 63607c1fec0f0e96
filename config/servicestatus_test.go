package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func addrList(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestParseGrant(t *testing.T) {
	tests := []struct {
		msg    string
		want   Grant
		wantOK bool
	}{
		{GrantSentence(VerbAllocated, addrList("198.51.100.7"), "pool-a"), Grant{addrList("198.51.100.7"), "pool-a"}, true},
		{GrantSentence(VerbAccepted, addrList("203.0.113.5", "2001:db8::5"), "ext") + " More words.", Grant{addrList("203.0.113.5", "2001:db8::5"), "ext"}, true},
		{GrantSentence(VerbAllocated, addrList("203.0.113.99"), ""), Grant{addrList("203.0.113.99"), ""}, true},
		{`Accepted ::ffff:203.0.113.5 from IPPool "ext".`, Grant{addrList("203.0.113.5"), "ext"}, true},
		{`Allocated 198.51.100.7 from IPPool "a`, Grant{}, false},
		{`Accepted 203.0.113.5 from IPPool external.`, Grant{}, false},
		{`Accepted 203.0.113.5 from`, Grant{}, false},
		{`Allocated nope from IPPool "a".`, Grant{}, false},
		{`Pool "a" has no free IPv4 address.`, Grant{}, false},
		{"", Grant{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			got, ok := ParseGrant(tc.msg)
			if ok != tc.wantOK {
				t.Fatalf("ParseGrant ok = %t, want %t", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseGrant (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAcceptedExternalIPs(t *testing.T) {
	svc := func(status metav1.ConditionStatus, msg string, ips ...string) *corev1.Service {
		s := &corev1.Service{Spec: corev1.ServiceSpec{ExternalIPs: ips}}
		if msg != "" {
			s.Status.Conditions = []metav1.Condition{{Type: ConditionExternalIPsAccepted, Status: status, Reason: "x", Message: msg}}
		}
		return s
	}
	accepted := GrantSentence(VerbAccepted, addrList("203.0.113.5", "2001:db8::5"), "ext")
	tests := []struct {
		name string
		svc  *corev1.Service
		want []netip.Addr
	}{
		{"no condition", svc("", "", "203.0.113.5"), nil},
		{"accepted", svc(metav1.ConditionTrue, accepted, "2001:db8::5", "203.0.113.5"), addrList("2001:db8::5", "203.0.113.5")},
		{"allocated by Herald", svc(metav1.ConditionTrue, GrantSentence(VerbAllocated, addrList("203.0.113.7"), "ext"), "203.0.113.7"), addrList("203.0.113.7")},
		{"imported from no pool", svc(metav1.ConditionTrue, GrantSentence(VerbAccepted, addrList("203.0.113.8"), ""), "203.0.113.8"), addrList("203.0.113.8")},
		{"refused", svc(metav1.ConditionFalse, accepted, "203.0.113.5"), nil},
		// An address added to spec after the decision is not announced
		// until the controller has accepted it.
		{"added after acceptance", svc(metav1.ConditionTrue, accepted, "203.0.113.5", "203.0.113.9"), addrList("203.0.113.5")},
		{"duplicates and mapped forms count once", svc(metav1.ConditionTrue, accepted, "203.0.113.5", "::ffff:203.0.113.5"), addrList("203.0.113.5")},
		{"foreign message", svc(metav1.ConditionTrue, "looks fine to me", "203.0.113.5"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AcceptedExternalIPs(tc.svc)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("AcceptedExternalIPs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadBalancerAddresses(t *testing.T) {
	s := &corev1.Service{}
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}, {Hostname: "lb.example"}, {IP: "nonsense"}, {IP: "2001:db8::7"}}
	got := LoadBalancerAddresses(s)
	if diff := cmp.Diff(addrList("198.51.100.7", "2001:db8::7"), got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("LoadBalancerAddresses (-want +got):\n%s", diff)
	}
}

// FuzzParseGrant checks that ParseGrant never returns addresses with a
// failure, returns only unmapped addresses, and reads back what
// GrantSentence wrote.
func FuzzParseGrant(f *testing.F) {
	f.Add(`Accepted 203.0.113.5, 2001:db8::5 from IPPool "external".`)
	f.Add(`Accepted  from IPPool "`)
	f.Add(`Allocated 203.0.113.7 from no IPPool.`)
	f.Fuzz(func(t *testing.T, msg string) {
		g, ok := ParseGrant(msg)
		if !ok && (g.Addresses != nil || g.Pool != "") {
			t.Errorf("ParseGrant(%q) = %+v, false: a result with a failure", msg, g)
		}
		for _, a := range g.Addresses {
			if a != a.Unmap() {
				t.Errorf("ParseGrant(%q) returned a mapped address %v", msg, a)
			}
		}
		if ok {
			again, ok2 := ParseGrant(GrantSentence(VerbAllocated, g.Addresses, g.Pool))
			if !ok2 || !cmp.Equal(g, again, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()) {
				t.Errorf("ParseGrant(GrantSentence(%+v)) = %+v, %t: does not round-trip", g, again, ok2)
			}
		}
	})
}
