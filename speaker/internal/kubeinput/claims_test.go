package kubeinput

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// claimFor is the AddressClaim of addr in pool, held by holders, as an
// allocator writes it.
var claimFor = config.NewClaim

// holder lists svc as a holder: as v1alpha1.HolderLoadBalancer or HolderExternalIP.
func holder(svc *corev1.Service, as string) v1alpha1.AddressHolder {
	return v1alpha1.AddressHolder{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: as}
}

// claimCache is a claims cache holding claims, as the informer stores
// them.
func claimCache(tb testing.TB, claims ...*v1alpha1.AddressClaim) cache.Store {
	tb.Helper()
	idx := cache.NewStore(cache.MetaNamespaceKeyFunc)
	for _, c := range claims {
		if err := idx.Add(cacheClaim(c)); err != nil {
			tb.Fatal(err)
		}
	}
	return idx
}

// TestSummariesAnnounceOnlyClaimedAddresses reads Services and their
// claims from caches, as the loop does, and checks which addresses each
// summary keeps and with which pool.
func TestSummariesAnnounceOnlyClaimedAddresses(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.51.100.140"), netip.MustParseAddr("198.51.100.141")
	ext := netip.MustParseAddr("203.0.113.5")
	v6 := netip.MustParseAddr("2001:db8:1::1:9")
	service := func(name, uid string, ingress []netip.Addr, externalIPs ...string) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalIPs: externalIPs},
		}
		for _, a := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: a.String()})
		}
		return s
	}
	web := service("web", "u-web", []netip.Addr{a1, v6})
	tests := []struct {
		name   string
		svc    *corev1.Service
		claims []*v1alpha1.AddressClaim
		want   []config.ClaimedAddress // nil: no summary
	}{
		{
			name:   "ingress addresses claimed for the Service, each with its claim's pool",
			svc:    web,
			claims: []*v1alpha1.AddressClaim{claimFor(a1, "lan", holder(web, v1alpha1.HolderLoadBalancer)), claimFor(v6, "lan-v6", holder(web, v1alpha1.HolderLoadBalancer))},
			want:   []config.ClaimedAddress{{Addr: a1, Pool: "lan"}, {Addr: v6, Pool: "lan-v6"}},
		},
		{
			name:   "an ingress address without a claim is not announced",
			svc:    web,
			claims: []*v1alpha1.AddressClaim{claimFor(v6, "lan", holder(web, v1alpha1.HolderLoadBalancer))},
			want:   []config.ClaimedAddress{{Addr: v6, Pool: "lan"}},
		},
		{
			name: "a claim that lists another UID under the same name (the Service was deleted and created again) is not the Service's",
			svc:  service("web", "u-web-2", []netip.Addr{a1}),
			claims: []*v1alpha1.AddressClaim{claimFor(a1, "lan",
				v1alpha1.AddressHolder{Namespace: "shop", Name: "web", UID: "u-web", As: v1alpha1.HolderLoadBalancer})},
		},
		{
			name:   "an external IP in spec without a claim is not announced (CVE-2020-8554)",
			svc:    service("ext", "u-ext", nil, ext.String()),
			claims: []*v1alpha1.AddressClaim{claimFor(a2, "external", v1alpha1.AddressHolder{Namespace: "shop", Name: "ext", UID: "u-ext", As: v1alpha1.HolderExternalIP})},
		},
		{
			name: "an external IP claimed for the Service as an external IP is announced",
			svc:  service("ext", "u-ext", nil, ext.String()),
			claims: []*v1alpha1.AddressClaim{claimFor(ext, "external",
				v1alpha1.AddressHolder{Namespace: "shop", Name: "ext", UID: "u-ext", As: v1alpha1.HolderExternalIP})},
			want: []config.ClaimedAddress{{Addr: ext, Pool: "external"}},
		},
		{
			name: "an external IP claimed for the Service as a load-balancer address is not",
			svc:  service("ext", "u-ext", nil, ext.String()),
			claims: []*v1alpha1.AddressClaim{claimFor(ext, "external",
				v1alpha1.AddressHolder{Namespace: "shop", Name: "ext", UID: "u-ext", As: v1alpha1.HolderLoadBalancer})},
		},
		{
			name: "a claim that fails validation is ignored",
			svc:  web,
			claims: []*v1alpha1.AddressClaim{
				func() *v1alpha1.AddressClaim {
					c := claimFor(a1, "lan", holder(web, v1alpha1.HolderLoadBalancer))
					c.Spec.Address = a2.String() // named for a1, claims a2
					return c
				}(),
				claimFor(v6, "lan", v1alpha1.AddressHolder{Namespace: "shop", Name: "web", As: v1alpha1.HolderLoadBalancer}), // no UID
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			services := cache.NewStore(cache.MetaNamespaceKeyFunc)
			if err := services.Add(cacheService(tt.svc)); err != nil {
				t.Fatal(err)
			}
			c := Caches{Services: services, Slices: cache.NewStore(cache.MetaNamespaceKeyFunc), Claims: claimCache(t, tt.claims...)}
			got, _ := NewSummaries(nil).Update(c, "", time.Now())
			var addrs []config.ClaimedAddress
			if len(got) > 0 {
				addrs = got[0].Addresses
			}
			if diff := cmp.Diff(tt.want, addrs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("summary addresses (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBadClaimsLogOncePerVersion checks that a relist (the same version
// again) does not log an invalid claim again, and a new version does.
func TestBadClaimsLogOncePerVersion(t *testing.T) {
	var logs bytes.Buffer
	b := NewBadClaims(slog.New(slog.NewTextHandler(&logs, nil)))
	bad := claimFor(netip.MustParseAddr("198.51.100.140"), "lan")
	bad.ResourceVersion = "1"
	good := claimFor(netip.MustParseAddr("198.51.100.140"), "lan", v1alpha1.AddressHolder{Namespace: "a", Name: "b", UID: "u", As: v1alpha1.HolderLoadBalancer})
	good.ResourceVersion = "3"
	b.Observe(cacheClaim(bad))
	b.Observe(cacheClaim(bad))
	if n := strings.Count(logs.String(), "ignoring"); n != 1 || b.Count() != 1 {
		t.Fatalf("the same version twice: logged %d times, counted %d; want 1, 1", n, b.Count())
	}
	bad2 := bad.DeepCopy()
	bad2.ResourceVersion = "2"
	b.Observe(cacheClaim(bad2))
	if n := strings.Count(logs.String(), "ignoring"); n != 2 || b.Count() != 1 {
		t.Fatalf("a new invalid version: logged %d times, counted %d; want 2, 1", n, b.Count())
	}
	b.Observe(cacheClaim(good))
	if b.Count() != 0 {
		t.Fatalf("once valid, counted %d, want 0", b.Count())
	}
	b.Observe(cacheClaim(bad))
	b.Forget(cache.DeletedFinalStateUnknown{Key: bad.Name, Obj: cacheClaim(bad)})
	if b.Count() != 0 {
		t.Fatalf("after deletion, counted %d, want 0", b.Count())
	}
}
