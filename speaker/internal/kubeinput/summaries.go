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

	// Owned by the loop.
	byKey map[decide.ServiceKey]decide.Service
	uids  map[decide.ServiceKey]types.UID
	// takeover, when not nil, marks the endpoints of settling nodes in
	// the summaries it builds (see SettleTracker), and makes update
	// rebuild the summaries of the Services whose nodes have settled since.
	takeover *decide.SettleTracker
}

// NewSummaries returns summaries that rebuild everything on the first
// Update. takeover, when not nil, marks settling endpoints (see
// decide.SettleTracker).
func NewSummaries(takeover *decide.SettleTracker) *Summaries {
	return &Summaries{dirty: map[decide.ServiceKey]struct{}{}, all: true, slices: sliceIndex{}, byKey: map[decide.ServiceKey]decide.Service{}, uids: map[decide.ServiceKey]types.UID{}, takeover: takeover}
}

// UID returns the UID of the summarised Service k, "" when unknown. Only
// the loop may call it.
func (m *Summaries) UID(k decide.ServiceKey) types.UID { return m.uids[k] }

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
// returns them all (in no particular order), and how many it rebuilt.
// Besides the dirty Services it rebuilds those with a node that has
// settled by now (takeover), so their summaries change and only their
// addresses are recomputed.
func (m *Summaries) Update(c Caches, class string, now time.Time) (out []decide.Service, rebuilt int) {
	dirty, all := m.take()
	if m.takeover != nil {
		for _, k := range m.takeover.Due(now) {
			dirty[k] = struct{}{}
		}
	}
	if all {
		// Index the slices anew under the lock, so no handler's change
		// lands between the list and the new index (it lands after).
		m.mu.Lock()
		m.slices = newSliceIndex(c.Slices.List())
		m.mu.Unlock()
		list := c.Services.List()
		m.byKey = make(map[decide.ServiceKey]decide.Service, len(list))
		m.uids = make(map[decide.ServiceKey]types.UID, len(list))
		for _, o := range list {
			if svc, ok := o.(*CachedService); ok {
				m.set(svc.Key(), svc, c, class, now)
			}
		}
		rebuilt = len(list)
		if m.takeover != nil {
			// Services no longer listed get no set call: forget them. The
			// first full rebuild is the start-up list, settled as it is.
			m.takeover.Retain(func(k decide.ServiceKey) bool { _, ok := m.byKey[k]; return ok })
			m.takeover.Prime()
		}
	} else {
		for k := range dirty {
			o, _, err := c.Services.GetByKey(k.String())
			if err != nil {
				// A cache's GetByKey does not fail; should that change,
				// read everything next time.
				m.RebuildAll()
			}
			svc, _ := o.(*CachedService)
			m.set(k, svc, c, class, now)
		}
		rebuilt = len(dirty)
	}
	out = make([]decide.Service, 0, len(m.byKey))
	for _, s := range m.byKey {
		out = append(out, s)
	}
	return out, rebuilt
}

// set stores the summary of Service k (svc, nil when gone) as seen at now,
// or removes it when the speaker does not announce it.
func (m *Summaries) set(k decide.ServiceKey, svc *CachedService, c Caches, class string, now time.Time) {
	sv, ok := decide.Service{}, false
	if svc != nil && ServesClass(svc, class) {
		sv, ok = summarise(svc, c, m.sliceNames(k))
	}
	if !ok {
		delete(m.byKey, k)
		delete(m.uids, k)
		if m.takeover != nil {
			m.takeover.Forget(k)
		}
		return
	}
	if m.takeover != nil {
		sv, _ = m.takeover.Observe(sv, now)
	}
	m.byKey[k] = sv
	m.uids[k] = svc.UID
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
func endpointsOf(slices []*CachedSlice) []decide.Endpoint {
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
		for _, e := range s.Endpoints {
			out = append(out, e.Endpoint())
		}
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
