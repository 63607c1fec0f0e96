package kubeinput

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// TestSliceIndexFollowsEvents drives the EndpointSlice index step by step,
// as the informer's handlers and the loop do, and checks after each step
// which slices the summaries read for each Service and which Services are
// dirty.
func TestSliceIndexFollowsEvents(t *testing.T) {
	web := decide.ServiceKey{Namespace: "shop", Name: "web"}
	api := decide.ServiceKey{Namespace: "shop", Name: "api"}
	slice := func(name, service string, nodes ...string) *CachedSlice {
		es := &CachedSlice{objectMeta: objectMeta{Namespace: "shop", Name: name}, Service: service, HasService: service != "", AddressType: discoveryv1.AddressTypeIPv4}
		for _, n := range nodes {
			es.Endpoints = append(es.Endpoints, decide.Endpoint{NodeName: n})
		}
		return es
	}
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	c := Caches{Slices: store}
	m := NewSummaries(nil)
	m.take() // the first Update's rebuild is not under test here

	a1, b1 := slice("web-a", "web", "n1"), slice("web-b", "web", "n2")
	a2 := slice("web-a", "api", "n3") // a relabelled to api
	for _, step := range []struct {
		name string
		// cache changes the cache; event is the handler's call (nil: none
		// delivered yet); rebuild indexes the cache anew (RebuildAll).
		cache   func()
		event   func()
		rebuild bool
		want    map[decide.ServiceKey][]string // slices read per Service
		dirty   []decide.ServiceKey
	}{
		{
			name:  "a added",
			cache: func() { _ = store.Add(a1) },
			event: func() { m.SliceChanged(nil, a1) },
			want:  map[decide.ServiceKey][]string{web: {"web-a"}},
			dirty: []decide.ServiceKey{web},
		},
		{
			name:  "b added, its event not delivered yet: not read, nothing marked",
			cache: func() { _ = store.Add(b1) },
			want:  map[decide.ServiceKey][]string{web: {"web-a"}},
		},
		{
			name:  "b's event delivered",
			event: func() { m.SliceChanged(nil, b1) },
			want:  map[decide.ServiceKey][]string{web: {"web-a", "web-b"}},
			dirty: []decide.ServiceKey{web},
		},
		{
			name:  "a relabelled to api, not delivered yet: web no longer reads it, api not yet",
			cache: func() { _ = store.Update(a2) },
			want:  map[decide.ServiceKey][]string{web: {"web-b"}},
		},
		{
			name:  "the relabelling delivered: both Services marked",
			event: func() { m.SliceChanged(a1, a2) },
			want:  map[decide.ServiceKey][]string{web: {"web-b"}, api: {"web-a"}},
			dirty: []decide.ServiceKey{api, web},
		},
		{
			name:    "b deleted, then a rebuild before its event",
			cache:   func() { _ = store.Delete(b1) },
			rebuild: true,
			want:    map[decide.ServiceKey][]string{api: {"web-a"}},
		},
		{
			name:  "b's deletion delivered after the rebuild, as a tombstone: nothing comes back",
			event: func() { m.SliceChanged(cache.DeletedFinalStateUnknown{Key: "shop/web-b", Obj: b1}, nil) },
			want:  map[decide.ServiceKey][]string{api: {"web-a"}},
			dirty: []decide.ServiceKey{web},
		},
		{
			name:  "an old event replayed after the rebuild (a's addition to web) reads nothing wrong",
			event: func() { m.SliceChanged(nil, a1) },
			want:  map[decide.ServiceKey][]string{api: {"web-a"}},
			dirty: []decide.ServiceKey{web},
		},
	} {
		if step.cache != nil {
			step.cache()
		}
		if step.event != nil {
			step.event()
		}
		if step.rebuild {
			m.mu.Lock()
			m.slices = newSliceIndex(store.List())
			m.mu.Unlock()
		}
		got := map[decide.ServiceKey][]string{}
		for _, k := range []decide.ServiceKey{web, api} {
			for _, es := range c.slicesOf(k, m.sliceNames(k)) {
				got[k] = append(got[k], es.Name)
			}
			slices.Sort(got[k])
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: slices read (-want +got):\n%s", step.name, diff)
		}
		dirty, _ := m.take()
		var keys []decide.ServiceKey
		for k := range dirty {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, decide.CompareServiceKeys)
		if diff := cmp.Diff(step.dirty, keys); diff != "" {
			t.Errorf("%s: dirty Services (-want +got):\n%s", step.name, diff)
		}
	}
}
