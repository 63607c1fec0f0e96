package poolplan

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

var t0 = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

func pool(name string, addrs ...string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: t0}, Spec: v1alpha1.IPPoolSpec{Addresses: addrs}}
}

func svc(name, addr string, created int) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(created) * time.Second))},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}},
	}
	if addr != "" {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: addr}}
	}
	return s
}

func claimFor(s *corev1.Service, pool string) *v1alpha1.AddressClaim {
	return config.NewClaim(netip.MustParseAddr(s.Status.LoadBalancer.Ingress[0].IP), pool,
		v1alpha1.AddressHolder{Namespace: s.Namespace, Name: s.Name, UID: string(s.UID), As: v1alpha1.HolderLoadBalancer})
}

func node(name, rack string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"rack": rack}}}
}

func l2(name string, rack string) *v1alpha1.L2Advertisement {
	a := &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if rack != "" {
		a.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": rack}}}
	}
	return a
}

// TestPlan: a pool shrunk under a Service, grown for pending ones, and an
// advertisement narrowed.
func TestPlan(t *testing.T) {
	web := svc("web", "198.51.100.3", 0)
	db := svc("db", "198.51.100.12", 1)
	pending1, pending2 := svc("new1", "", 2), svc("new2", "", 3)
	services := []*corev1.Service{web, db, pending1, pending2}
	current := Resources{Pools: []*v1alpha1.IPPool{pool("a", "198.51.100.0/28")}, L2Advertisements: []*v1alpha1.L2Advertisement{l2("all", "")}}
	// The current pool is full: 16 addresses, 2 held; fill the rest.
	var claims []*v1alpha1.AddressClaim
	claims = append(claims, claimFor(web, "a"), claimFor(db, "a"))
	for i := 0; i < 16; i++ {
		if i == 3 || i == 12 {
			continue
		}
		s := svc("filler"+string(rune('a'+i)), netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String(), 10+i)
		services = append(services, s)
		claims = append(claims, claimFor(s, "a"))
	}
	nodes := []*corev1.Node{node("n1", "x"), node("n2", "y")}
	for _, tc := range []struct {
		name    string
		changes Resources
		want    Result
	}{
		{
			name:    "nothing changed",
			changes: Resources{},
			want: Result{StillPending: []string{
				"Service app/new1 would stay pending: PoolExhausted",
				"Service app/new2 would stay pending: PoolExhausted",
			}},
		},
		{
			name:    "a pool grown by a range serves the pending Services, oldest first",
			changes: Resources{Pools: []*v1alpha1.IPPool{pool("a", "198.51.100.0/28", "198.51.100.16-198.51.100.16")}},
			want: Result{
				Changed:      []string{"IPPool a (changed)"},
				Served:       []string{"Service app/new1 would get 198.51.100.16 from IPPool a."},
				StillPending: []string{"Service app/new2 would stay pending: PoolExhausted"},
			},
		},
		{
			name:    "a pool shrunk under Services in use, and a new pool",
			changes: Resources{Pools: []*v1alpha1.IPPool{pool("a", "198.51.100.0-198.51.100.11"), pool("b", "203.0.113.0/30")}},
			want: Result{
				Changed: []string{"IPPool a (changed)", "IPPool b (new)"},
				Outside: []string{
					"Service app/db would keep 198.51.100.12 outside IPPool a (not in any pool): Herald never moves an address in use",
					"Service app/fillern would keep 198.51.100.13 outside IPPool a",
					"Service app/fillero would keep 198.51.100.14 outside IPPool a",
					"Service app/fillerp would keep 198.51.100.15 outside IPPool a",
				},
				Served: []string{"Service app/new1 would get 203.0.113.0 from IPPool b.", "Service app/new2 would get 203.0.113.1 from IPPool b."},
			},
		},
		{
			name:    "an advertisement narrowed to one rack",
			changes: Resources{L2Advertisements: []*v1alpha1.L2Advertisement{l2("all", "x")}},
			want: Result{
				Changed:      []string{"L2Advertisement all (changed)"},
				Announcement: []string{"198.51.100.0 (Service app/fillera, IPPool a): layer 2 from nodes n1, instead of nodes n1, n2."},
				StillPending: []string{"Service app/new1 would stay pending", "Service app/new2 would stay pending"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(Input{Current: current, Changes: tc.changes, Claims: claims, Services: services, Nodes: nodes})
			// Each wanted line is a prefix of the line got; only the
			// first announcement line is checked.
			trim := func(want, got []string) []string {
				if len(got) == 0 {
					return nil
				}
				out := make([]string, len(got))
				for i := range got {
					out[i] = got[i]
					if i < len(want) && strings.HasPrefix(got[i], want[i]) {
						out[i] = want[i]
					}
				}
				return out
			}
			got.Outside = trim(tc.want.Outside, got.Outside)
			got.StillPending = trim(tc.want.StillPending, got.StillPending)
			if len(tc.want.Announcement) > 0 && len(got.Announcement) > 0 {
				got.Announcement = got.Announcement[:1]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Plan (-want +got):\n%s", diff)
			}
		})
	}
}
