package config

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestClaimName(t *testing.T) {
	for _, tc := range []struct{ addr, name string }{
		{"198.51.100.7", "198.51.100.7"},
		{"2001:db8::7", "2001-db8--7"},
		{"2001:db8::", "2001-db8--0"},
		{"::1", "0--1"},
		{"::", "0--0"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"0:1:2:3:4:5:6:7", "0-1-2-3-4-5-6-7"},
		{"fe80::1%eth0", "fe80--1"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			addr := netip.MustParseAddr(tc.addr)
			if got := ClaimName(addr); got != tc.name {
				t.Fatalf("ClaimName(%s) = %q, want %q", addr, got, tc.name)
			}
			back, err := ParseClaimName(tc.name)
			if err != nil {
				t.Fatalf("ParseClaimName(%q): %v", tc.name, err)
			}
			if want := addr.Unmap().WithZone(""); back != want {
				t.Fatalf("ParseClaimName(%q) = %s, want %s", tc.name, back, want)
			}
		})
	}
}

func TestParseClaimNameRefuses(t *testing.T) {
	for _, name := range []string{"", "pool-a", "2001:db8::7", "2001-0db8--7", "0--0--1", "198.51.100.07", "-1", "0-0-0-0-0-0-0-1"} {
		if a, err := ParseClaimName(name); !errors.Is(err, ErrClaimName) {
			t.Errorf("ParseClaimName(%q) = %v, %v; want ErrClaimName", name, a, err)
		}
	}
}

func FuzzClaimName(f *testing.F) {
	f.Add([]byte{198, 51, 100, 7})
	f.Add(netip.MustParseAddr("2001:db8::").AsSlice())
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, ok := netip.AddrFromSlice(b)
		if !ok {
			if back, err := ParseClaimName(string(b)); err == nil {
				if ClaimName(back) != string(b) {
					t.Fatalf("ParseClaimName(%q) accepted a name ClaimName does not write", b)
				}
			}
			return
		}
		back, err := ParseClaimName(ClaimName(addr))
		if err != nil || back != addr.Unmap() {
			t.Fatalf("round trip of %s: %s, %v", addr, back, err)
		}
	})
}

func claimObj(addr, pool string, holders ...v1alpha1.AddressHolder) *v1alpha1.AddressClaim {
	return &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: ClaimName(netip.MustParseAddr(addr))},
		Spec:       v1alpha1.AddressClaimSpec{Address: addr, Pool: pool, Holders: holders, HolderCount: int32(len(holders))},
	}
}

func TestClaimOf(t *testing.T) {
	h := v1alpha1.AddressHolder{Namespace: "a", Name: "web", UID: "u1", As: v1alpha1.HolderLoadBalancer}
	good := claimObj("2001:db8::7", "p", h)
	c, err := ClaimOf(good)
	if err != nil {
		t.Fatal(err)
	}
	want := Claim{Addr: netip.MustParseAddr("2001:db8::7"), Pool: "p", Holders: []ClaimHolder{{Namespace: "a", Name: "web", UID: "u1"}}}
	if d := cmp.Diff(want, c, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("ClaimOf (-want +got):\n%s", d)
	}
	for name, bad := range map[string]*v1alpha1.AddressClaim{
		"wrong name":    func() *v1alpha1.AddressClaim { c := good.DeepCopy(); c.Name = "2001-db8--8"; return c }(),
		"no holder":     claimObj("198.51.100.7", "p"),
		"bad address":   func() *v1alpha1.AddressClaim { c := good.DeepCopy(); c.Spec.Address = "nope"; return c }(),
		"holder no uid": claimObj("198.51.100.7", "p", v1alpha1.AddressHolder{Namespace: "a", Name: "b"}),
	} {
		if _, err := ClaimOf(bad); !errors.Is(err, ErrClaim) {
			t.Errorf("%s: ClaimOf = %v, want ErrClaim", name, err)
		}
	}
}

func TestClaimedAddresses(t *testing.T) {
	lb := netip.MustParseAddr("198.51.100.7")
	ext := netip.MustParseAddr("203.0.113.5")
	other := netip.MustParseAddr("203.0.113.6")
	claims := map[netip.Addr]Claim{
		lb:    {Addr: lb, Pool: "lan", Holders: []ClaimHolder{{Namespace: "a", Name: "web", UID: "u1"}}},
		ext:   {Addr: ext, Pool: "ext", Holders: []ClaimHolder{{Namespace: "a", Name: "web", UID: "u1", ExternalIP: true}}},
		other: {Addr: other, Pool: "ext", Holders: []ClaimHolder{{Namespace: "b", Name: "x", UID: "u2", ExternalIP: true}}},
	}
	claimOf := func(a netip.Addr) (Claim, bool) { c, ok := claims[a]; return c, ok }
	svc := func(typ corev1.ServiceType, uid string, ingress []string, externalIPs ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web", UID: "u1"}}
		s.UID = typesUID(uid)
		s.Spec.Type = typ
		s.Spec.ExternalIPs = externalIPs
		for _, i := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: i})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want []ClaimedAddress
	}{
		{"ingress and accepted external IP", svc(corev1.ServiceTypeLoadBalancer, "u1", []string{"198.51.100.7"}, "203.0.113.5"),
			[]ClaimedAddress{{lb, "lan"}, {ext, "ext"}}},
		{"another UID under the same name", svc(corev1.ServiceTypeLoadBalancer, "u9", []string{"198.51.100.7"}, "203.0.113.5"), nil},
		{"not a LoadBalancer any more", svc(corev1.ServiceTypeClusterIP, "u1", []string{"198.51.100.7"}), nil},
		{"ingress claimed only as an external IP", svc(corev1.ServiceTypeLoadBalancer, "u1", []string{"203.0.113.5"}), nil},
		{"external IP claimed by another Service", svc(corev1.ServiceTypeClusterIP, "u1", nil, "203.0.113.6"), nil},
		{"external IP no longer in spec", svc(corev1.ServiceTypeClusterIP, "u1", nil), nil},
		{"no claim", svc(corev1.ServiceTypeLoadBalancer, "u1", []string{"198.51.100.9"}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ClaimedAddresses(tc.svc, claimOf)
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Fatalf("ClaimedAddresses (-want +got):\n%s", d)
			}
		})
	}
}

func typesUID(s string) types.UID { return types.UID(s) }
