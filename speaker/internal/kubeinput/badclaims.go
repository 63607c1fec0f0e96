package kubeinput

import (
	"log/slog"
	"sync"

	"k8s.io/client-go/tools/cache"
)

// BadClaims reports the AddressClaims that fail config.ClaimOf (the
// cache keeps its verdict: CachedClaim.Err). The speaker ignores such a
// claim (Caches.holds reads it as none, so its address is not announced);
// BadClaims logs each once per name and resourceVersion,
// so that a relist does not log it again, and counts those currently in
// the cache for the herald_speaker_invalid_address_claims gauge. Its
// methods are the claims informer's handlers; they are safe for
// concurrent use.
type BadClaims struct {
	log *slog.Logger

	mu      sync.Mutex
	invalid map[string]string // claim name -> resourceVersion logged
}

func NewBadClaims(log *slog.Logger) *BadClaims {
	return &BadClaims{log: log, invalid: map[string]string{}}
}

// Observe checks a claim added or updated in the cache.
func (b *BadClaims) Observe(obj any) {
	c, ok := obj.(*CachedClaim)
	if !ok {
		return
	}
	err := c.Err
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.invalid, c.Name)
		return
	}
	if rv, seen := b.invalid[c.Name]; seen && rv == c.ResourceVersion {
		return
	}
	b.invalid[c.Name] = c.ResourceVersion
	b.log.Warn("ignoring an invalid AddressClaim: its address is not announced", "claim", c.Name, "err", err)
}

// Forget drops a claim deleted from the cache.
func (b *BadClaims) Forget(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if c, ok := obj.(*CachedClaim); ok {
		b.mu.Lock()
		delete(b.invalid, c.Name)
		b.mu.Unlock()
	}
}

// Count returns how many claims in the cache are invalid.
func (b *BadClaims) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.invalid)
}
