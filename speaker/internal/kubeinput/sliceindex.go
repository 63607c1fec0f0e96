package kubeinput

import (
	"slices"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// sliceIndex lists, per Service, the names of its EndpointSlices (in the
// Service's namespace). It replaces a client-go index on the EndpointSlice
// informer, which keeps a set (a map) per Service and a key string per
// slice: at 10,000 Services, 3 MB of the speaker's live heap against under
// 1 MB here.
//
// Summaries keeps it from the EndpointSlice handlers' events and rebuilds
// it from the cache with every summary (RebuildAll), so it may lag the
// cache by the events not yet delivered, as the dirty marks do: a slice
// the cache has and the index does not yet list comes with an event that
// marks its Service dirty. A name it lists that the cache no longer has, or
// that now carries another Service's label, is skipped by its reader
// (Caches.slicesOf), so events replayed after a rebuild are harmless.
//
// Its name lists are never modified in place (remove copies), so a reader
// may keep one after the lock is released.
type sliceIndex map[decide.ServiceKey][]string

// add lists es under its Service.
func (x sliceIndex) add(es *CachedSlice) {
	k, ok := es.ServiceKey()
	if !ok {
		return
	}
	if names := x[k]; !slices.Contains(names, es.Name) {
		x[k] = append(names[:len(names):len(names)], es.Name)
	}
}

// remove drops es from its Service's list.
func (x sliceIndex) remove(es *CachedSlice) {
	k, ok := es.ServiceKey()
	if !ok {
		return
	}
	names := x[k]
	i := slices.Index(names, es.Name)
	switch {
	case i < 0:
	case len(names) == 1:
		delete(x, k)
	default:
		x[k] = slices.Delete(slices.Clone(names), i, i+1)
	}
}

// newSliceIndex indexes objs, the EndpointSlice cache's objects.
func newSliceIndex(objs []any) sliceIndex {
	x := make(sliceIndex, len(objs))
	for _, o := range objs {
		if es, ok := o.(*CachedSlice); ok {
			x.add(es)
		}
	}
	return x
}
