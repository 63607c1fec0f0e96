package kubeinput

import (
	"cmp"
	"net/netip"
	goslices "slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
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
	return &Summaries{dirty: map[decide.ServiceKey]struct{}{}, all: true, byKey: map[decide.ServiceKey]decide.Service{}, uids: map[decide.ServiceKey]types.UID{}, takeover: takeover}
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

// MarkSlice marks the Service of an EndpointSlice informer event dirty.
func (m *Summaries) MarkSlice(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		m.RebuildAll()
		return
	}
	if name, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
		m.mark(decide.ServiceKey{Namespace: es.Namespace, Name: name})
	}
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
	c, ok := obj.(*v1alpha1.AddressClaim)
	if !ok {
		m.RebuildAll()
		return
	}
	for _, h := range c.Spec.Holders {
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
		list, _ := c.Services.List(labels.Everything())
		m.byKey = make(map[decide.ServiceKey]decide.Service, len(list))
		m.uids = make(map[decide.ServiceKey]types.UID, len(list))
		for _, svc := range list {
			m.set(decide.ServiceKey{Namespace: svc.Namespace, Name: svc.Name}, svc, c, class, now)
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
			svc, err := c.Services.Services(k.Namespace).Get(k.Name)
			if err != nil && !apierrors.IsNotFound(err) {
				// A lister only fails with NotFound; should that change,
				// read everything next time.
				m.RebuildAll()
			}
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
func (m *Summaries) set(k decide.ServiceKey, svc *corev1.Service, c Caches, class string, now time.Time) {
	sv, ok := decide.Service{}, false
	if svc != nil && ServesClass(svc, class) {
		sv, ok = summarise(svc, c)
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

// Caches are the informer caches a Service summary is read from.
type Caches struct {
	Services corelisters.ServiceLister
	// Slices are the EndpointSlices, indexed by Service (ServiceIndex).
	Slices cache.Indexer
	Claims heraldlisters.AddressClaimLister
}

// claimOf returns the claim of addr, if the cache holds a valid one. A
// claim that fails config.ClaimOf counts as none: its address is not
// announced (the claims handler reports it, see badClaims).
func (c Caches) claimOf(addr netip.Addr) (config.Claim, bool) {
	obj, err := c.Claims.Get(config.ClaimName(addr))
	if err != nil {
		return config.Claim{}, false
	}
	claim, err := config.ClaimOf(obj)
	if err != nil {
		return config.Claim{}, false
	}
	return claim, true
}

// summarise returns what the speaker needs of svc, its AddressClaims and
// its EndpointSlices, or false when svc has no address to announce: the
// addresses it asks for whose claims list it (config.ClaimedAddresses).
func summarise(svc *corev1.Service, c Caches) (decide.Service, bool) {
	addrs := config.ClaimedAddresses(svc, c.claimOf)
	if len(addrs) == 0 {
		return decide.Service{}, false
	}
	key := decide.ServiceKey{Namespace: svc.Namespace, Name: svc.Name}
	sv := decide.Service{Key: key, Addresses: addrs, HealthCheckNodePort: svc.Spec.HealthCheckNodePort}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		sv.TrafficPolicy = decide.TrafficPolicyLocal
	} else {
		sv.TrafficPolicy = decide.TrafficPolicyCluster
	}
	objs, _ := c.Slices.ByIndex(ServiceIndex, key.String())
	var v4, v6 []*discoveryv1.EndpointSlice
	for _, o := range objs {
		es := o.(*discoveryv1.EndpointSlice)
		switch es.AddressType {
		case discoveryv1.AddressTypeIPv4:
			v4 = append(v4, es)
		case discoveryv1.AddressTypeIPv6:
			v6 = append(v6, es)
		}
	}
	// The index returns slices in no particular order: sort them, so an
	// unchanged Service summarises the same every time.
	byName := func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) }
	goslices.SortFunc(v4, byName)
	goslices.SortFunc(v6, byName)
	sv.EndpointsV4 = EndpointsFromSlices(v4, discoveryv1.AddressTypeIPv4)
	sv.EndpointsV6 = EndpointsFromSlices(v6, discoveryv1.AddressTypeIPv6)
	return sv, true
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
