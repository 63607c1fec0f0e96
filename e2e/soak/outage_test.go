package soak

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOutages(t *testing.T) {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// attempts returns one attempt every 10 ms from 0 to 3000 ms, failing in [from, to).
	attempts := func(from, to int) []Attempt {
		var as []Attempt
		for m := 0; m <= 3000; m += 10 {
			as = append(as, Attempt{Start: ms(m), OK: m < from || m >= to, Err: "timeout"})
		}
		return as
	}
	fault := []Window{{Start: ms(1000), End: ms(1000), What: "speaker killed on node1"}}
	const slack, bound = 200 * time.Millisecond, time.Second
	for _, tc := range []struct {
		name     string
		as       []Attempt
		windows  []Window
		want     []string
		isolated int
	}{
		{"no failure", attempts(0, 0), fault, nil, 0},
		{"within the bound", attempts(1000, 1900), fault, nil, 0},
		{"started just before the fault", attempts(850, 1500), fault, nil, 0},
		{"longer than the bound", attempts(1000, 2100), fault, []string{"7/outage/web"}, 0},
		{"no fault", attempts(1000, 1100), nil, []string{"7/outage/web"}, 0},
		{"one lost connection is no outage", attempts(1000, 1010), nil, nil, 1},
		{"one lost connection in a fault window", attempts(1000, 1010), fault, nil, 0},
		{"never recovers", attempts(2500, 9999), nil, []string{"7/outage/web"}, 0},
		{"a long window (link cut with the pod behind it)", attempts(1000, 2500),
			[]Window{{Start: ms(1000), End: ms(2000)}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, isolated := Outages("web", tc.as, tc.windows, slack, bound)
			got := kinds(vs)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Outages (-want +got):\n%s", diff)
			}
			if len(isolated) != tc.isolated {
				t.Errorf("isolated failures %v, want %d", isolated, tc.isolated)
			}
		})
	}
}

func TestPlanReplays(t *testing.T) {
	cfg := PlanConfig{Seed: 7, Nodes: []string{"node1", "node2", "node3"}, Faults: AllFaults}
	steps := func(cfg PlanConfig) []Step {
		p := NewPlan(cfg)
		var out []Step
		for range 500 {
			out = append(out, p.Next())
		}
		return out
	}
	addrs := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
	a, b := steps(cfg), steps(cfg)
	if diff := cmp.Diff(a, b, addrs); diff != "" {
		t.Fatalf("the same seed gave other steps (-first +second):\n%s", diff)
	}
	cfg.Seed = 8
	if cmp.Equal(a, steps(cfg), addrs) {
		t.Errorf("seeds 7 and 8 gave the same steps")
	}
	kinds := map[OpKind]int{}
	faults := 0
	live := map[string]bool{}
	for _, s := range a {
		kinds[s.Op.Kind]++
		if s.FaultStart != nil {
			faults++
		}
		switch s.Op.Kind {
		case OpCreate:
			live[s.Op.Service.Key()] = true
		case OpDelete:
			if !live[s.Op.Service.Key()] {
				t.Errorf("step %d deletes %s, which does not exist", s.Index, s.Op.Service.Key())
			}
			delete(live, s.Op.Service.Key())
		case OpEdit, OpEndpoints:
			if !live[s.Op.Service.Key()] {
				t.Errorf("step %d changes %s, which does not exist", s.Index, s.Op.Service.Key())
			}
		}
		if len(live) > 14 {
			t.Fatalf("step %d: %d live Services, want at most 14", s.Index, len(live))
		}
	}
	for _, k := range []OpKind{OpCreate, OpDelete, OpEdit, OpEndpoints, OpPool} {
		if kinds[k] == 0 {
			t.Errorf("500 steps made no %s operation: %v", k, kinds)
		}
	}
	if faults < 10 {
		t.Errorf("500 steps made %d faults, want at least 10", faults)
	}
}
