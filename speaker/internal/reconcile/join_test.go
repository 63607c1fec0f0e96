package reconcile

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJoinBatches checks that every target lands in exactly one batch of
// at most the batch size, in the order the shuffle leaves them.
func TestJoinBatches(t *testing.T) {
	reverse := func(n int, swap func(i, j int)) {
		for i := range n / 2 {
			swap(i, n-1-i)
		}
	}
	names := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("n%d", i))
		}
		return out
	}
	tests := []struct {
		name    string
		targets []string
		want    [][]string
	}{
		{"none", nil, nil},
		{"fewer than a batch", names(3), [][]string{{"n2", "n1", "n0"}}},
		{"exactly a batch", names(4), [][]string{{"n3", "n2", "n1", "n0"}}},
		{"a batch and a rest", names(6), [][]string{{"n5", "n4", "n3", "n2"}, {"n1", "n0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.targets)
			got := joinBatches(tt.targets, 4, reverse)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !slices.Equal(before, tt.targets) {
				t.Errorf("targets modified: %v, want %v", tt.targets, before)
			}
		})
	}
}
