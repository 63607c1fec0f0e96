package heartbeat

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanOf(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	owners := map[netip.Addr]string{
		a("198.51.100.1"): "n1", a("198.51.100.2"): "n1", a("198.51.100.3"): "n2",
		a("198.51.100.4"): "n3", a("2001:db8::1"): "n3", a("198.51.100.5"): "", a("198.51.100.6"): "n2",
	}
	successors := map[netip.Addr]string{
		a("198.51.100.1"): "n2", a("198.51.100.2"): "n3", a("198.51.100.3"): "n1",
		a("198.51.100.4"): "", a("2001:db8::1"): "n1", a("198.51.100.5"): "", a("198.51.100.6"): "n1",
	}
	tests := []struct {
		self string
		want Plan
	}{
		{self: "n1", want: Plan{Send: []string{"n2", "n3"}, Watch: []string{"n2", "n3"}}},
		{self: "n2", want: Plan{Send: []string{"n1"}, Watch: []string{"n1"}}},
		{self: "n3", want: Plan{Send: []string{"n1"}, Watch: []string{"n1"}}},
		{self: "n4", want: Plan{Send: []string{}, Watch: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.self, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, PlanOf(tt.self, owners, successors)); diff != "" {
				t.Errorf("PlanOf(%s) (-want +got):\n%s", tt.self, diff)
			}
		})
	}
}

// BenchmarkPlanOf plans for one node of 100 with 10,000 layer-2 addresses,
// as the loop does after every reconcile.
func BenchmarkPlanOf(b *testing.B) {
	owners, successors := map[netip.Addr]string{}, map[netip.Addr]string{}
	a := netip.MustParseAddr("2001:db8::")
	for i := range 10000 {
		a = a.Next()
		owners[a] = fmt.Sprintf("node-%d", i%100)
		successors[a] = fmt.Sprintf("node-%d", (i*7+1)%100)
	}
	b.ReportAllocs()
	for b.Loop() {
		PlanOf("node-1", owners, successors)
	}
}
