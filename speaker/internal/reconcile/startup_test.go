package reconcile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNamesForLog: the start-up log lines list at most maxLoggedNames
// missing speakers, then how many more.
func TestNamesForLog(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  []string
	}{
		{"none", nil, nil},
		{"a few", []string{"n1", "n2"}, []string{"n1", "n2"}},
		{"exactly the cap", []string{"n1", "n2", "n3", "n4", "n5"}, []string{"n1", "n2", "n3", "n4", "n5"}},
		{"more", []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7"}, []string{"n1", "n2", "n3", "n4", "n5", "and 2 more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, namesForLog(tt.names)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
