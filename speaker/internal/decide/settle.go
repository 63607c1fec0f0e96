package decide

import (
	"slices"
	"time"
)

// Settling: when a pod of an externalTrafficPolicy Local Service becomes
// ready on a node that had none, the EndpointSlice says so at once, but
// kube-proxy on that node programs the rules that deliver the traffic to it
// only at its next sync (tens of milliseconds in a quiet lab, up to its
// --iptables-min-sync-period, 1 s by default, and more under load). Until
// then that node drops the Service's traffic. Moving an address there at
// once, because the election ranks the new node first, loses the
// connections of that gap although the old node can still forward.
//
// So a node that gains its first ready endpoint of a Service (per address
// family) while another node already carries it (it has had a ready
// endpoint for at least the burst window, a quarter of the takeover delay,
// or it drains a serving-terminating one) is "settling" for the delay: its
// ready endpoints are marked Endpoint.Settling, and EligibleNodes prefers
// nodes that can forward now. After the delay the normal rules apply, so
// the address may still move, but only once the new node can carry it.
//
// The other node need not have settled itself: it is the one announcing,
// and the one whose kube-proxy has had the longer time to sync. (Counting
// only settled nodes, a rollout that began within the delay of a Service's
// first pod moved the address at once to a node whose kube-proxy had not
// synced, and lost the connections of that gap: the first of 100 rollout
// trials, measured 2026-12-07.)
//
// Whether a node settles is decided once, when it appears, and it stays so
// until the delay ends: a node that was a candidate never stops being one
// because time passed. (Deciding from the ages alone would not do: the
// first pods of a Service become ready a few milliseconds apart, and the
// first to come of age would take the address from the others for the
// difference, only to lose it again.) Pods that become ready within the
// burst window of the first count as the Service's first pods: none of
// them settles, as nothing could forward before them.
//
// Every speaker sees the same EndpointSlice change within milliseconds, so
// their trackers agree up to that skew. A tracker that starts counts every
// endpoint it lists at start-up as settled, so a restarting speaker agrees
// with the others too.

// DefaultTakeoverDelay is the default takeover delay: above kube-proxy's
// default --iptables-min-sync-period (1 s), so the new node's kube-proxy
// has synced before it is given traffic.
const DefaultTakeoverDelay = 2 * time.Second

// burstFraction divides the takeover delay into the burst window: nodes
// whose first ready endpoints appear within it of the Service's first are
// the Service's first pods (500 ms at the default delay).
const burstFraction = 4

// SettleTracker remembers, per Local Service, address family and node, when
// the node's first ready endpoint was seen, and marks the ready endpoints
// of nodes seen ready for less than the delay as Settling. It is pure (the
// caller passes the time) and not safe for concurrent use. Its memory is
// O(nodes with ready endpoints) per Local Service.
type SettleTracker struct {
	delay    time.Duration
	primed   bool
	services map[ServiceKey]*settleState
	// settles is, per Service with a settling node, when the first of them
	// settles.
	settles map[ServiceKey]time.Time
}

// settleState is one Service's record, per family, of the nodes with a
// ready endpoint.
type settleState struct {
	v4, v6 map[string]readySince
}

// readySince is what the tracker knows of one node with a ready endpoint.
type readySince struct {
	// first is when the node's first ready endpoint was seen; the zero
	// time for a node listed at start-up.
	first time.Time
	// held is true when another node could forward when the node appeared:
	// the node then settles until first + delay.
	held bool
}

// NewSettleTracker returns a tracker for the takeover delay delay; a delay
// of 0 or less marks nothing (every endpoint is settled at once). Until
// Prime is called, every endpoint observed counts as settled (the initial
// list at start-up).
func NewSettleTracker(delay time.Duration) *SettleTracker {
	return &SettleTracker{delay: delay, services: map[ServiceKey]*settleState{}, settles: map[ServiceKey]time.Time{}}
}

// Prime ends the start-up: nodes that become ready from now on settle for
// the delay.
func (t *SettleTracker) Prime() { t.primed = true }

// Observe records svc's endpoints as seen at now and returns svc with the
// ready endpoints of settling nodes marked Settling (svc itself is not
// modified; unchanged endpoint slices are shared), and the earliest time a
// settling node of svc settles, or the zero time when none settles. A node
// that no longer has a ready endpoint is forgotten: when one becomes ready
// there again, it settles again, since kube-proxy removed its rules.
// Services with another traffic policy than Local are not tracked (any node
// forwards their traffic) and are returned as they are. Cost:
// O(endpoints of svc).
func (t *SettleTracker) Observe(svc Service, now time.Time) (Service, time.Time) {
	if t.delay <= 0 || svc.TrafficPolicy != TrafficPolicyLocal {
		t.Forget(svc.Key)
		return svc, time.Time{}
	}
	st := t.services[svc.Key]
	if st == nil {
		st = &settleState{}
		t.services[svc.Key] = st
	}
	var next4, next6 time.Time
	st.v4, svc.EndpointsV4, next4 = t.observeFamily(st.v4, svc.EndpointsV4, now)
	st.v6, svc.EndpointsV6, next6 = t.observeFamily(st.v6, svc.EndpointsV6, now)
	if len(st.v4) == 0 && len(st.v6) == 0 {
		delete(t.services, svc.Key)
	}
	next := earliest(next4, next6)
	if next.IsZero() {
		delete(t.settles, svc.Key)
	} else {
		t.settles[svc.Key] = next
	}
	return svc, next
}

// Next returns the earliest time a settling node of any Service settles,
// or the zero time when no node settles. The caller observes the Services
// Due then again, so their settled nodes become candidates. Cost:
// O(Services with a settling node).
func (t *SettleTracker) Next() time.Time {
	var next time.Time
	for _, at := range t.settles {
		next = earliest(next, at)
	}
	return next
}

// Due returns the Services with a node that has settled by now since they
// were last observed, sorted. Cost: O(Services with a settling node).
func (t *SettleTracker) Due(now time.Time) []ServiceKey {
	var due []ServiceKey
	for k, at := range t.settles {
		if !now.Before(at) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, CompareServiceKeys)
	return due
}

// observeFamily updates one family's record from eps and returns it, the
// endpoints with Settling set, and the earliest settle time.
func (t *SettleTracker) observeFamily(seen map[string]readySince, eps []Endpoint, now time.Time) (map[string]readySince, []Endpoint, time.Time) {
	readyNodes := make(map[string]bool, len(seen))
	draining := false
	for _, ep := range eps {
		if ep.Ready && ep.NodeName != "" {
			readyNodes[ep.NodeName] = true
		}
	}
	for _, ep := range eps {
		if !ep.Ready && ep.Serving && ep.Terminating && ep.NodeName != "" && !readyNodes[ep.NodeName] {
			draining = true
		}
	}
	for n := range seen {
		if !readyNodes[n] {
			delete(seen, n)
		}
	}
	if len(readyNodes) == 0 {
		return nil, eps, time.Time{}
	}
	// forwarding: some node known for longer than the burst window carries
	// the traffic now, so a node appearing now waits.
	forwarding := draining
	for _, r := range seen {
		if r.first.IsZero() || !now.Before(r.first.Add(t.delay/burstFraction)) {
			forwarding = true
			break
		}
	}
	if seen == nil {
		seen = make(map[string]readySince, len(readyNodes))
	}
	var next time.Time
	settling := map[string]bool{}
	for n := range readyNodes {
		r, ok := seen[n]
		if !ok {
			if t.primed {
				r = readySince{first: now, held: forwarding}
			}
			seen[n] = r
		}
		if !r.held {
			continue
		}
		if at := r.first.Add(t.delay); now.Before(at) {
			settling[n] = true
			next = earliest(next, at)
		}
	}
	if len(settling) == 0 {
		return seen, eps, time.Time{}
	}
	out := slices.Clone(eps)
	for i, ep := range out {
		// Only a ready endpoint can be settling; a serving-terminating one
		// on the same node was programmed while it was ready.
		out[i].Settling = ep.Ready && settling[ep.NodeName]
	}
	return seen, out, next
}

// Forget drops what the tracker knows of the Service key (deleted, or no
// longer served by this speaker).
func (t *SettleTracker) Forget(key ServiceKey) {
	delete(t.services, key)
	delete(t.settles, key)
}

// Retain forgets the Services for which keep returns false. Cost:
// O(Services tracked).
func (t *SettleTracker) Retain(keep func(ServiceKey) bool) {
	for k := range t.services {
		if !keep(k) {
			t.Forget(k)
		}
	}
	for k := range t.settles {
		if !keep(k) {
			t.Forget(k)
		}
	}
}

// earliest returns the earlier of two times, the zero time meaning none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
