package decide

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSettleTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	svcKey := ServiceKey{"default", "web"}
	local := func(v4 ...Endpoint) Service {
		return Service{Key: svcKey, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: v4}
	}
	type step struct {
		name     string
		svc      Service
		now      time.Duration
		prime    bool // Prime before observing
		wantV4   []Endpoint
		wantNext time.Time
	}
	tests := []struct {
		name  string
		delay time.Duration
		steps []step
	}{
		{
			name:  "endpoints listed at start-up are settled; a node that becomes ready later settles for the delay",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up: a ready", svc: local(ready("a")), wantV4: []Endpoint{ready("a")}},
				{name: "b becomes ready while a forwards: settling until 2s", prime: true, svc: local(ready("a"), ready("b")), now: 0,
					wantV4: []Endpoint{ready("a"), settling("b")}, wantNext: at(2 * time.Second)},
				{name: "still settling at 1.999s", svc: local(ready("a"), ready("b")), now: 1999 * time.Millisecond,
					wantV4: []Endpoint{ready("a"), settling("b")}, wantNext: at(2 * time.Second)},
				{name: "settled at 2s", svc: local(ready("a"), ready("b")), now: 2 * time.Second,
					wantV4: []Endpoint{ready("a"), ready("b")}},
			},
		},
		{
			name:  "a Service's first pods, a few milliseconds apart, do not settle: nothing could forward before them",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up without endpoints", svc: local()},
				{name: "a ready", prime: true, svc: local(ready("a")), now: 0, wantV4: []Endpoint{ready("a")}},
				{name: "b ready 100ms later: a is not settled yet, b does not wait for it", svc: local(ready("a"), ready("b")),
					now: 100 * time.Millisecond, wantV4: []Endpoint{ready("a"), ready("b")}},
				{name: "c ready once a and b are settled: c settles", svc: local(ready("a"), ready("b"), ready("c")),
					now: 2100 * time.Millisecond, wantV4: []Endpoint{ready("a"), ready("b"), settling("c")}, wantNext: at(4100 * time.Millisecond)},
			},
		},
		{
			name:  "a node that appears after the burst window settles although the first node has not settled yet (a rollout soon after the Service's start)",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up without endpoints", svc: local()},
				{name: "a ready", prime: true, svc: local(ready("a")), now: 0, wantV4: []Endpoint{ready("a")}},
				{name: "b ready 499ms later: still the first pods", svc: local(ready("a"), ready("b")),
					now: 499 * time.Millisecond, wantV4: []Endpoint{ready("a"), ready("b")}},
				{name: "c ready 500ms after a: a carries the address, c settles", svc: local(ready("a"), ready("b"), ready("c")),
					now: 500 * time.Millisecond, wantV4: []Endpoint{ready("a"), ready("b"), settling("c")}, wantNext: at(2500 * time.Millisecond)},
				{name: "d ready at 1.9s, before a has settled: d settles", svc: local(ready("a"), ready("b"), ready("c"), ready("d")),
					now: 1900 * time.Millisecond, wantV4: []Endpoint{ready("a"), ready("b"), settling("c"), settling("d")}, wantNext: at(2500 * time.Millisecond)},
			},
		},
		{
			name:  "a node that appears while another drains settles",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up: a ready", svc: local(ready("a")), wantV4: []Endpoint{ready("a")}},
				{name: "a's pod terminates, b is not ready yet", prime: true, svc: local(terminating("a"), starting("b")), now: time.Second,
					wantV4: []Endpoint{terminating("a"), starting("b")}},
				{name: "b ready: settling while a drains", svc: local(terminating("a"), ready("b")), now: 2 * time.Second,
					wantV4: []Endpoint{terminating("a"), settling("b")}, wantNext: at(4 * time.Second)},
			},
		},
		{
			name:  "a second pod on a settled node does not settle; a node that lost its pods settles again",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up", svc: local(ready("a"), ready("b")), wantV4: []Endpoint{ready("a"), ready("b")}},
				{name: "second pod on a", prime: true, svc: local(ready("a"), ready("a"), ready("b")), now: time.Second,
					wantV4: []Endpoint{ready("a"), ready("a"), ready("b")}},
				{name: "a has only a terminating pod", svc: local(terminating("a"), starting("a"), ready("b")), now: 2 * time.Second,
					wantV4: []Endpoint{terminating("a"), starting("a"), ready("b")}},
				{name: "a ready again: settling, its terminating pod is not", svc: local(terminating("a"), ready("a"), ready("b")), now: 3 * time.Second,
					wantV4: []Endpoint{terminating("a"), settling("a"), ready("b")}, wantNext: at(5 * time.Second)},
				{name: "a keeps settling although b goes", svc: local(terminating("a"), ready("a")), now: 4 * time.Second,
					wantV4: []Endpoint{terminating("a"), settling("a")}, wantNext: at(5 * time.Second)},
			},
		},
		{
			name:  "the earliest settle time of several nodes",
			delay: time.Second,
			steps: []step{
				{name: "start-up", svc: local(ready("z")), wantV4: []Endpoint{ready("z")}},
				{name: "a ready", prime: true, svc: local(ready("z"), ready("a")), now: 100 * time.Millisecond,
					wantV4: []Endpoint{ready("z"), settling("a")}, wantNext: at(1100 * time.Millisecond)},
				{name: "b ready", svc: local(ready("z"), ready("a"), ready("b")), now: 500 * time.Millisecond,
					wantV4: []Endpoint{ready("z"), settling("a"), settling("b")}, wantNext: at(1100 * time.Millisecond)},
				{name: "a settled, b not", svc: local(ready("z"), ready("a"), ready("b")), now: 1100 * time.Millisecond,
					wantV4: []Endpoint{ready("z"), ready("a"), settling("b")}, wantNext: at(1500 * time.Millisecond)},
			},
		},
		{
			name:  "delay 0: nothing settles (the behaviour without a takeover delay)",
			delay: 0,
			steps: []step{
				{name: "start-up", svc: local(ready("a")), wantV4: []Endpoint{ready("a")}},
				{name: "b ready", prime: true, svc: local(ready("a"), ready("b")), now: time.Second,
					wantV4: []Endpoint{ready("a"), ready("b")}},
			},
		},
		{
			name:  "cluster policy is not tracked",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up", svc: Service{Key: svcKey, TrafficPolicy: TrafficPolicyCluster, EndpointsV4: []Endpoint{ready("a")}},
					wantV4: []Endpoint{ready("a")}},
				{name: "b ready", prime: true, svc: Service{Key: svcKey, TrafficPolicy: TrafficPolicyCluster, EndpointsV4: []Endpoint{ready("a"), ready("b")}},
					now: time.Second, wantV4: []Endpoint{ready("a"), ready("b")}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewSettleTracker(tt.delay)
			for _, st := range tt.steps {
				if st.prime {
					tr.Prime()
				}
				in := st.svc
				before := append([]Endpoint(nil), in.EndpointsV4...)
				got, next := tr.Observe(in, at(st.now))
				if diff := cmp.Diff(st.wantV4, got.EndpointsV4); diff != "" {
					t.Errorf("%s: endpoints mismatch (-want +got):\n%s", st.name, diff)
				}
				if !next.Equal(st.wantNext) {
					t.Errorf("%s: next = %v, want %v", st.name, next, st.wantNext)
				}
				if diff := cmp.Diff(before, in.EndpointsV4); diff != "" {
					t.Errorf("%s: Observe modified its input (-before +after):\n%s", st.name, diff)
				}
			}
		})
	}
}

func TestSettleTrackerFamiliesAndRetain(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	key := ServiceKey{"default", "web"}
	tr := NewSettleTracker(2 * time.Second)
	tr.Observe(Service{Key: key, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: []Endpoint{ready("a"), ready("b")}, EndpointsV6: []Endpoint{ready("b")}}, t0)
	tr.Prime()

	// a is ready for IPv6 only now: kube-proxy programs each family from its
	// own slices, so a settles for IPv6 while it is settled for IPv4.
	svc := Service{Key: key, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: []Endpoint{ready("a"), ready("b")}, EndpointsV6: []Endpoint{ready("a"), ready("b")}}
	got, next := tr.Observe(svc, t0.Add(time.Second))
	want := Service{Key: key, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: []Endpoint{ready("a"), ready("b")}, EndpointsV6: []Endpoint{settling("a"), ready("b")}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Observe mismatch (-want +got):\n%s", diff)
	}
	if w := t0.Add(3 * time.Second); !next.Equal(w) {
		t.Errorf("next = %v, want %v", next, w)
	}

	// A Service Retain drops is forgotten: when it comes back (after
	// start-up), its nodes are new, and as nothing else was known to
	// forward, none of them waits.
	tr.Retain(func(ServiceKey) bool { return false })
	if next := tr.Next(); !next.IsZero() {
		t.Errorf("Next() after forgetting every Service = %v, want the zero time", next)
	}
	got, _ = tr.Observe(svc, t0.Add(5*time.Second))
	want.EndpointsV6 = []Endpoint{ready("a"), ready("b")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Observe after the Service came back mismatch (-want +got):\n%s", diff)
	}
}

func TestSettleTrackerDue(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	a, b, c := ServiceKey{"default", "a"}, ServiceKey{"default", "b"}, ServiceKey{"default", "c"}
	local := func(k ServiceKey, v4 ...Endpoint) Service {
		return Service{Key: k, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: v4}
	}
	tr := NewSettleTracker(time.Second)
	for _, k := range []ServiceKey{a, b, c} {
		tr.Observe(local(k, ready("n0")), t0)
	}
	tr.Prime()
	if next := tr.Next(); !next.IsZero() {
		t.Errorf("Next() with nothing settling = %v, want the zero time", next)
	}
	tr.Observe(local(b, ready("n0"), ready("n1")), t0.Add(200*time.Millisecond))
	tr.Observe(local(a, ready("n0"), ready("n1")), t0.Add(100*time.Millisecond))
	tr.Observe(local(c, ready("n0"), ready("n1")), t0.Add(900*time.Millisecond))
	if next, want := tr.Next(), t0.Add(1100*time.Millisecond); !next.Equal(want) {
		t.Errorf("Next() = %v, want %v", next, want)
	}
	if diff := cmp.Diff([]ServiceKey{a, b}, tr.Due(t0.Add(1200*time.Millisecond))); diff != "" {
		t.Errorf("Due(1.2s) mismatch (-want +got):\n%s", diff)
	}
	// Observed again after settling, a Service is no longer due.
	tr.Observe(local(a, ready("n0"), ready("n1")), t0.Add(1200*time.Millisecond))
	tr.Forget(b)
	if diff := cmp.Diff([]ServiceKey(nil), tr.Due(t0.Add(1200*time.Millisecond))); diff != "" {
		t.Errorf("Due(1.2s) after observing mismatch (-want +got):\n%s", diff)
	}
	if next, want := tr.Next(), t0.Add(1900*time.Millisecond); !next.Equal(want) {
		t.Errorf("Next() = %v, want %v", next, want)
	}
}
