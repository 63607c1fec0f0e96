package kubeinput

import (
	"cmp"
	"net/netip"
	goslices "slices"
	"strings"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// Summaries keeps the Service summary (addresses, policy, endpoints per
// family) of every Service the speaker serves, and rebuilds only those of
// the Services whose Service, EndpointSlices or AddressClaims changed since
// the last reconcile. The informer handlers mark keys dirty (any
// goroutine); the loop calls Update, which reads the caches for the dirty
// keys only. RebuildAll makes the next Update rebuild every summary (the
// start, and a periodic safety net).
type Summaries struct {
	mu    sync.Mutex
	dirty map[decide.ServiceKey]struct{}
	all   bool
	// slices indexes the EndpointSlices by Service (see sliceIndex).
	slices sliceIndex

	// Owned by the loop. list are the summaries, sorted by key, and uids
	// their Services' UIDs (same index). Update replaces both when a
	// summary changes and never modifies them, so the slice it returns
	// stays valid for whoever keeps it (decide.Incremental keeps it until
	// its next call: one copy of each summary between them).
	list []decide.Service
	uids []types.UID
	// takeover, when not nil, marks the endpoints of settling nodes in
	// the summaries it builds (see SettleTracker), and makes update
	// rebuild the summaries of the Services whose nodes have settled since.
	takeover *decide.SettleTracker
}

// NewSummaries returns summaries that rebuild everything on the first
// Update. takeover, when not nil, marks settling endpoints (see
// decide.SettleTracker).
func NewSummaries(takeover *decide.SettleTracker) *Summaries {
	return &Summaries{dirty: map[decide.ServiceKey]struct{}{}, all: true, slices: sliceIndex{}, takeover: takeover}
}

// UID returns the UID of the summarised Service k, "" when unknown. Only
// the loop may call it. Cost: O(log S).
func (m *Summaries) UID(k decide.ServiceKey) types.UID {
	if i, ok := m.find(k); ok {
		return m.uids[i]
	}
	return ""
}

// find returns the index of Service k's summary in m.list, or where it
// would go, and whether it is there.
func (m *Summaries) find(k decide.ServiceKey) (int, bool) {
	return decide.SearchServices(m.list, k)
}

// Takeover returns the settle tracker the summaries were made with.
func (m *Summaries) Takeover() *decide.SettleTracker { return m.takeover }

// MarkService marks the Service of a Service informer event dirty.
func (m *Summaries) MarkService(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		m.RebuildAll()
		return
	}
	ns, name, _ := strings.Cut(key, "/")
	if name == "" { // cluster-scoped: not a Service
		return
	}
	m.mark(decide.ServiceKey{Namespace: ns, Name: name})
}

// SliceChanged records an EndpointSlice informer event: an addition (old
// nil), an update, or a deletion (obj nil; a tombstone is read as its
// object). It keeps the index of each Service's slices and marks the
// Services of old and obj dirty.
func (m *Summaries) SliceChanged(old, obj any) {
	oldSlice, okOld := cachedSlice(old)
	newSlice, okNew := cachedSlice(obj)
	if !okOld || !okNew {
		m.RebuildAll()
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if oldSlice != nil {
		m.slices.remove(oldSlice)
		if k, ok := oldSlice.ServiceKey(); ok {
			m.dirty[k] = struct{}{}
		}
	}
	if newSlice != nil {
		m.slices.add(newSlice)
		if k, ok := newSlice.ServiceKey(); ok {
			m.dirty[k] = struct{}{}
		}
	}
}

// cachedSlice returns the slice of an EndpointSlice event's object (nil
// for none), false for anything else.
func cachedSlice(obj any) (*CachedSlice, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if obj == nil {
		return nil, true
	}
	es, ok := obj.(*CachedSlice)
	return es, ok
}

// MarkClaim marks dirty the Services an AddressClaim informer event's
// claim lists as holders. The update handler calls it with the old and the
// new object, so the Services a claim gained and lost are both rebuilt. A
// claim names its holders, so no index is needed to find them; a claim
// that fails config.ClaimOf marks its holders all the same, since they
// must stop announcing its address.
func (m *Summaries) MarkClaim(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	c, ok := obj.(*CachedClaim)
	if !ok {
		m.RebuildAll()
		return
	}
	for _, h := range c.Holders {
		if h.Namespace != "" && h.Name != "" {
			m.mark(decide.ServiceKey{Namespace: h.Namespace, Name: h.Name})
		}
	}
}

func (m *Summaries) mark(k decide.ServiceKey) {
	m.mu.Lock()
	m.dirty[k] = struct{}{}
	m.mu.Unlock()
}

// RebuildAll makes the next update rebuild every summary.
func (m *Summaries) RebuildAll() {
	m.mu.Lock()
	m.all = true
	m.mu.Unlock()
}

// take returns the dirty keys (all: every Service) and clears them. It is
// called before the caches are read, so a change that lands while the
// loop reads them is read again next time.
func (m *Summaries) take() (dirty map[decide.ServiceKey]struct{}, all bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dirty, all = m.dirty, m.all
	m.dirty, m.all = map[decide.ServiceKey]struct{}{}, false
	return dirty, all
}

// Update brings the summaries up to date with the caches at now and
// returns them all, sorted by key, and how many it rebuilt. The caller
// must not modify the slice; Update never does either (it makes a new
// one when a summary changes, and returns the last one when none did), so
// the caller may keep it. Besides the dirty Services it rebuilds those
// with a node that has settled by now (takeover), so their summaries
// change and only their addresses are recomputed. Cost: O(D log S) for D
// dirty Services, plus O(S) to copy the list when one of them changed;
// O(S log S) to rebuild every summary.
func (m *Summaries) Update(c Caches, class string, now time.Time) (out []decide.Service, rebuilt int) {
	dirty, all := m.take()
	if m.takeover != nil {
		for _, k := range m.takeover.Due(now) {
			dirty[k] = struct{}{}
		}
	}
	if all {
		return m.list, m.rebuildAll(c, class, now)
	}
	if len(dirty) == 0 {
		return m.list, 0
	}
	keys := make([]decide.ServiceKey, 0, len(dirty))
	for k := range dirty {
		keys = append(keys, k)
	}
	goslices.SortFunc(keys, decide.CompareServiceKeys)
	// Merge the rebuilt summaries (keys sorted) into a copy of the list.
	list := make([]decide.Service, 0, len(m.list)+len(keys))
	uids := make([]types.UID, 0, len(m.list)+len(keys))
	i := 0
	for _, k := range keys {
		at, found := m.find(k)
		list = append(list, m.list[i:at]...)
		uids = append(uids, m.uids[i:at]...)
		i = at
		if found {
			i++
		}
		o, _, err := c.Services.GetByKey(k.String())
		if err != nil {
			// A cache's GetByKey does not fail; should that change,
			// read everything next time.
			m.RebuildAll()
		}
		svc, _ := o.(*CachedService)
		if sv, ok := m.summary(k, svc, c, class, now); ok {
			list = append(list, sv)
			uids = append(uids, svc.UID)
		}
	}
	list = append(list, m.list[i:]...)
	uids = append(uids, m.uids[i:]...)
	m.list, m.uids = list, uids
	return m.list, len(dirty)
}

// rebuildAll rebuilds every summary from the caches at now, and returns
// how many Services the cache holds.
func (m *Summaries) rebuildAll(c Caches, class string, now time.Time) int {
	// Index the slices anew under the lock, so no handler's change lands
	// between the list and the new index (it lands after).
	m.mu.Lock()
	m.slices = newSliceIndex(c.Slices.List())
	m.mu.Unlock()
	all := c.Services.List()
	svcs := make([]*CachedService, 0, len(all))
	for _, o := range all {
		if svc, ok := o.(*CachedService); ok {
			svcs = append(svcs, svc)
		}
	}
	goslices.SortFunc(svcs, func(a, b *CachedService) int { return decide.CompareServiceKeys(a.Key(), b.Key()) })
	list := make([]decide.Service, 0, len(svcs))
	uids := make([]types.UID, 0, len(svcs))
	for _, svc := range svcs {
		if sv, ok := m.summary(svc.Key(), svc, c, class, now); ok {
			list = append(list, sv)
			uids = append(uids, svc.UID)
		}
	}
	m.list, m.uids = list, uids
	if m.takeover != nil {
		// Services no longer listed get no summary call: forget them.
		// The first full rebuild is the start-up list, settled as it is.
		m.takeover.Retain(func(k decide.ServiceKey) bool { _, ok := m.find(k); return ok })
		m.takeover.Prime()
	}
	return len(all)
}

// summary returns the summary of Service k (svc, nil when gone) as seen
// at now, or false when the speaker does not announce it.
func (m *Summaries) summary(k decide.ServiceKey, svc *CachedService, c Caches, class string, now time.Time) (decide.Service, bool) {
	sv, ok := decide.Service{}, false
	if svc != nil && ServesClass(svc, class) {
		sv, ok = summarise(svc, c, m.sliceNames(k))
	}
	if !ok {
		if m.takeover != nil {
			m.takeover.Forget(k)
		}
		return decide.Service{}, false
	}
	if m.takeover != nil {
		sv, _ = m.takeover.Observe(sv, now)
	}
	return sv, true
}

// Caches are the informer caches a Service summary is read from, holding
// what TransformObject makes of the objects.
type Caches struct {
	// Services are *CachedService.
	Services cache.Store
	// Slices are *CachedSlice (Summaries indexes them by Service).
	Slices cache.Store
	// Claims are *CachedClaim, keyed by name.
	Claims cache.Store
}

// holds returns the pool of addr's claim when the cache holds a valid one
// that lists the Service with UID uid, holding addr as an external IP
// (externalIP) or a load-balancer address. A claim that fails
// config.ClaimOf counts as none: its address is not announced (the claims
// handler reports it, see BadClaims).
func (c Caches) holds(addr netip.Addr, uid string, externalIP bool) (string, bool) {
	o, ok, _ := c.Claims.GetByKey(config.ClaimName(addr))
	claim, _ := o.(*CachedClaim)
	if !ok || claim == nil || !claim.holds(uid, externalIP) {
		return "", false
	}
	return claim.Pool, true
}

// sliceNames returns the names of Service k's EndpointSlices, as far as
// the index knows.
func (m *Summaries) sliceNames(k decide.ServiceKey) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.slices[k]
}

// slicesOf returns Service k's EndpointSlices in the cache, among those
// named names: the index's names may lag the cache (see sliceIndex).
func (c Caches) slicesOf(k decide.ServiceKey, names []string) []*CachedSlice {
	var out []*CachedSlice
	for _, name := range names {
		o, ok, _ := c.Slices.GetByKey(k.Namespace + "/" + name)
		es, _ := o.(*CachedSlice)
		if !ok || es == nil {
			continue
		}
		if sk, ok := es.ServiceKey(); ok && sk == k {
			out = append(out, es)
		}
	}
	return out
}

// summarise returns what the speaker needs of svc, its AddressClaims and
// its EndpointSlices (among those named slices), or false when svc has no
// address to announce: the addresses it asks for whose claims list it
// (config.ClaimedAddressesOf).
func summarise(svc *CachedService, c Caches, slices []string) (decide.Service, bool) {
	addrs := config.ClaimedAddressesOf(string(svc.UID), svc.LoadBalancer, svc.ExternalIPs, c.holds)
	if len(addrs) == 0 {
		return decide.Service{}, false
	}
	key := svc.Key()
	sv := decide.Service{Key: key, Addresses: addrs, HealthCheckNodePort: svc.HealthCheckNodePort}
	if svc.Local {
		sv.TrafficPolicy = decide.TrafficPolicyLocal
	} else {
		sv.TrafficPolicy = decide.TrafficPolicyCluster
	}
	var v4, v6 []*CachedSlice
	for _, es := range c.slicesOf(key, slices) {
		switch es.AddressType {
		case discoveryv1.AddressTypeIPv4:
			v4 = append(v4, es)
		case discoveryv1.AddressTypeIPv6:
			v6 = append(v6, es)
		}
	}
	sv.EndpointsV4 = endpointsOf(v4)
	sv.EndpointsV6 = endpointsOf(v6)
	return sv, true
}

// endpointsOf returns the endpoints of slices, in the order of the slices'
// names: the index returns slices in no particular order, and an
// unchanged Service must summarise the same every time. It sorts slices.
// A family's only slice (the common case) gives its own endpoints, shared
// with the cache, not a copy.
func endpointsOf(slices []*CachedSlice) []decide.Endpoint {
	if len(slices) == 1 && len(slices[0].Endpoints) > 0 {
		return slices[0].Endpoints
	}
	goslices.SortFunc(slices, func(a, b *CachedSlice) int { return cmp.Compare(a.Name, b.Name) })
	n := 0
	for _, s := range slices {
		n += len(s.Endpoints)
	}
	if n == 0 {
		return nil
	}
	out := make([]decide.Endpoint, 0, n)
	for _, s := range slices {
		out = append(out, s.Endpoints...)
	}
	return out
}

// Pending returns the Services marked dirty since the last Update, sorted,
// and whether every summary will be rebuilt, without clearing them.
func (m *Summaries) Pending() (dirty []decide.ServiceKey, all bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.dirty {
		dirty = append(dirty, k)
	}
	goslices.SortFunc(dirty, decide.CompareServiceKeys)
	return dirty, m.all
}
