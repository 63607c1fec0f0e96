package report

import (
	"testing"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestDistinctAddresses(t *testing.T) {
	entry := func(addr, svc string) v1alpha1.Layer2Announcement {
		return v1alpha1.Layer2Announcement{Address: addr, Service: svc}
	}
	tests := []struct {
		name string
		l2   []v1alpha1.Layer2Announcement
		want int
	}{
		{"none", nil, 0},
		{"one address", []v1alpha1.Layer2Announcement{entry("198.51.100.1", "a/x")}, 1},
		{"a shared address counts once", []v1alpha1.Layer2Announcement{
			entry("198.51.100.1", "a/x"), entry("198.51.100.1", "a/y"), entry("2001:db8::1", "a/x")}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DistinctAddresses(tt.l2); got != tt.want {
				t.Errorf("DistinctAddresses() = %d, want %d", got, tt.want)
			}
		})
	}
}
