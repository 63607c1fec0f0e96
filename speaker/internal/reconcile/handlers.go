package reconcile

import (
	"fmt"
	"maps"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/report"
)

// Changes is what the informers' event handlers tell the loop. The
// handlers run on the informers' goroutines: they only mark what changed
// (the Services whose summaries must be rebuilt, the configuration) and
// poke the loop, which reads the caches itself (level-triggered). It is
// made, and its handlers registered, before the informers start, which is
// before the loop exists.
type Changes struct {
	self      string
	trigger   chan struct{}
	sums      *kubeinput.Summaries
	badClaims *kubeinput.BadClaims
	// configDirty makes the next reconcile rebuild the configuration model.
	configDirty atomic.Bool
	// status is the status writer, once the loop has one: this node's
	// SpeakerStatus changing makes it compare the record with what it wrote.
	status atomic.Pointer[report.StatusWriter]
}

// NewChanges returns the changes of node self's speaker. sums keeps the
// Service summaries; badClaims reports the invalid AddressClaims.
func NewChanges(self string, sums *kubeinput.Summaries, badClaims *kubeinput.BadClaims) *Changes {
	c := &Changes{self: self, trigger: make(chan struct{}, 1), sums: sums, badClaims: badClaims}
	c.configDirty.Store(true)
	return c
}

// Poke asks the loop to reconcile. It never blocks: a pending request
// covers any number of changes (level-triggered).
func (c *Changes) Poke() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Register adds the handlers to the informers of in.
func (c *Changes) Register(in *kubeinput.Informers) error {
	changed := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.Poke() },
		UpdateFunc: func(any, any) { c.Poke() },
		DeleteFunc: func(any) { c.Poke() },
	}
	configChanged := c.configHandler()
	// Services and EndpointSlices also mark their Service dirty, so the
	// reconcile rebuilds only the summaries of the Services that changed.
	serviceChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.sums.MarkService(o); c.Poke() },
		UpdateFunc: func(_, o any) { c.sums.MarkService(o); c.Poke() },
		DeleteFunc: func(o any) { c.sums.MarkService(o); c.Poke() },
	}
	sliceChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.sums.SliceChanged(nil, o); c.Poke() },
		UpdateFunc: func(old, o any) { c.sums.SliceChanged(old, o); c.Poke() },
		DeleteFunc: func(o any) { c.sums.SliceChanged(o, nil); c.Poke() },
	}
	// A claim marks the Services it lists (before and after an update)
	// dirty: they are the only ones whose addresses it decides.
	claimChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.badClaims.Observe(o); c.sums.MarkClaim(o); c.Poke() },
		UpdateFunc: func(old, o any) { c.badClaims.Observe(o); c.sums.MarkClaim(old); c.sums.MarkClaim(o); c.Poke() },
		DeleteFunc: func(o any) { c.badClaims.Forget(o); c.sums.MarkClaim(o); c.Poke() },
	}
	own := func(obj any) {
		if o, ok := obj.(interface{ GetName() string }); ok && o.GetName() == c.self {
			if w := c.status.Load(); w != nil {
				w.Recheck()
			}
		}
	}
	statusChanged := cache.ResourceEventHandlerFuncs{AddFunc: own, UpdateFunc: func(_, n any) { own(n) }, DeleteFunc: own}

	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{in.ServiceInformer, serviceChanged}, {in.SliceInformer, sliceChanged}, {in.NodeInformer, changed},
		{in.ClaimInformer, claimChanged}, {in.StatusInformer, statusChanged},
	}
	for _, inf := range in.ConfigInformers {
		handlers = append(handlers, struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{inf, configChanged})
	}
	for _, w := range handlers {
		if _, err := w.inf.AddEventHandler(w.h); err != nil {
			return fmt.Errorf("reconcile: watch: %w", err)
		}
	}
	if in.SecretCache != nil {
		in.SecretCache.AddEventHandler(configChanged)
	}
	return nil
}

// configHandler is the handler of the configuration model's inputs.
func (c *Changes) configHandler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.configChanged() },
		UpdateFunc: func(old, o any) {
			if modelInputChanged(old, o) {
				c.configChanged()
			}
		},
		DeleteFunc: func(any) { c.configChanged() },
	}
}

// modelInputChanged reports whether an update may change what
// config.Build reads of the object: its spec (metadata.generation, for
// the kinds that have one), its labels (IPPool selectors) or its deletion.
// The controller writes an IPPool's usage to its status every 500 ms
// during churn; without this, each write rebuilt the model and made every
// node recompute every address. Secrets have no generation: any change
// counts.
func modelInputChanged(old, o any) bool {
	a, errA := meta.Accessor(old)
	b, errB := meta.Accessor(o)
	if errA != nil || errB != nil || b.GetGeneration() == 0 {
		return true
	}
	return a.GetGeneration() != b.GetGeneration() || !maps.Equal(a.GetLabels(), b.GetLabels()) ||
		(a.GetDeletionTimestamp() == nil) != (b.GetDeletionTimestamp() == nil)
}

func (c *Changes) configChanged() {
	c.configDirty.Store(true)
	c.Poke()
}
