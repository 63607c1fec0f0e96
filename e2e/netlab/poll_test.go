package netlab

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPollReportsTheTellingError checks that Poll returns the last error of
// a check the deadline did not cut short, not the deadline's own.
func TestPollReportsTheTellingError(t *testing.T) {
	wrong := errors.New("route via 198.51.100.11, want 198.51.100.12")
	err := Poll(context.Background(), 50*time.Millisecond, 10*time.Millisecond, func(ctx context.Context) error {
		if deadline, _ := ctx.Deadline(); time.Until(deadline) < 15*time.Millisecond {
			<-ctx.Done()
			return ctx.Err()
		}
		return wrong
	})
	if !errors.Is(err, wrong) {
		t.Errorf("Poll() = %v, want %v", err, wrong)
	}
	// Only cut-short errors: the last one.
	err = Poll(context.Background(), 20*time.Millisecond, 5*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Poll() = %v, want the deadline", err)
	}
}
