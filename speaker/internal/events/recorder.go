package events

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sink writes Events: the speaker's API client (kubeclient.EventWriter).
type Sink interface {
	// Create creates e in its namespace.
	Create(ctx context.Context, e *corev1.Event) (*corev1.Event, error)
	// Patch applies a JSON merge patch to the Event namespace/name.
	Patch(ctx context.Context, namespace, name string, mergePatch []byte) (*corev1.Event, error)
}

// DropReason says why an event was not written; it is the reason label of
// herald_speaker_events_dropped_total.
type DropReason string

const (
	// DropQueueFull: the queue was full (the API server is slow or
	// unreachable, or events come faster than it takes them).
	DropQueueFull DropReason = "queue_full"
	// DropRateLimited: the object's bucket was empty (Limits).
	DropRateLimited DropReason = "rate_limited"
	// DropWriteFailed: the API server refused the Event, or did not
	// answer MaxAttempts times.
	DropWriteFailed DropReason = "write_failed"
	// DropShutdown: the recorder was closed before the event was written.
	DropShutdown DropReason = "shutdown"
)

// DropReasons are the reasons an event is dropped for.
var DropReasons = []DropReason{DropQueueFull, DropRateLimited, DropWriteFailed, DropShutdown}

// Config configures a Recorder. Zero values take the defaults shown.
type Config struct {
	// Source is every Event's source: the component and the node.
	Source corev1.EventSource
	// QueueSize is how many events may wait to be written (1000, as
	// client-go's broadcaster).
	QueueSize int
	// Limits bound the Events about one object (see Limits).
	Limits Limits
	// MaxAttempts is how many times a write that reached no answer from
	// the API server is tried (3), RetryDelay the wait before the second
	// attempt (1 s), doubled for each next one, and RequestTimeout the
	// deadline of each attempt (10 s). A write the API server refused is
	// not tried again.
	MaxAttempts    int
	RetryDelay     time.Duration
	RequestTimeout time.Duration
	// Now is the clock of the Events' timestamps (time.Now).
	Now func() time.Time
	// Dropped, when set, is called for each event not written, from the
	// goroutine that dropped it.
	Dropped func(DropReason)
	// Log receives the failed writes (slog.Default()).
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.QueueSize <= 0 {
		c.QueueSize = 1000
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dropped == nil {
		c.Dropped = func(DropReason) {}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Recorder records Events: Event queues one, and one goroutine (started
// by Start, stopped by Close) decides (Correlator) and writes them.
type Recorder struct {
	cfg   Config
	sink  Sink
	queue chan *corev1.Event

	// ctx is the writes' context, canceled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex
	closed   bool          // no more events are queued
	stopping chan struct{} // closed by Close
	full     atomic.Bool   // the last event was dropped for a full queue
	done     chan struct{} // closed when the writer returns

	corr *Correlator // owned by the writer goroutine
}

// Start returns a Recorder writing to sink, with its writer goroutine
// started; Close stops it.
func Start(sink Sink, cfg Config) *Recorder {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{
		cfg: cfg, sink: sink, queue: make(chan *corev1.Event, cfg.QueueSize),
		ctx: ctx, cancel: cancel,
		stopping: make(chan struct{}), done: make(chan struct{}),
		corr: NewCorrelator(cfg.Limits),
	}
	go r.run()
	return r
}

// Event queues an Event of type eventType (corev1.EventTypeNormal or
// EventTypeWarning) about the object ref. It never blocks: when the queue
// is full, or the recorder is closed, the event is dropped and counted.
func (r *Recorder) Event(ref corev1.ObjectReference, eventType, reason, message string) {
	if eventType != corev1.EventTypeNormal && eventType != corev1.EventTypeWarning {
		r.cfg.Log.Error("event of an unknown type not recorded", "type", eventType, "reason", reason, "kind", ref.Kind, "name", ref.Name)
		return
	}
	e := NewEvent(r.cfg.Source, ref, eventType, reason, message, r.cfg.Now())
	r.mu.RLock()
	closed := r.closed
	queued := false
	if !closed {
		select {
		case r.queue <- e:
			queued = true
		default:
		}
	}
	r.mu.RUnlock()
	switch {
	case closed:
		r.cfg.Dropped(DropShutdown)
	case !queued:
		r.cfg.Dropped(DropQueueFull)
		r.noteFull(true, e)
	default:
		r.noteFull(false, e)
	}
}

// noteFull logs when the queue starts dropping events, once until it
// takes one again.
func (r *Recorder) noteFull(full bool, e *corev1.Event) {
	if r.full.Swap(full) != full && full {
		r.cfg.Log.Warn("event queue full: dropping events until the API server takes them", "queued", r.cfg.QueueSize, "reason", e.Reason)
	}
}

// Close stops taking events and writes the queued ones until ctx is done;
// it then cancels the write under way and drops what is left. It returns
// when the writer goroutine has returned. Calling it again does nothing.
func (r *Recorder) Close(ctx context.Context) {
	r.mu.Lock()
	already := r.closed
	r.closed = true
	r.mu.Unlock()
	if !already {
		close(r.stopping)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel()
		<-r.done
	}
	r.cancel()
}

// run writes the queued events until Close, then the ones left.
func (r *Recorder) run() {
	defer close(r.done)
	for {
		select {
		case e := <-r.queue:
			r.write(e)
		case <-r.stopping:
			for {
				select {
				case e := <-r.queue:
					r.write(e)
				default:
					return
				}
			}
		}
	}
}

// write decides what to do with e and does it.
func (r *Recorder) write(e *corev1.Event) {
	if r.ctx.Err() != nil {
		r.cfg.Dropped(DropShutdown)
		return
	}
	d := r.corr.Decide(e)
	if d.Action == Limit {
		r.cfg.Log.Debug("event not recorded: too many about the object", "kind", e.InvolvedObject.Kind,
			"namespace", e.InvolvedObject.Namespace, "name", e.InvolvedObject.Name, "reason", e.Reason)
		r.cfg.Dropped(DropRateLimited)
		return
	}
	delay := r.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		name, err := r.send(d)
		if err == nil {
			if d.Event.Name == "" {
				d.Event.Name = name
			}
			r.corr.Written(d.Event)
			return
		}
		if r.ctx.Err() != nil {
			r.cfg.Dropped(DropShutdown)
			return
		}
		var status apierrors.APIStatus
		if errors.As(err, &status) || attempt >= r.cfg.MaxAttempts {
			r.cfg.Log.Warn("event not recorded", "err", err, "kind", e.InvolvedObject.Kind, "namespace", e.InvolvedObject.Namespace,
				"name", e.InvolvedObject.Name, "reason", e.Reason, "attempts", attempt)
			r.cfg.Dropped(DropWriteFailed)
			return
		}
		select {
		case <-time.After(delay):
		case <-r.ctx.Done():
			r.cfg.Dropped(DropShutdown)
			return
		}
		delay *= 2
	}
}

// send writes d's Event and returns the name it has: a Create creates
// it, a Bump patches it, or creates it again when the API server no
// longer has it (its time to live passed).
func (r *Recorder) send(d Decision) (string, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
	defer cancel()
	if d.Action == Bump {
		_, err := r.sink.Patch(ctx, d.Event.Namespace, d.Event.Name, bumpPatch(d.Event))
		if !apierrors.IsNotFound(err) {
			return d.Event.Name, err
		}
	}
	d.Event.ResourceVersion = ""
	got, err := r.sink.Create(ctx, d.Event)
	if err != nil || got == nil {
		return d.Event.Name, err
	}
	return got.Name, nil
}

// bumpPatch returns the merge patch that bumps an Event to e's count and
// last timestamp.
func bumpPatch(e *corev1.Event) []byte {
	b, _ := json.Marshal(struct {
		Count         int32       `json:"count"`
		LastTimestamp metav1.Time `json:"lastTimestamp"`
	}{e.Count, e.LastTimestamp})
	return b
}
