package report

import (
	"strings"
	"testing"
	"time"
)

// TestHealthUsesTheMonotonicClock: the liveness check measures the time
// since the last reconcile by the monotonic clock (a time.Time that keeps
// its "m=" reading), so a step of the wall clock cannot fail it.
func TestHealthUsesTheMonotonicClock(t *testing.T) {
	var h Health
	h.resync.Store(int64(time.Second))
	if err := h.Healthy(); err != nil {
		t.Fatalf("before any reconcile: %v", err)
	}
	h.MarkLoop()
	last := h.lastLoop.Load()
	if last == nil || !strings.Contains(last.String(), " m=") {
		t.Fatalf("the last reconcile's time %v has no monotonic reading", last)
	}
	if err := h.Healthy(); err != nil {
		t.Fatalf("just after a reconcile: %v", err)
	}
	stale := time.Now().Add(-4 * time.Second)
	h.lastLoop.Store(&stale)
	if err := h.Healthy(); err == nil {
		t.Fatal("no reconcile for four resync intervals, yet healthy")
	}
}
