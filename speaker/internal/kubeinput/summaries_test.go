package kubeinput

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// TestSummariesUpdateKeepsListsUnchanged walks Summaries through
// additions, changes and deletions, and checks that Update returns the
// summaries sorted by key, the same slice when nothing changed, and never
// modifies a slice it returned earlier (decide.Incremental keeps it).
func TestSummariesUpdateKeepsListsUnchanged(t *testing.T) {
	services := cache.NewStore(cache.MetaNamespaceKeyFunc)
	claims := cache.NewStore(cache.MetaNamespaceKeyFunc)
	c := Caches{Services: services, Slices: cache.NewStore(cache.MetaNamespaceKeyFunc), Claims: claims}
	sums := NewSummaries(nil)
	addr := map[string]netip.Addr{}
	put := func(name string, local bool) {
		t.Helper()
		a, ok := addr[name]
		if !ok {
			a = netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + len(addr))})
			addr[name] = a
		}
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("u-" + name)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: a.String()}}}},
		}
		if local {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
		if err := services.Add(cacheService(s)); err != nil {
			t.Fatal(err)
		}
		if err := claims.Add(cacheClaim(claimFor(a, "lan", holder(s, v1alpha1.HolderLoadBalancer)))); err != nil {
			t.Fatal(err)
		}
		sums.MarkService(s)
	}
	remove := func(name string) {
		t.Helper()
		obj, _, _ := services.GetByKey("shop/" + name)
		if err := services.Delete(obj); err != nil {
			t.Fatal(err)
		}
		sums.MarkService(obj)
	}
	type summary struct {
		Name  string
		Local bool
		UID   types.UID
	}
	// summariesOf reads list; the UIDs are the summaries' as of now.
	summariesOf := func(list []decide.Service) []summary {
		var out []summary
		for _, s := range list {
			out = append(out, summary{s.Key.Name, s.TrafficPolicy == decide.TrafficPolicyLocal, sums.UID(s.Key)})
		}
		return out
	}
	withoutUIDs := func(in []summary) []summary {
		out := slices.Clone(in)
		for i := range out {
			out[i].UID = ""
		}
		return out
	}

	steps := []struct {
		name        string
		change      func()
		want        []summary
		wantRebuilt int
		wantSame    bool // the slice returned last time
	}{
		{"start: every summary", func() { put("web", false); put("db", false); put("api", false) },
			[]summary{{"api", false, "u-api"}, {"db", false, "u-db"}, {"web", false, "u-web"}}, 3, false},
		{"nothing changed", func() {},
			[]summary{{"api", false, "u-api"}, {"db", false, "u-db"}, {"web", false, "u-web"}}, 0, true},
		{"db turns Local", func() { put("db", true) },
			[]summary{{"api", false, "u-api"}, {"db", true, "u-db"}, {"web", false, "u-web"}}, 1, false},
		{"a Service added between two", func() { put("cache", false) },
			[]summary{{"api", false, "u-api"}, {"cache", false, "u-cache"}, {"db", true, "u-db"}, {"web", false, "u-web"}}, 1, false},
		{"the first and the last deleted, one added at the end", func() { remove("api"); remove("web"); put("zoo", true) },
			[]summary{{"cache", false, "u-cache"}, {"db", true, "u-db"}, {"zoo", true, "u-zoo"}}, 3, false},
		{"everything rebuilt", func() { sums.RebuildAll() },
			[]summary{{"cache", false, "u-cache"}, {"db", true, "u-db"}, {"zoo", true, "u-zoo"}}, 3, false},
	}
	var prev []decide.Service
	var prevWant []summary
	for _, st := range steps {
		st.change()
		got, rebuilt := sums.Update(c, "", time.Now())
		if diff := cmp.Diff(st.want, summariesOf(got)); diff != "" {
			t.Errorf("%s: summaries (-want +got):\n%s", st.name, diff)
		}
		if rebuilt != st.wantRebuilt {
			t.Errorf("%s: rebuilt %d, want %d", st.name, rebuilt, st.wantRebuilt)
		}
		if same := len(got) > 0 && len(prev) > 0 && &got[0] == &prev[0]; same != st.wantSame {
			t.Errorf("%s: the slice of the last Update returned again: %v, want %v", st.name, same, st.wantSame)
		}
		if diff := cmp.Diff(prevWant, withoutUIDs(summariesOf(prev))); diff != "" {
			t.Errorf("%s: the slice returned last time changed (-before +after):\n%s", st.name, diff)
		}
		prev, prevWant = got, withoutUIDs(st.want)
	}
}

// TestEndpointsOfSharesAnOnlySlice checks that a family's only
// EndpointSlice gives the summary its own endpoints (no copy), and that
// several are joined in the order of their names.
func TestEndpointsOfSharesAnOnlySlice(t *testing.T) {
	slice := func(name string, nodes ...string) *CachedSlice {
		es := &CachedSlice{objectMeta: objectMeta{Namespace: "shop", Name: name}}
		for _, n := range nodes {
			es.Endpoints = append(es.Endpoints, decide.Endpoint{NodeName: n, Ready: true})
		}
		return es
	}
	only := slice("web-a", "n1", "n2")
	if got := endpointsOf([]*CachedSlice{only}); &got[0] != &only.Endpoints[0] {
		t.Errorf("endpointsOf(one slice) = a copy, want the slice's own endpoints")
	}
	if got := endpointsOf([]*CachedSlice{slice("web-a")}); got != nil {
		t.Errorf("endpointsOf(one empty slice) = %v, want nil", got)
	}
	got := endpointsOf([]*CachedSlice{slice("web-b", "n3"), only})
	want := []decide.Endpoint{{NodeName: "n1", Ready: true}, {NodeName: "n2", Ready: true}, {NodeName: "n3", Ready: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpointsOf(two slices) (-want +got):\n%s", diff)
	}
}
