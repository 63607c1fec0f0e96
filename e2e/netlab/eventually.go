package netlab

import (
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
// timeout passes or ctx ends (Poll returns check's last error). Each call gets a
// context that ends with Poll.
func Poll(ctx context.Context, timeout, interval time.Duration, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}
