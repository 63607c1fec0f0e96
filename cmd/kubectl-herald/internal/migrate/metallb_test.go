package migrate

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/herald-dev/herald/config"
)

func mlb(kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "metallb-system"},
		"spec":     spec,
	}}
}

func pool(name string, addrs ...any) *unstructured.Unstructured {
	return mlb(KindIPAddressPool, name, map[string]any{"addresses": addrs})
}

type svcOpt func(*corev1.Service)

func lbSvc(ns, name string, addrs []string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	for _, a := range addrs {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: a})
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func ann(k, v string) svcOpt { return func(s *corev1.Service) { s.Annotations[k] = v } }
func port(p int32) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports = []corev1.ServicePort{{Port: p, Protocol: corev1.ProtocolTCP}} }
}

// TestMetalLBServices: what each Service keeps, the annotations that carry
// MetalLB's, and every reason a Service would not keep its address.
func TestMetalLBServices(t *testing.T) {
	pools := []*unstructured.Unstructured{pool("a", "198.51.100.0/28"), pool("b", "198.51.100.16 - 198.51.100.31", "2001:db8::/120")}
	for _, tc := range []struct {
		name     string
		services []*corev1.Service
		// want is, per Service (namespace/name), the annotations to set,
		// or the problem's text (a substring) when it would not keep its address.
		want    map[string]string
		dropped []string
	}{
		{
			name:     "an address allocated automatically keeps its pool",
			services: []*corev1.Service{lbSvc("app", "web", []string{"198.51.100.3"}, ann("metallb.io/ip-allocated-from-pool", "a"))},
			want:     map[string]string{"app/web": ""},
		},
		{
			name: "requested addresses, pool and sharing key, under both prefixes",
			services: []*corev1.Service{
				lbSvc("app", "dual", []string{"198.51.100.20", "2001:db8::7"}, ann("metallb.universe.tf/loadBalancerIPs", "198.51.100.20, 2001:db8::7"), ann("metallb.io/address-pool", "b")),
				lbSvc("app", "dns-tcp", []string{"198.51.100.5"}, ann("metallb.io/allow-shared-ip", "dns"), port(53)),
				lbSvc("app", "dns-udp", []string{"198.51.100.5"}, ann("metallb.universe.tf/allow-shared-ip", "dns"), func(s *corev1.Service) {
					s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}}
				}),
			},
			want: map[string]string{
				"app/dual":    "herald.dev/addresses=198.51.100.20,2001:db8::7 herald.dev/pool=b",
				"app/dns-tcp": "herald.dev/sharing-key=dns",
				"app/dns-udp": "herald.dev/sharing-key=dns",
			},
		},
		{
			name: "sharing across namespaces: each side names the other",
			services: []*corev1.Service{
				lbSvc("one", "x", []string{"198.51.100.6"}, ann("metallb.io/allow-shared-ip", "k"), port(80)),
				lbSvc("two", "y", []string{"198.51.100.6"}, ann("metallb.io/allow-shared-ip", "k"), port(443)),
			},
			want: map[string]string{
				"one/x": "herald.dev/sharing-cross-namespace=two herald.dev/sharing-key=k",
				"two/y": "herald.dev/sharing-cross-namespace=one herald.dev/sharing-key=k",
			},
		},
		{
			name: "one address held by two Services without a common key",
			services: []*corev1.Service{
				lbSvc("app", "x", []string{"198.51.100.7"}, ann("metallb.io/allow-shared-ip", "k")),
				lbSvc("app", "y", []string{"198.51.100.7"}, port(81)),
			},
			want: map[string]string{"app/x": "PROBLEM do not all set the same sharing key", "app/y": "PROBLEM do not all set the same sharing key"},
		},
		{
			name: "sharers whose ports overlap",
			services: []*corev1.Service{
				lbSvc("app", "x", []string{"198.51.100.7"}, ann("metallb.io/allow-shared-ip", "k")),
				lbSvc("app", "y", []string{"198.51.100.7"}, ann("metallb.io/allow-shared-ip", "k")),
			},
			want: map[string]string{"app/x": "PROBLEM both app/x and app/y use TCP/80", "app/y": "PROBLEM both app/x and app/y use TCP/80"},
		},
		{
			name:     "an address in no pool",
			services: []*corev1.Service{lbSvc("app", "web", []string{"203.0.113.9"})},
			want:     map[string]string{"app/web": "PROBLEM 203.0.113.9 lies in no MetalLB pool"},
		},
		{
			name:     "an address outside the pool the Service names",
			services: []*corev1.Service{lbSvc("app", "web", []string{"198.51.100.3"}, ann("metallb.io/address-pool", "b"))},
			want:     map[string]string{"app/web": "PROBLEM 198.51.100.3 lies in pool a, but the Service asks for pool b"},
		},
		{
			name:     "a requested address the Service does not hold",
			services: []*corev1.Service{lbSvc("app", "web", []string{"198.51.100.3"}, ann("metallb.io/loadBalancerIPs", "198.51.100.4"))},
			want:     map[string]string{"app/web": "PROBLEM it asks for 198.51.100.4 but holds 198.51.100.3"},
		},
		{
			name: "a spec.loadBalancerIP the Service does not hold",
			services: []*corev1.Service{lbSvc("app", "web", []string{"198.51.100.3"}, func(s *corev1.Service) {
				s.Spec.LoadBalancerIP = "198.51.100.9"
			})},
			want: map[string]string{"app/web": "PROBLEM it asks for 198.51.100.9 but holds 198.51.100.3"},
		},
		{
			name:     "a sharing key Herald's syntax refuses",
			services: []*corev1.Service{lbSvc("app", "web", []string{"198.51.100.3"}, ann("metallb.io/allow-shared-ip", "my key!"))},
			want:     map[string]string{"app/web": "PROBLEM its annotations do not convert"},
		},
		{
			name:     "an unknown MetalLB annotation is dropped",
			services: []*corev1.Service{lbSvc("app", "web", []string{"198.51.100.3"}, ann("metallb.io/some-future-thing", "x"))},
			want:     map[string]string{"app/web": ""},
			dropped:  []string{"Service/app/web metallb.io/some-future-thing"},
		},
		{
			name: "a Service of another type without MetalLB annotations is left alone",
			services: []*corev1.Service{func() *corev1.Service {
				s := lbSvc("app", "internal", nil)
				s.Spec.Type = corev1.ServiceTypeClusterIP
				return s
			}()},
			want: map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := MetalLB(MetalLBInput{Objects: pools, Services: tc.services})
			if len(plan.Problems) > 0 {
				t.Fatalf("plan problems: %q", plan.Problems)
			}
			got := map[string]string{}
			for _, s := range plan.Services {
				k := s.Namespace + "/" + s.Name
				if len(s.Problems) > 0 {
					got[k] = "PROBLEM " + strings.Join(s.Problems, "; ")
					if len(s.After) != 0 {
						t.Errorf("%s: after %v despite problems", k, s.After)
					}
					continue
				}
				got[k] = annotationsText(s.Annotations)
				if diff := cmp.Diff(s.Now, s.After, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("%s: the address changes (-now +after):\n%s", k, diff)
				}
			}
			for k, w := range tc.want {
				if strings.HasPrefix(w, "PROBLEM ") {
					if !strings.HasPrefix(got[k], "PROBLEM ") || !strings.Contains(got[k], strings.TrimPrefix(w, "PROBLEM ")) {
						t.Errorf("%s: got %q, want a problem containing %q", k, got[k], strings.TrimPrefix(w, "PROBLEM "))
					}
					got[k] = w
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Services (-want +got):\n%s", diff)
			}
			var dropped []string
			for _, d := range plan.Dropped {
				dropped = append(dropped, d.Object+" "+d.Field)
			}
			if diff := cmp.Diff(tc.dropped, dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMetalLBResources: conversions and the problems that block a migration.
func TestMetalLBResources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		objects []*unstructured.Unstructured
		// check inspects the plan; problem, when set, is a substring of the
		// plan's only problem.
		problem string
		check   func(t *testing.T, p *Plan)
	}{
		{
			name:    "two pools claim the same addresses",
			objects: []*unstructured.Unstructured{pool("a", "198.51.100.0/24"), pool("b", "198.51.100.128-198.51.100.140")},
			problem: "addresses 198.51.100.128-198.51.100.140 are claimed by two MetalLB pools, a and b",
		},
		{
			name:    "an address entry that is not one",
			objects: []*unstructured.Unstructured{pool("a", "198.51.100.0/33")},
			problem: `address entry "198.51.100.0/33"`,
		},
		{
			name:    "a CIDR with host bits is written masked",
			objects: []*unstructured.Unstructured{pool("a", "198.51.100.7/24", "2001:db8:0:0::10 - 2001:db8::20")},
			check: func(t *testing.T, p *Plan) {
				if diff := cmp.Diff([]string{"198.51.100.0/24", "2001:db8::10-2001:db8::20"}, p.IPPools[0].Spec.Addresses); diff != "" {
					t.Errorf("addresses (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "community aliases and large communities",
			objects: []*unstructured.Unstructured{
				mlb(KindCommunity, "c", map[string]any{"communities": []any{map[string]any{"name": "edge", "value": "large:65000:1:2"}}}),
				mlb(KindBGPAdvertisement, "adv", map[string]any{"communities": []any{"edge", "65000:100"}}),
			},
			check: func(t *testing.T, p *Plan) {
				s := p.BGPAdvertisements[0].Spec
				if diff := cmp.Diff([]string{"65000:100"}, s.Communities); diff != "" {
					t.Errorf("communities (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"65000:1:2"}, s.LargeCommunities); diff != "" {
					t.Errorf("large communities (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "an unknown community alias",
			objects: []*unstructured.Unstructured{mlb(KindBGPAdvertisement, "adv", map[string]any{"communities": []any{"nowhere"}})},
			problem: `community "nowhere" is neither`,
		},
		{
			name:    "a peer naming a missing BFD profile",
			objects: []*unstructured.Unstructured{mlb(KindBGPPeer, "p", map[string]any{"myASN": int64(64512), "peerASN": int64(64513), "peerAddress": "203.0.113.1", "bfdProfile": "fast"})},
			problem: `BFDProfile "fast", which does not exist`,
		},
		{
			name:    "an unnumbered peer keeps its interface",
			objects: []*unstructured.Unstructured{mlb(KindBGPPeer, "p", map[string]any{"myASN": int64(64512), "peerASN": int64(64513), "interface": "eth1"})},
			check: func(t *testing.T, p *Plan) {
				if s := p.BGPPeers[0].Spec; s.Interface != "eth1" || s.PeerAddress != "" {
					t.Errorf("spec %+v, want interface eth1 and no peerAddress", s)
				}
			},
		},
		{
			name:    "a peer with an address and an interface",
			objects: []*unstructured.Unstructured{mlb(KindBGPPeer, "p", map[string]any{"myASN": int64(64512), "peerASN": int64(64513), "interface": "eth1", "peerAddress": "203.0.113.1"})},
			problem: `spec.peerAddress "203.0.113.1" and spec.interface "eth1" are both set`,
		},
		{
			name:    "dynamic external ASN has no equivalent",
			objects: []*unstructured.Unstructured{mlb(KindBGPPeer, "p", map[string]any{"myASN": int64(64512), "dynamicASN": "external", "peerAddress": "203.0.113.1"})},
			problem: `spec.dynamicASN "external"`,
		},
		{
			name: "pool selectors with a list resolve to the pools selected now",
			objects: []*unstructured.Unstructured{
				func() *unstructured.Unstructured {
					u := pool("a", "198.51.100.0/28")
					u.SetLabels(map[string]string{"zone": "x"})
					return u
				}(),
				pool("b", "198.51.100.16/28"), pool("c", "198.51.100.32/28"),
				mlb(KindL2Advertisement, "l2", map[string]any{"ipAddressPools": []any{"b"}, "ipAddressPoolSelectors": []any{map[string]any{"matchLabels": map[string]any{"zone": "x"}}}}),
			},
			check: func(t *testing.T, p *Plan) {
				if diff := cmp.Diff([]string{"a", "b"}, p.L2Advertisements[0].Spec.IPPools); diff != "" {
					t.Errorf("ipPools (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "several namespace selectors cannot be carried",
			objects: []*unstructured.Unstructured{mlb(KindIPAddressPool, "a", map[string]any{"addresses": []any{"198.51.100.0/28"}, "serviceAllocation": map[string]any{"namespaceSelectors": []any{map[string]any{"matchLabels": map[string]any{"a": "1"}}, map[string]any{"matchLabels": map[string]any{"b": "1"}}}}})},
			check: func(t *testing.T, p *Plan) {
				if len(p.Dropped) != 1 || p.Dropped[0].Field != "spec.serviceAllocation.namespaceSelectors" {
					t.Errorf("dropped %+v, want spec.serviceAllocation.namespaceSelectors", p.Dropped)
				}
				if !p.Blocked(false) || p.Blocked(true) {
					t.Errorf("Blocked(false) %v, Blocked(true) %v: want a dropped setting to block unless accepted", p.Blocked(false), p.Blocked(true))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := MetalLB(MetalLBInput{Objects: tc.objects})
			switch {
			case tc.problem != "":
				if len(p.Problems) != 1 || !strings.Contains(p.Problems[0], tc.problem) {
					t.Errorf("problems %q, want one containing %q", p.Problems, tc.problem)
				}
				if !p.Blocked(true) {
					t.Error("a plan with a problem is not blocked")
				}
			case len(p.Problems) > 0:
				t.Errorf("problems %q, want none", p.Problems)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// TestMetalLBBGPPeerBFD: a MetalLB BGPPeer's BFD profile is carried where
// Herald's schema takes BFD, and dropped, with the reason, on an unnumbered
// or multihop session, which Herald's schema refuses BFD with; every
// BGPPeer written is one Herald's configuration model accepts.
func TestMetalLBBGPPeerBFD(t *testing.T) {
	profile := mlb(KindBFDProfile, "fast", map[string]any{"receiveInterval": int64(200), "transmitInterval": int64(200), "detectMultiplier": int64(4)})
	peer := func(extra map[string]any) *unstructured.Unstructured {
		s := map[string]any{"myASN": int64(64512), "peerASN": int64(64513), "bfdProfile": "fast"}
		for k, v := range extra {
			s[k] = v
		}
		return mlb(KindBGPPeer, "p", s)
	}
	for _, tc := range []struct {
		name        string
		peer        *unstructured.Unstructured
		wantBFD     bool
		wantDropped string // a substring of the reason for dropping spec.bfdProfile; "" for none
	}{
		{"a numbered peer keeps its BFD", peer(map[string]any{"peerAddress": "203.0.113.1"}), true, ""},
		{"an unnumbered peer loses it", peer(map[string]any{"interface": "eth1"}), false, "unnumbered session (spec.interface)"},
		{"a multihop peer loses it", peer(map[string]any{"peerAddress": "203.0.113.1", "ebgpMultiHop": true}), false, "single-hop only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := MetalLB(MetalLBInput{Objects: []*unstructured.Unstructured{profile, tc.peer}})
			if len(p.Problems) > 0 || len(p.BGPPeers) != 1 {
				t.Fatalf("problems %q, %d BGPPeers; want none and one", p.Problems, len(p.BGPPeers))
			}
			b := p.BGPPeers[0].Spec.BFD
			if got := b != nil && b.Enabled != nil && *b.Enabled; got != tc.wantBFD {
				t.Errorf("BFD %+v, want enabled: %v", b, tc.wantBFD)
			}
			if tc.wantBFD && (b.Multiplier == nil || *b.Multiplier != 4 || b.MinRx == nil || b.MinRx.Duration != 200*time.Millisecond) {
				t.Errorf("BFD %+v, want the profile's 200 ms x 4", b)
			}
			var reasons []string
			for _, d := range p.Dropped {
				if d.Field == "spec.bfdProfile" {
					reasons = append(reasons, d.Value+": "+d.Reason)
				}
			}
			switch {
			case tc.wantDropped == "" && len(reasons) > 0:
				t.Errorf("spec.bfdProfile dropped: %q", reasons)
			case tc.wantDropped != "" && (len(reasons) != 1 || !strings.HasPrefix(reasons[0], "fast: ") || !strings.Contains(reasons[0], tc.wantDropped)):
				t.Errorf("spec.bfdProfile dropped with %q, want one reason containing %q", reasons, tc.wantDropped)
			}
			if tc.wantDropped != "" && (!p.Blocked(false) || p.Blocked(true)) {
				t.Errorf("Blocked(false) %v, Blocked(true) %v: want the dropped BFD to block unless accepted", p.Blocked(false), p.Blocked(true))
			}
			m := config.Build(config.Snapshot{BGPPeers: p.BGPPeers})
			if probs := m.Problems(); len(probs) > 0 {
				t.Errorf("Herald's configuration model refuses the BGPPeer written: %+v", probs)
			}
		})
	}
}
