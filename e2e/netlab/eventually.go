package netlab

import (
	"cmp"
	"context"
	"time"
)

// Eventually calls check every 100 ms until it returns nil, and fails t with check's
// last error when timeout passes first.
func Eventually(t T, timeout time.Duration, check func(ctx context.Context) error) {
	t.Helper()
	if err := Poll(t.Context(), timeout, 100*time.Millisecond, check); err != nil {
		t.Fatalf("after %v: %v", timeout, err)
	}
}

// Poll calls check every interval until it returns nil (Poll returns nil), or until
// timeout passes or ctx ends. It then returns check's last error that the end of
// the wait did not cut short (a Get cut short by the deadline says nothing about
// what was wrong), else its very last one. Each call gets a context that ends
// with Poll.
func Poll(ctx context.Context, timeout, interval time.Duration, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var telling error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil {
			telling = err
		}
		select {
		case <-ctx.Done():
			return cmp.Or(telling, err)
		case <-tick.C:
		}
	}
}
