package report

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Health tells whether the speaker works, for /healthz and /readyz.
type Health struct {
	ready atomic.Bool
	// lastLoop is when the last reconcile ran, with its monotonic clock
	// reading, so that a step of the wall clock (NTP, a VM resumed) never
	// makes a working speaker look stuck and get restarted.
	lastLoop atomic.Pointer[time.Time]
	resync   atomic.Int64 // time.Duration
}

// MarkLoop records that a reconcile ran now.
func (h *Health) MarkLoop() {
	now := time.Now()
	h.lastLoop.Store(&now)
}

// Healthy returns an error when the reconcile loop has not run for three
// resync intervals, by the monotonic clock.
func (h *Health) Healthy() error {
	last, resync := h.lastLoop.Load(), time.Duration(h.resync.Load())
	if last != nil && resync > 0 && time.Since(*last) > 3*resync {
		return fmt.Errorf("report: no reconcile since %v", last.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// MarkReady records that the first desired state was applied.
func (h *Health) MarkReady() { h.ready.Store(true) }

// SetResync sets the resync interval Healthy judges the loop by.
func (h *Health) SetResync(d time.Duration) { h.resync.Store(int64(d)) }

// Ready returns an error until the first desired state was applied.
func (h *Health) Ready() error {
	if !h.ready.Load() {
		return errors.New("report: desired state not applied yet")
	}
	return nil
}
