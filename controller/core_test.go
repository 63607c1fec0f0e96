package controller

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

type poolOpt func(*v1alpha1.IPPool)

func ippool(name string, addresses []string, opts ...poolOpt) *v1alpha1.IPPool {
	p := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created), Generation: 1},
		Spec:       v1alpha1.IPPoolSpec{Addresses: addresses},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func noAutoAssign() poolOpt { return func(p *v1alpha1.IPPool) { p.Spec.AutoAssign = ptr.To(false) } }

func onlyNamespaces(ns ...string) poolOpt {
	return func(p *v1alpha1.IPPool) {
		p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{Namespaces: ns}
	}
}

func externalFor(ns ...string) poolOpt {
	return func(p *v1alpha1.IPPool) {
		p.Spec.AllowExternalIPs = &v1alpha1.ExternalIPAllowance{Namespaces: ns}
	}
}

func priority(n int32) poolOpt {
	return func(p *v1alpha1.IPPool) {
		if p.Spec.ServiceAllocation == nil {
			p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{}
		}
		p.Spec.ServiceAllocation.Priority = &n
	}
}

func model(t *testing.T, pools ...*v1alpha1.IPPool) *config.Model {
	t.Helper()
	return config.Build(config.Snapshot{IPPools: pools, Namespaces: []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}, {ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	}})
}

// coreStep is one step of a Core scenario: install pools, ensure a Service,
// or release one; then check the decision of the kind asked.
type coreStep struct {
	name    string
	pools   []*v1alpha1.IPPool
	svc     *corev1.Service
	release string // a Service name in namespace ns

	kind        ipam.Kind // default LoadBalancer
	want        []string
	wantPool    string
	wantReason  string
	wantStatus  metav1.ConditionStatus
	wantWaiting bool
	wantWrite   bool
	wantFreed   bool
	wantMessage string // a substring of the condition message
	wantErr     error  // errors.Is target
}

func runCore(t *testing.T, steps []coreStep) {
	t.Helper()
	c := NewCore("")
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.pools != nil {
				if err := c.SetModel(model(t, st.pools...)); err != nil {
					t.Fatalf("SetModel: %v", err)
				}
			}
			if st.release != "" {
				c.ReleaseLoadBalancer("ns", st.release)
				c.ReleaseExternalIPs("ns", st.release)
			}
			if st.svc == nil {
				return
			}
			sd := c.Ensure(st.svc)
			d := sd.LoadBalancer
			if st.kind == ipam.ExternalIP {
				d = sd.ExternalIPs
			}
			got := struct {
				Addresses []string
				Pool      string
				Reason    string
				Status    metav1.ConditionStatus
				Waiting   bool
				Write     bool
				Freed     bool
			}{nil, d.Pool, d.Condition.Reason, d.Condition.Status, d.Waiting, d.WriteExternalIPs, d.Freed}
			for _, a := range d.Addresses {
				got.Addresses = append(got.Addresses, a.String())
			}
			want := got
			want.Addresses, want.Reason, want.Status, want.Waiting, want.Write, want.Freed = st.want, st.wantReason, st.wantStatus, st.wantWaiting, st.wantWrite, st.wantFreed
			if st.wantPool != "" {
				want.Pool = st.wantPool
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nmessage: %s\nerr: %v", diff, d.Condition.Message, d.Err)
			}
			if st.wantMessage != "" && !strings.Contains(d.Condition.Message, st.wantMessage) {
				t.Errorf("condition message %q does not contain %q", d.Condition.Message, st.wantMessage)
			}
			if st.wantErr != nil && !errors.Is(d.Err, st.wantErr) {
				t.Errorf("decision error %v is not %v", d.Err, st.wantErr)
			}
			if d.Condition.Status == metav1.ConditionTrue {
				g, ok := config.ParseGrant(d.Condition.Message)
				if !ok || !slicesEqualAddrs(g.Addresses, d.Addresses) || g.Pool != d.Pool {
					t.Errorf("condition message %q does not record %v from %q", d.Condition.Message, d.Addresses, d.Pool)
				}
			}
		})
	}
}

func slicesEqualAddrs(a, b []netip.Addr) bool {
	return cmp.Equal(a, b, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty())
}

const (
	allocated = ReasonAllocated
	isTrue    = metav1.ConditionTrue
	isFalse   = metav1.ConditionFalse
)

func TestCoreAllocation(t *testing.T) {
	small := ippool("small", []string{"198.51.100.10-198.51.100.11"})
	runCore(t, []coreStep{
		{name: "pools", pools: []*v1alpha1.IPPool{small}},
		{name: "a gets the first address", svc: service("ns", "a"), want: []string{"198.51.100.10"}, wantPool: "small", wantReason: allocated, wantStatus: isTrue},
		{name: "a again is idempotent", svc: service("ns", "a"), want: []string{"198.51.100.10"}, wantReason: allocated, wantStatus: isTrue},
		{name: "b gets the second", svc: service("ns", "b"), want: []string{"198.51.100.11"}, wantReason: allocated, wantStatus: isTrue},
		{name: "c waits: pool exhausted", svc: service("ns", "c"), wantReason: ReasonPoolExhausted, wantStatus: isFalse, wantWaiting: true, wantErr: ipam.ErrPoolExhausted},
		{name: "a goes", release: "a"},
		{name: "c gets a's address", svc: service("ns", "c"), want: []string{"198.51.100.10"}, wantReason: allocated, wantStatus: isTrue},
		{name: "d waits", svc: service("ns", "d"), wantReason: ReasonPoolExhausted, wantStatus: isFalse, wantWaiting: true},
		{name: "the pool grows", pools: []*v1alpha1.IPPool{ippool("small", []string{"198.51.100.10-198.51.100.12"})}},
		{name: "d gets the new address", svc: service("ns", "d"), want: []string{"198.51.100.12"}, wantReason: allocated, wantStatus: isTrue},
		{name: "the pool shrinks under b and d", pools: []*v1alpha1.IPPool{ippool("small", []string{"198.51.100.10"})}},
		{name: "b keeps its address", svc: service("ns", "b"), want: []string{"198.51.100.11"}, wantReason: allocated, wantStatus: isTrue},
		{name: "d keeps its address even naming the pool", svc: service("ns", "d", annotate("herald.dev/pool", "small")), want: []string{"198.51.100.12"}, wantReason: allocated, wantStatus: isTrue},
	})
}

func TestCoreRefusals(t *testing.T) {
	runCore(t, []coreStep{
		{name: "pools", pools: []*v1alpha1.IPPool{
			ippool("open", []string{"198.51.100.0/28"}),
			ippool("private", []string{"198.51.100.16/28"}, onlyNamespaces("other")),
			ippool("manual", []string{"198.51.100.32/28"}, noAutoAssign()),
			ippool("v6", []string{"2001:db8:1::/120"}, noAutoAssign()),
		}},
		{name: "a asks for an address", svc: service("ns", "a", annotate("herald.dev/addresses", "198.51.100.5")),
			want: []string{"198.51.100.5"}, wantReason: allocated, wantStatus: isTrue},
		{name: "b asks for a's address", svc: service("ns", "b", annotate("herald.dev/addresses", "198.51.100.5")),
			wantReason: ReasonAddressInUse, wantStatus: isFalse, wantWaiting: true, wantMessage: "ns/a", wantErr: ipam.ErrInUse},
		{name: "an address in no pool", svc: service("ns", "c", withLBIP("203.0.113.200")),
			wantReason: ReasonAddressNotInAnyPool, wantStatus: isFalse, wantWaiting: true, wantMessage: "203.0.113.200"},
		{name: "a pool that does not exist", svc: service("ns", "d", annotate("herald.dev/pool", "nope")),
			wantReason: ReasonPoolNotFound, wantStatus: isFalse, wantWaiting: true, wantMessage: `"nope"`},
		{name: "a pool the namespace may not use", svc: service("ns", "e", annotate("herald.dev/pool", "private")),
			wantReason: ReasonPoolNotAllowed, wantStatus: isFalse, wantWaiting: true, wantMessage: `"private"`},
		{name: "the other namespace may", svc: service("other", "e", annotate("herald.dev/pool", "private")),
			want: []string{"198.51.100.16"}, wantReason: allocated, wantStatus: isTrue},
		{name: "a pool without autoAssign serves by name", svc: service("ns", "f", annotate("herald.dev/pool", "manual")),
			want: []string{"198.51.100.32"}, wantReason: allocated, wantStatus: isTrue},
		{name: "IPv6 is only in a pool that must be named", svc: service("ns", "g", withFamilies(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)),
			wantReason: ReasonFamilyUnavailable, wantStatus: isFalse, wantWaiting: true},
		{name: "PreferDualStack gets IPv4 only", svc: service("ns", "h", withFamilies(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			want: []string{"198.51.100.0"}, wantReason: ReasonPartiallyAllocated, wantStatus: isTrue, wantWaiting: true},
		{name: "RequireDualStack gets nothing", svc: service("ns", "i", withFamilies(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
			wantReason: ReasonFamilyUnavailable, wantStatus: isFalse, wantWaiting: true},
		{name: "a mismatching loadBalancerIP leaves a's address alone",
			svc:  service("ns", "a", annotate("herald.dev/addresses", "198.51.100.5"), withLBIP("198.51.100.6")),
			want: []string{"198.51.100.5"}, wantReason: ReasonLoadBalancerIPMismatch, wantStatus: isTrue, wantMessage: "keeps this address"},
		{name: "an unparsable annotation leaves a's address alone",
			svc:  service("ns", "a", annotate("herald.dev/addresses", "198.51.100.5,garbage")),
			want: []string{"198.51.100.5"}, wantReason: ReasonInvalidAnnotation, wantStatus: isTrue},
		{name: "a wrong-family address leaves a's address alone",
			svc:  service("ns", "a", annotate("herald.dev/addresses", "2001:db8:1::5")),
			want: []string{"198.51.100.5"}, wantReason: ReasonWrongAddressFamily, wantStatus: isTrue},
		{name: "a fixed", svc: service("ns", "a", annotate("herald.dev/addresses", "198.51.100.5")),
			want: []string{"198.51.100.5"}, wantReason: allocated, wantStatus: isTrue},
		{name: "a moves when it asks for another address", svc: service("ns", "a", annotate("herald.dev/addresses", "198.51.100.7")),
			want: []string{"198.51.100.7"}, wantReason: allocated, wantStatus: isTrue, wantFreed: true},
		{name: "b gets the address a let go", svc: service("ns", "b", annotate("herald.dev/addresses", "198.51.100.5")),
			want: []string{"198.51.100.5"}, wantReason: allocated, wantStatus: isTrue},
	})
}

func TestCoreSharing(t *testing.T) {
	key := func(k string) svcOpt { return annotate("herald.dev/sharing-key", k) }
	runCore(t, []coreStep{
		{name: "pools", pools: []*v1alpha1.IPPool{ippool("p", []string{"198.51.100.0/29"})}},
		{name: "web on 80", svc: service("ns", "web", withPorts(80), key("k"), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
		{name: "api on 443 shares it", svc: service("ns", "api", withPorts(443), key("k"), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
		{name: "dup on 80 is refused", svc: service("ns", "dup", withPorts(80), key("k"), withLBIP("198.51.100.3")),
			wantReason: ReasonSharingRefused, wantStatus: isFalse, wantWaiting: true, wantMessage: "TCP/80", wantErr: ipam.ErrSharingRefused},
		{name: "another key is refused", svc: service("ns", "x", withPorts(8080), key("other"), withLBIP("198.51.100.3")),
			wantReason: ReasonAddressInUse, wantStatus: isFalse, wantWaiting: true},
		{name: "the same key in another namespace is refused", svc: service("other", "y", withPorts(8081), key("k"), withLBIP("198.51.100.3")),
			wantReason: ReasonAddressInUse, wantStatus: isFalse, wantWaiting: true},
		{name: "nor does it join the shared address by key", svc: service("other", "z", withPorts(8082), key("k")),
			want: []string{"198.51.100.0"}, wantReason: allocated, wantStatus: isTrue},
		{name: "Local beside Cluster sharers joins: any node they share is one of its own", svc: service("ns", "loc", withPorts(8443), key("k"), withLocal(), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
		{name: "Local with other backends than a Local sharer is refused", svc: service("ns", "loc2", withPorts(8444), key("k"), withLocal(), withSelector("app", "other"), withLBIP("198.51.100.3")),
			wantReason: ReasonSharingRefused, wantStatus: isFalse, wantWaiting: true},
		{name: "Local with loc's backends joins", svc: service("ns", "loc3", withPorts(8445), key("k"), withLocal(), withSelector("app", "loc"), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
		{name: "loc's selector edited: it keeps the address, reported", svc: service("ns", "loc", withPorts(8443), key("k"), withLocal(), withSelector("app", "other"), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: ReasonSharingRefused, wantStatus: isTrue, wantMessage: "do not select the same backends"},
		{name: "loc edited to Cluster: nothing to report", svc: service("ns", "loc", withPorts(8443), key("k"), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
		{name: "without an address, a key joins the shared one", svc: service("ns", "join", withPorts(9000), key("k")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
	})
}

func TestCoreExternalIPs(t *testing.T) {
	clusterIP := withType(corev1.ServiceTypeClusterIP)
	runCore(t, []coreStep{
		{name: "pools", pools: []*v1alpha1.IPPool{
			ippool("lb", []string{"198.51.100.0/28"}),
			ippool("ext", []string{"203.0.113.0/28", "2001:db8:2::/120"}, externalFor("ns"), noAutoAssign()),
		}},
		{name: "a claim in an allowing pool", svc: service("ns", "a", clusterIP, withExternalIPs("203.0.113.5")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.5"}, wantPool: "ext", wantReason: ReasonExternalIPsAccepted, wantStatus: isTrue},
		{name: "a claim from a namespace the pool does not allow", svc: service("other", "b", clusterIP, withExternalIPs("203.0.113.6")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotAllowed, wantStatus: isFalse, wantWaiting: true, wantMessage: "other"},
		{name: "a claim of a load-balancer pool's address", svc: service("ns", "c", clusterIP, withExternalIPs("198.51.100.9")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotAllowed, wantStatus: isFalse, wantWaiting: true},
		{name: "a claim outside every pool", svc: service("ns", "d", clusterIP, withExternalIPs("203.0.113.200")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotInAnyPool, wantStatus: isFalse, wantWaiting: true},
		{name: "a claim of a's address", svc: service("ns", "e", clusterIP, withExternalIPs("203.0.113.5")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPInUse, wantStatus: isFalse, wantWaiting: true, wantMessage: "ns/a"},
		{name: "a dual-stack claim", svc: service("ns", "f", clusterIP, withExternalIPs("203.0.113.7", "2001:db8:2::7")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.7", "2001:db8:2::7"}, wantReason: ReasonExternalIPsAccepted, wantStatus: isTrue},
		{name: "two IPv4 addresses refuse the whole claim", svc: service("ns", "f", clusterIP, withExternalIPs("203.0.113.7", "203.0.113.8")), kind: ipam.ExternalIP,
			wantReason: ReasonTooManyExternalIPs, wantStatus: isFalse, wantFreed: true},
		{name: "f claims again", svc: service("ns", "f", clusterIP, withExternalIPs("203.0.113.7", "2001:db8:2::7")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.7", "2001:db8:2::7"}, wantReason: ReasonExternalIPsAccepted, wantStatus: isTrue},
		{name: "an invalid annotation keeps the claim", svc: service("ns", "f", clusterIP, withExternalIPs("203.0.113.7", "2001:db8:2::7"), annotate("herald.dev/sharing-key", "!")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.7", "2001:db8:2::7"}, wantReason: ReasonInvalidAnnotation, wantStatus: isTrue},
		{name: "one bad address refuses the whole claim", svc: service("ns", "f", clusterIP, withExternalIPs("203.0.113.7", "2001:db8:3::7")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotInAnyPool, wantStatus: isFalse, wantWaiting: true, wantFreed: true},
		{name: "an allocation from any pool finds none with autoAssign", svc: service("ns", "g", clusterIP, annotate("herald.dev/allocate-external-ip", "true")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotAllowed, wantStatus: isFalse, wantWaiting: true, wantMessage: "autoAssign"},
		{name: "an allocation from a named pool", svc: service("ns", "g", clusterIP, annotate("herald.dev/allocate-external-ip", "ext")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.0"}, wantReason: ReasonExternalIPAllocated, wantStatus: isTrue, wantWrite: true,
			wantMessage: `Allocated 203.0.113.0 from IPPool "ext".`},
		{name: "once written, it is claimed", svc: service("ns", "g", clusterIP, annotate("herald.dev/allocate-external-ip", "ext"), withExternalIPs("203.0.113.0")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.0"}, wantReason: ReasonExternalIPAllocated, wantStatus: isTrue,
			wantMessage: `Allocated 203.0.113.0 from IPPool "ext".`},
		{name: "the pool stops allowing the namespace", pools: []*v1alpha1.IPPool{
			ippool("lb", []string{"198.51.100.0/28"}),
			ippool("ext", []string{"203.0.113.0/28", "2001:db8:2::/120"}, externalFor("other"), noAutoAssign()),
		}},
		{name: "a's claim is withdrawn", svc: service("ns", "a", clusterIP, withExternalIPs("203.0.113.5")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotAllowed, wantStatus: isFalse, wantWaiting: true, wantFreed: true},
		{name: "so b's claim of another address is accepted now", svc: service("other", "b", clusterIP, withExternalIPs("203.0.113.6")), kind: ipam.ExternalIP,
			want: []string{"203.0.113.6"}, wantReason: ReasonExternalIPsAccepted, wantStatus: isTrue},
		{name: "an allocation from a pool that does not allow the namespace", svc: service("ns", "h", clusterIP, annotate("herald.dev/allocate-external-ip", "ext")), kind: ipam.ExternalIP,
			wantReason: ReasonExternalIPNotAllowed, wantStatus: isFalse, wantWaiting: true},
	})
}

// TestCoreFrozenSharingTerms: a Service whose input is invalid keeps its
// address, but a sharing key it removed no longer lets others join it (found
// by the soak, seed 30: a sharer joined a Service whose key was gone).
func TestCoreFrozenSharingTerms(t *testing.T) {
	key := func(k string) svcOpt { return annotate("herald.dev/sharing-key", k) }
	bad := annotate("herald.dev/allocate-external-ip", "maybe!")
	runCore(t, []coreStep{
		{name: "pools", pools: []*v1alpha1.IPPool{ippool("p", []string{"198.51.100.0/29"})}},
		{name: "web on 80 with key k", svc: service("ns", "web", withPorts(80), key("k"), withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: allocated, wantStatus: isTrue},
		{name: "a bad annotation freezes it", svc: service("ns", "web", withPorts(80), key("k"), bad, withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: ReasonInvalidAnnotation, wantStatus: isTrue},
		{name: "frozen, its key removed: it keeps the address", svc: service("ns", "web", withPorts(80), bad, withLBIP("198.51.100.3")),
			want: []string{"198.51.100.3"}, wantReason: ReasonInvalidAnnotation, wantStatus: isTrue},
		{name: "a Service with key k may not join it", svc: service("ns", "api", withPorts(81), key("k"), withLBIP("198.51.100.3")),
			wantReason: ReasonAddressInUse, wantStatus: isFalse, wantWaiting: true, wantErr: ipam.ErrInUse},
		{name: "nor by key alone", svc: service("ns", "api2", withPorts(82), key("k")),
			want: []string{"198.51.100.0"}, wantReason: allocated, wantStatus: isTrue},
	})
}

func TestCorePriority(t *testing.T) {
	runCore(t, []coreStep{
		{name: "pools", pools: []*v1alpha1.IPPool{
			ippool("a-last", []string{"198.51.100.0/30"}),
			ippool("b-first", []string{"198.51.100.8/30"}, priority(1)),
			ippool("c-second", []string{"198.51.100.16/31"}, priority(2)),
		}},
		{name: "the lowest priority value first", svc: service("ns", "s1"), want: []string{"198.51.100.8"}, wantPool: "b-first", wantReason: allocated, wantStatus: isTrue},
		{name: "a named pool regardless of priority", svc: service("ns", "s2", annotate("herald.dev/pool", "c-second")), want: []string{"198.51.100.16"}, wantPool: "c-second", wantReason: allocated, wantStatus: isTrue},
	})
}

func TestCoreImport(t *testing.T) {
	t0 := created
	withIngress := func(ips ...string) svcOpt {
		return func(s *corev1.Service) {
			for _, ip := range ips {
				s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
			}
		}
	}
	old := service("ns", "old", createdAt(t0, "u1"), withIngress("198.51.100.5"))
	young := service("ns", "young", createdAt(t0.Add(time.Minute), "u2"), withIngress("198.51.100.5"))
	other := service("ns", "other", createdAt(t0.Add(2*time.Minute), "u3"), withIngress("198.51.100.6"))
	foreign := service("ns", "foreign", createdAt(t0, "u4"), withClass("other.example/lb"), withIngress("198.51.100.7"))

	for _, order := range [][]*corev1.Service{{old, young, other, foreign}, {foreign, other, young, old}} {
		c := NewCore("")
		if err := c.SetModel(model(t, ippool("p", []string{"198.51.100.0/29"}))); err != nil {
			t.Fatal(err)
		}
		rep := c.Import(order)
		if rep.Services != 3 || rep.Allocations != 2 || len(rep.Conflicts) != 1 {
			t.Errorf("import report = %d services, %d allocations, conflicts %v; want 3, 2, one conflict", rep.Services, rep.Allocations, rep.Conflicts)
		}
		for _, tc := range []struct {
			name string
			want []netip.Addr
		}{{"old", addrs("198.51.100.5")}, {"young", nil}, {"other", addrs("198.51.100.6")}, {"foreign", nil}} {
			got, _ := c.Held("ns", tc.name, ipam.LoadBalancer)
			if diff := cmp.Diff(tc.want, got.Addresses, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s holds (-want +got):\n%s", tc.name, diff)
			}
		}
		// After the import, reconciling keeps every address where it was,
		// and the young Service, which lost the contested one, gets another.
		if d := c.EnsureLoadBalancer(old); !slicesEqualAddrs(d.Addresses, addrs("198.51.100.5")) || d.Changed {
			t.Errorf("old after import: %v changed=%t", d.Addresses, d.Changed)
		}
		if d := c.EnsureLoadBalancer(other); !slicesEqualAddrs(d.Addresses, addrs("198.51.100.6")) || d.Changed {
			t.Errorf("other after import: %v changed=%t", d.Addresses, d.Changed)
		}
		if d := c.EnsureLoadBalancer(young); len(d.Addresses) != 1 || d.Addresses[0] == netip.MustParseAddr("198.51.100.5") {
			t.Errorf("young after import: %v", d.Addresses)
		}
	}
}

func TestCoreImportExternalIPs(t *testing.T) {
	accepted := func(ips ...string) svcOpt {
		return func(s *corev1.Service) {
			s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{Type: config.ConditionExternalIPsAccepted, Status: metav1.ConditionTrue,
				Reason: ReasonExternalIPsAccepted, Message: config.GrantSentence(config.VerbAccepted, addrs(ips...), "ext")})
		}
	}
	refusedCond := func(s *corev1.Service) {
		s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{Type: config.ConditionExternalIPsAccepted, Status: metav1.ConditionFalse,
			Reason: ReasonExternalIPInUse, Message: "no"})
	}
	c := NewCore("")
	if err := c.SetModel(model(t, ippool("ext", []string{"203.0.113.0/28"}, externalFor("ns")))); err != nil {
		t.Fatal(err)
	}
	claimed := service("ns", "claimed", withType(corev1.ServiceTypeClusterIP), withExternalIPs("203.0.113.5"), accepted("203.0.113.5"))
	refused := service("ns", "refused", withType(corev1.ServiceTypeClusterIP), withExternalIPs("203.0.113.6"), refusedCond)
	c.Import([]*corev1.Service{claimed, refused})
	if got, _ := c.Held("ns", "claimed", ipam.ExternalIP); !slicesEqualAddrs(got.Addresses, addrs("203.0.113.5")) {
		t.Errorf("accepted claim not imported: %v", got.Addresses)
	}
	if got, ok := c.Held("ns", "refused", ipam.ExternalIP); ok {
		t.Errorf("refused claim imported: %v", got.Addresses)
	}
}

func TestReasonFor(t *testing.T) {
	tests := []struct {
		err  error
		kind ipam.Kind
		want string
	}{
		{ipam.ErrPoolExhausted, ipam.LoadBalancer, ReasonPoolExhausted},
		{ipam.ErrPoolExhausted, ipam.ExternalIP, ReasonExternalIPPoolExhausted},
		{&ipam.InUseError{}, ipam.LoadBalancer, ReasonAddressInUse},
		{&ipam.SharingError{}, ipam.LoadBalancer, ReasonSharingRefused},
		{errors.Join(ipam.ErrFamilyUnavailable, ipam.ErrPoolExhausted), ipam.LoadBalancer, ReasonPoolExhausted},
		{errors.New("something else"), ipam.LoadBalancer, ReasonInvalidRequest},
	}
	for _, tc := range tests {
		if got := reasonFor(tc.err, tc.kind); got != tc.want {
			t.Errorf("reasonFor(%v, %s) = %s, want %s", tc.err, tc.kind, got, tc.want)
		}
	}
}

func TestSentence(t *testing.T) {
	long := strings.Repeat("é", maxMessage)
	tests := []struct {
		in, want string
	}{
		{"pool \"a\" has no free IPv4 address", "Pool \"a\" has no free IPv4 address."},
		{"Already a sentence.", "Already a sentence."},
		{"two\nlines", "Two; lines."},
		{"", ""},
	}
	for _, tc := range tests {
		if got := sentence(tc.in); got != tc.want {
			t.Errorf("sentence(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := sentence(long)
	if len(got) > maxMessage || !strings.HasSuffix(got, "(truncated).") || !utf8.ValidString(got) {
		t.Errorf("sentence of %d bytes gave %d bytes ending %q", len(long), len(got), got[len(got)-20:])
	}
}

func TestCoreSecondFamilyArrives(t *testing.T) {
	prefer := withFamilies(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)
	runCore(t, []coreStep{
		{name: "an IPv4 pool", pools: []*v1alpha1.IPPool{ippool("p", []string{"198.51.100.0/30"})}},
		{name: "PreferDualStack gets IPv4 and waits", svc: service("ns", "a", prefer),
			want: []string{"198.51.100.0"}, wantReason: ReasonPartiallyAllocated, wantStatus: isTrue, wantWaiting: true},
		{name: "the pool gains IPv6", pools: []*v1alpha1.IPPool{ippool("p", []string{"198.51.100.0/30", "2001:db8:9::/126"})}},
		{name: "the IPv4 address stays and IPv6 is added", svc: service("ns", "a", prefer),
			want: []string{"198.51.100.0", "2001:db8:9::"}, wantReason: allocated, wantStatus: isTrue},
	})
}

// TestCoreReshared checks which decisions tell the co-holders to decide
// again: a change of addresses or terms of a Service that shares, or did.
func TestCoreReshared(t *testing.T) {
	key := func(k string) svcOpt { return annotate("herald.dev/sharing-key", k) }
	c := NewCore("")
	if err := c.SetModel(model(t, ippool("p", []string{"198.51.100.0/29"}))); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name         string
		svc          *corev1.Service
		wantReshared bool
		wantCo       []string
	}{
		{"alone, unshared", service("ns", "solo", withPorts(80)), false, nil},
		{"solo again: nothing changed", service("ns", "solo", withPorts(80)), false, nil},
		{"web takes a shared address", service("ns", "web", withPorts(80), key("k"), withLBIP("198.51.100.3")), true, nil},
		{"api joins it", service("ns", "api", withPorts(443), key("k"), withLBIP("198.51.100.3")), true, []string{"ns/web"}},
		{"api again: nothing changed", service("ns", "api", withPorts(443), key("k"), withLBIP("198.51.100.3")), false, []string{"ns/web"}},
		{"api's port edited: its terms changed", service("ns", "api", withPorts(8443), key("k"), withLBIP("198.51.100.3")), true, []string{"ns/web"}},
		{"api opts in to another namespace", service("ns", "api", withPorts(8443), key("k"), withLBIP("198.51.100.3"),
			annotate("herald.dev/sharing-cross-namespace", "other")), true, []string{"ns/web"}},
		{"api leaves sharing: it moves", service("ns", "api", withPorts(8443)), true, []string{"ns/web"}},
	}
	for _, st := range steps {
		d := c.Ensure(st.svc).LoadBalancer
		if d.Reshared != st.wantReshared {
			t.Errorf("%s: Reshared %v, want %v (%s)", st.name, d.Reshared, st.wantReshared, d.Condition.Message)
		}
		co := c.CoHolders(st.svc.Namespace, st.svc.Name, d.Previous, d.Addresses)
		if !cmp.Equal(co, st.wantCo, cmpopts.EquateEmpty()) {
			t.Errorf("%s: co-holders %v, want %v", st.name, co, st.wantCo)
		}
	}
}
