package speaker

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
				{name: "b becomes ready: settling until 2s", prime: true, svc: local(ready("a"), ready("b")), now: 0,
					wantV4: []Endpoint{ready("a"), settling("b")}, wantNext: at(2 * time.Second)},
				{name: "still settling at 1.999s", svc: local(ready("a"), ready("b")), now: 1999 * time.Millisecond,
					wantV4: []Endpoint{ready("a"), settling("b")}, wantNext: at(2 * time.Second)},
				{name: "settled at 2s", svc: local(ready("a"), ready("b")), now: 2 * time.Second,
					wantV4: []Endpoint{ready("a"), ready("b")}},
			},
		},
		{
			name:  "a second pod on a settled node does not settle; a node that lost its pods settles again",
			delay: 2 * time.Second,
			steps: []step{
				{name: "start-up", svc: local(ready("a")), wantV4: []Endpoint{ready("a")}},
				{name: "second pod on a", prime: true, svc: local(ready("a"), ready("a"), terminating("a")), now: time.Second,
					wantV4: []Endpoint{ready("a"), ready("a"), terminating("a")}},
				{name: "a has only a terminating pod", svc: local(terminating("a"), starting("a")), now: 2 * time.Second,
					wantV4: []Endpoint{terminating("a"), starting("a")}},
				{name: "a ready again: settling, its terminating pod is not", svc: local(terminating("a"), ready("a")), now: 3 * time.Second,
					wantV4: []Endpoint{terminating("a"), settling("a")}, wantNext: at(5 * time.Second)},
			},
		},
		{
			name:  "the earliest settle time of several nodes",
			delay: time.Second,
			steps: []step{
				{name: "start-up without endpoints", svc: local()},
				{name: "a ready", prime: true, svc: local(ready("a")), now: 100 * time.Millisecond,
					wantV4: []Endpoint{settling("a")}, wantNext: at(1100 * time.Millisecond)},
				{name: "b ready", svc: local(ready("a"), ready("b")), now: 500 * time.Millisecond,
					wantV4: []Endpoint{settling("a"), settling("b")}, wantNext: at(1100 * time.Millisecond)},
				{name: "a settled, b not", svc: local(ready("a"), ready("b")), now: 1100 * time.Millisecond,
					wantV4: []Endpoint{ready("a"), settling("b")}, wantNext: at(1500 * time.Millisecond)},
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
				{name: "start-up", svc: Service{Key: svcKey, TrafficPolicy: TrafficPolicyCluster}},
				{name: "a ready", prime: true, svc: Service{Key: svcKey, TrafficPolicy: TrafficPolicyCluster, EndpointsV4: []Endpoint{ready("a")}},
					wantV4: []Endpoint{ready("a")}},
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

func TestSettleTrackerFamiliesAndForget(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	key := ServiceKey{"default", "web"}
	tr := NewSettleTracker(2 * time.Second)
	tr.ObserveAll([]Service{{Key: key, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: []Endpoint{ready("a")}}}, t0)

	// a is ready for IPv6 only now: kube-proxy programs each family from its
	// own slices, so a settles for IPv6 while it is settled for IPv4.
	svc := Service{Key: key, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: []Endpoint{ready("a")}, EndpointsV6: []Endpoint{ready("a")}}
	got, next := tr.ObserveAll([]Service{svc}, t0.Add(time.Second))
	want := Service{Key: key, TrafficPolicy: TrafficPolicyLocal, EndpointsV4: []Endpoint{ready("a")}, EndpointsV6: []Endpoint{settling("a")}}
	if diff := cmp.Diff([]Service{want}, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("ObserveAll mismatch (-want +got):\n%s", diff)
	}
	if w := t0.Add(3 * time.Second); !next.Equal(w) {
		t.Errorf("next = %v, want %v", next, w)
	}

	// A Service no longer listed is forgotten: when it comes back (after
	// start-up), its nodes are new.
	tr.ObserveAll(nil, t0.Add(4*time.Second))
	got, _ = tr.ObserveAll([]Service{svc}, t0.Add(5*time.Second))
	want.EndpointsV4 = []Endpoint{settling("a")}
	if diff := cmp.Diff([]Service{want}, got); diff != "" {
		t.Errorf("ObserveAll after the Service came back mismatch (-want +got):\n%s", diff)
	}
}
