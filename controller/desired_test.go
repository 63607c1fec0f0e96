package controller

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-dev/herald/ipam"
)

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// svcOpt edits a test Service.
type svcOpt func(*corev1.Service)

// service returns a single-stack IPv4 LoadBalancer Service ns/name.
func service(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(created), Generation: 1},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeLoadBalancer,
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
			Selector:   map[string]string{"app": name},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func annotate(kv ...string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func withType(t corev1.ServiceType) svcOpt { return func(s *corev1.Service) { s.Spec.Type = t } }

func withClass(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }

func withLBIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } }

func withExternalIPs(ips ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.ExternalIPs = ips }
}

func withPorts(ports ...int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Protocol: corev1.ProtocolTCP, Port: p})
		}
	}
}

func withFamilies(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &policy
		s.Spec.IPFamilies = fams
	}
}

func withSelector(kv ...string) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Selector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Spec.Selector[kv[i]] = kv[i+1]
		}
	}
}

func withLocal() svcOpt {
	return func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
}

func createdAt(t time.Time, uid string) svcOpt {
	return func(s *corev1.Service) {
		s.CreationTimestamp = metav1.NewTime(t)
		s.UID = types.UID(uid)
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDesired(t *testing.T) {
	subject := ipam.Subject{Namespace: "ns"}
	owner := func(name string) ipam.Owner {
		return ipam.Owner{Namespace: "ns", Name: name, UID: "uid-" + name, Created: created}
	}
	lb := func(name string, edit func(*ipam.Request)) *Want {
		r := ipam.Request{Owner: owner(name), Subject: subject, Kind: ipam.LoadBalancer, Families: []ipam.Family{ipam.IPv4}}
		if edit != nil {
			edit(&r)
		}
		return &Want{Request: r}
	}
	ext := func(name string, edit func(*Want)) *Want {
		w := &Want{Request: ipam.Request{Owner: owner(name), Subject: subject, Kind: ipam.ExternalIP}}
		if edit != nil {
			edit(w)
		}
		return w
	}
	refused := func(w *Want, reason string) *Want {
		w.Refusal = &Refusal{Reason: reason}
		return w
	}
	dual := []ipam.Family{ipam.IPv4, ipam.IPv6}

	tests := []struct {
		name  string
		svc   *corev1.Service
		class string
		want  Intent
	}{
		{
			name: "plain LoadBalancer",
			svc:  service("ns", "a"),
			want: Intent{LoadBalancer: lb("a", nil)},
		},
		{
			name: "ClusterIP without external IPs asks for nothing",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP)),
			want: Intent{},
		},
		{
			name: "ExternalName is never served",
			svc:  service("ns", "a", withType(corev1.ServiceTypeExternalName), withExternalIPs("203.0.113.5")),
			want: Intent{},
		},
		{
			name: "another class is not served",
			svc:  service("ns", "a", withClass("other.example/lb")),
			want: Intent{},
		},
		{
			name:  "the served class",
			svc:   service("ns", "a", withClass("herald.dev/lb")),
			class: "herald.dev/lb",
			want:  Intent{LoadBalancer: lb("a", nil)},
		},
		{
			name:  "a classless Service is not served by a class controller",
			svc:   service("ns", "a"),
			class: "herald.dev/lb",
			want:  Intent{},
		},
		{
			name: "pool annotation",
			svc:  service("ns", "a", annotate("herald.dev/pool", "gold")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) { r.Pool = "gold" })},
		},
		{
			name: "requested addresses, dual stack",
			svc: service("ns", "a", withFamilies(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol),
				annotate("herald.dev/addresses", "198.51.100.10,2001:db8::10")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) {
				r.Families, r.RequireAllFamilies = []ipam.Family{ipam.IPv6, ipam.IPv4}, true
				r.Addresses = addrs("198.51.100.10", "2001:db8::10")
			})},
		},
		{
			name: "PreferDualStack does not require both families",
			svc:  service("ns", "a", withFamilies(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) { r.Families = dual })},
		},
		{
			name: "SingleStack keeps the first family",
			svc:  service("ns", "a", withFamilies(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) { r.Families = []ipam.Family{ipam.IPv6} })},
		},
		{
			name: "spec.loadBalancerIP alone is honoured",
			svc:  service("ns", "a", withLBIP("198.51.100.7")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) { r.Addresses = addrs("198.51.100.7") })},
		},
		{
			name: "spec.loadBalancerIP agreeing with the annotation",
			svc:  service("ns", "a", withLBIP("198.51.100.7"), annotate("herald.dev/addresses", "198.51.100.7")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) { r.Addresses = addrs("198.51.100.7") })},
		},
		{
			name: "spec.loadBalancerIP disagreeing with the annotation",
			svc:  service("ns", "a", withLBIP("198.51.100.8"), annotate("herald.dev/addresses", "198.51.100.7")),
			want: Intent{LoadBalancer: refused(lb("a", nil), ReasonLoadBalancerIPMismatch)},
		},
		{
			name: "unparsable spec.loadBalancerIP",
			svc:  service("ns", "a", withLBIP("not-an-ip")),
			want: Intent{LoadBalancer: refused(lb("a", nil), ReasonInvalidLoadBalancerIP)},
		},
		{
			name: "unparsable address annotation",
			svc:  service("ns", "a", annotate("herald.dev/addresses", "198.51.100.300")),
			want: Intent{LoadBalancer: refused(lb("a", nil), ReasonInvalidAnnotation)},
		},
		{
			name: "requested address of the wrong family",
			svc:  service("ns", "a", annotate("herald.dev/addresses", "2001:db8::10")),
			want: Intent{LoadBalancer: refused(lb("a", nil), ReasonWrongAddressFamily)},
		},
		{
			name: "sharing key: ports from spec.ports",
			svc:  service("ns", "a", withPorts(80, 443), annotate("herald.dev/sharing-key", "k")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) {
				r.Sharing = &ipam.Sharing{Key: "k", Ports: []ipam.PortProto{{Protocol: "TCP", Port: 80}, {Protocol: "TCP", Port: 443}}}
			})},
		},
		{
			name: "sharing key with externalTrafficPolicy Local names the backends",
			svc:  service("ns", "a", withPorts(80), withLocal(), annotate("herald.dev/sharing-key", "k")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) {
				r.Sharing = &ipam.Sharing{Key: "k", Ports: []ipam.PortProto{{Protocol: "TCP", Port: 80}}, BackendKey: backendKey(map[string]string{"app": "a"})}
			})},
		},
		{
			name: "cross-namespace opt-in",
			svc:  service("ns", "a", withPorts(80), annotate("herald.dev/sharing-key", "k", "herald.dev/sharing-cross-namespace", "tenant-b,tenant-a")),
			want: Intent{LoadBalancer: lb("a", func(r *ipam.Request) {
				r.Sharing = &ipam.Sharing{Key: "k", Ports: []ipam.PortProto{{Protocol: "TCP", Port: 80}}, Namespaces: []string{"tenant-a", "tenant-b"}}
			})},
		},
		{
			name: "invalid sharing key",
			svc:  service("ns", "a", annotate("herald.dev/sharing-key", "-bad-")),
			want: Intent{LoadBalancer: refused(lb("a", nil), ReasonInvalidAnnotation)},
		},
		{
			name: "external IPs on a ClusterIP Service are claims",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), withExternalIPs("203.0.113.5", "2001:db8::5")),
			want: Intent{ExternalIPs: ext("a", func(w *Want) {
				w.Request.Addresses = addrs("203.0.113.5", "2001:db8::5")
				w.Request.Families = dual
			})},
		},
		{
			name: "a duplicate external IP is claimed once",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), withExternalIPs("203.0.113.5", "203.0.113.5")),
			want: Intent{ExternalIPs: ext("a", func(w *Want) {
				w.Request.Addresses = addrs("203.0.113.5")
				w.Request.Families = []ipam.Family{ipam.IPv4}
			})},
		},
		{
			name: "two external IPs of one family",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), withExternalIPs("203.0.113.5", "203.0.113.6")),
			want: Intent{ExternalIPs: refused(ext("a", nil), ReasonTooManyExternalIPs)},
		},
		{
			name: "an unparsable external IP",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), withExternalIPs("nope")),
			want: Intent{ExternalIPs: refused(ext("a", nil), ReasonExternalIPInvalid)},
		},
		{
			name: "allocate-external-ip without external IPs allocates",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), annotate("herald.dev/allocate-external-ip", "ext")),
			want: Intent{ExternalIPs: ext("a", func(w *Want) {
				w.Allocate, w.Requested = true, true
				w.Request.Pool, w.Request.Families = "ext", []ipam.Family{ipam.IPv4}
			})},
		},
		{
			name: "allocate-external-ip with an external IP claims it from the pool",
			svc: service("ns", "a", withType(corev1.ServiceTypeClusterIP), withExternalIPs("203.0.113.5"),
				annotate("herald.dev/allocate-external-ip", "true")),
			want: Intent{ExternalIPs: ext("a", func(w *Want) {
				w.Requested = true
				w.Request.Addresses, w.Request.Families = addrs("203.0.113.5"), []ipam.Family{ipam.IPv4}
			})},
		},
		{
			name: "allocate-external-ip false asks for nothing",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), annotate("herald.dev/allocate-external-ip", "false")),
			want: Intent{},
		},
		{
			name: "an invalid annotation freezes both kinds",
			svc:  service("ns", "a", withExternalIPs("203.0.113.5"), annotate("herald.dev/pool", "Not_A_Pool")),
			want: Intent{
				LoadBalancer: refused(lb("a", nil), ReasonInvalidAnnotation),
				ExternalIPs:  refused(ext("a", nil), ReasonInvalidAnnotation),
			},
		},
		{
			name: "an invalid allocate-external-ip annotation is refused",
			svc:  service("ns", "a", withType(corev1.ServiceTypeClusterIP), annotate("herald.dev/allocate-external-ip", "Yes!")),
			want: Intent{ExternalIPs: refused(ext("a", nil), ReasonInvalidAnnotation)},
		},
	}
	ignore := cmp.Options{
		cmpopts.IgnoreFields(Refusal{}, "Message"),
		cmpopts.EquateComparable(netip.Addr{}),
		cmpopts.EquateEmpty(),
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Desired(tc.svc, subject, tc.class)
			// A refused request is left as far as it was filled; only the
			// refusal matters then.
			for _, p := range []struct{ got, want *Want }{{got.LoadBalancer, tc.want.LoadBalancer}, {got.ExternalIPs, tc.want.ExternalIPs}} {
				if p.got != nil && p.want != nil && p.want.Refusal != nil {
					p.got.Request = p.want.Request
					p.got.Allocate, p.got.Requested = p.want.Allocate, p.want.Requested
				}
			}
			if diff := cmp.Diff(tc.want, got, ignore); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
			for _, w := range []*Want{got.LoadBalancer, got.ExternalIPs} {
				if w != nil && w.Refusal != nil && w.Refusal.Message == "" {
					t.Errorf("refusal %s has no message", w.Refusal.Reason)
				}
			}
		})
	}
}

func TestAnnotationMessage(t *testing.T) {
	long := strings.Repeat("198.51.100.1,", 500)
	svc := service("ns", "a", annotate("herald.dev/addresses", long, "herald.dev/sharing-key", "!", "herald.dev/pool", "x"))
	w := Desired(svc, ipam.Subject{Namespace: "ns"}, "").LoadBalancer
	if w.Refusal == nil {
		t.Fatal("no refusal")
	}
	msg := w.Refusal.Message
	for _, want := range []string{"herald.dev/addresses", "at most 2 addresses", "herald.dev/sharing-key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if len(msg) > 3*maxAnnotationProblem {
		t.Errorf("message of %d bytes", len(msg))
	}
}

func TestBackendKey(t *testing.T) {
	a := backendKey(map[string]string{"app": "x", "tier": "web"})
	b := backendKey(map[string]string{"tier": "web", "app": "x"})
	c := backendKey(map[string]string{"app": "y", "tier": "web"})
	if a != b {
		t.Errorf("equal selectors give different keys %q and %q", a, b)
	}
	if a == c {
		t.Errorf("different selectors give the same key %q", a)
	}
}

// TestDesiredKeepsSharingKeyDespiteAnotherBadAnnotation: a malformed
// annotation refuses the Service's request, but a valid sharing key still
// describes what it holds, so an import from its status keeps its sharers
// (soak seed 3, TestRegressImportKeepsSharingDespiteBadAnnotation).
func TestDesiredKeepsSharingKeyDespiteAnotherBadAnnotation(t *testing.T) {
	svc := service("ns", "a", withPorts(81), annotate("herald.dev/sharing-key", "k", "herald.dev/sharing-cross-namespace", "tenant-b", "herald.dev/allocate-external-ip", "maybe!"))
	in := Desired(svc, ipam.Subject{Namespace: "ns"}, "")
	if in.LoadBalancer == nil || in.LoadBalancer.Refusal == nil || in.LoadBalancer.Refusal.Reason != ReasonInvalidAnnotation {
		t.Fatalf("LoadBalancer want %+v, want an InvalidAnnotation refusal", in.LoadBalancer)
	}
	want := &ipam.Sharing{Key: "k", Ports: []ipam.PortProto{{Protocol: "TCP", Port: 81}}, Namespaces: []string{"tenant-b"}}
	if diff := cmp.Diff(want, in.LoadBalancer.Request.Sharing); diff != "" {
		t.Errorf("sharing terms (-want +got):\n%s", diff)
	}
}
