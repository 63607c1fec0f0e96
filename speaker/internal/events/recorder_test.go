package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeSink is an API server's events: it records the requests, keeps the
// Events, and can fail or hold requests.
type fakeSink struct {
	mu       sync.Mutex
	requests []string
	events   map[string]*corev1.Event // namespace/name
	errs     []error                  // returned by the next requests, in turn
	// expire makes every Event expire before it is patched.
	expire bool
	// entered, when set, receives each request before it is served, and
	// the request then waits for release (or its context).
	entered chan string
	release chan struct{}
}

func newFakeSink() *fakeSink { return &fakeSink{events: map[string]*corev1.Event{}} }

func (f *fakeSink) begin(ctx context.Context, req string) error {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- req
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	return nil
}

var eventsResource = schema.GroupResource{Resource: "events"}

func (f *fakeSink) Create(ctx context.Context, e *corev1.Event) (*corev1.Event, error) {
	if err := f.begin(ctx, "POST "+e.Namespace); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := e.DeepCopy()
	if out.Name == "" {
		out.Name = fmt.Sprintf("%sgen%d", out.GenerateName, len(f.events))
	}
	if _, ok := f.events[out.Namespace+"/"+out.Name]; ok {
		return nil, apierrors.NewAlreadyExists(eventsResource, out.Name)
	}
	f.events[out.Namespace+"/"+out.Name] = out
	return out.DeepCopy(), nil
}

func (f *fakeSink) Patch(ctx context.Context, namespace, name string, patch []byte) (*corev1.Event, error) {
	if err := f.begin(ctx, "PATCH "+namespace+"/"+name+" "+string(patch)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.expire {
		delete(f.events, namespace+"/"+name)
	}
	e, ok := f.events[namespace+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(eventsResource, name)
	}
	if err := json.Unmarshal(patch, e); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return e.DeepCopy(), nil
}

// stored returns the stored Events as "namespace/name reason message xcount".
func (f *fakeSink) stored() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, e := range f.events {
		out[k] = fmt.Sprintf("%s %s x%d", e.Reason, e.Message, e.Count)
	}
	return out
}

func (f *fakeSink) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// drops counts the dropped events by reason.
type drops struct {
	mu sync.Mutex
	n  map[DropReason]int
}

func (d *drops) add(r DropReason) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[DropReason]int{}
	}
	d.n[r]++
}

func (d *drops) get() map[DropReason]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// clock returns a clock that starts at t0 and moves one second per read.
func clock() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

func start(sink Sink, d *drops, change func(*Config)) *Recorder {
	cfg := Config{Source: source, Now: clock(), Dropped: d.add, RetryDelay: time.Nanosecond, Log: slog.New(slog.DiscardHandler)}
	if change != nil {
		change(&cfg)
	}
	return Start(sink, cfg)
}

// TestRecorderCreatesAndBumps: repeats bump the Event with a merge patch,
// the other events are Events of their own, a cluster-scoped object's in
// the default namespace; Close writes what is queued.
func TestRecorderCreatesAndBumps(t *testing.T) {
	sink, d := newFakeSink(), &drops{}
	r := start(sink, d, nil)
	r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
	r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
	r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
	r.Event(tor, corev1.EventTypeWarning, "BGPSessionFailed", "node1: refused")
	r.Close(context.Background())
	// The clock moves a second per event: web's Event is named at the
	// first, tor's at the fourth.
	webName, torName := fmt.Sprintf("web.%x", t0.Add(time.Second).UnixNano()), fmt.Sprintf("tor.%x", t0.Add(4*time.Second).UnixNano())
	wantRequests := []string{
		"POST shop",
		`PATCH shop/` + webName + ` {"count":2,"lastTimestamp":"2026-12-07T06:00:02Z"}`,
		`PATCH shop/` + webName + ` {"count":3,"lastTimestamp":"2026-12-07T06:00:03Z"}`,
		"POST default",
	}
	if diff := cmp.Diff(wantRequests, sink.seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	wantStored := map[string]string{
		"shop/" + webName:    "Announcing taken x3",
		"default/" + torName: "BGPSessionFailed node1: refused x1",
	}
	if diff := cmp.Diff(wantStored, sink.stored()); diff != "" {
		t.Errorf("stored Events (-want +got):\n%s", diff)
	}
	if got := d.get(); len(got) != 0 {
		t.Errorf("dropped %v, want none", got)
	}
}

// TestRecorderRecreatesALostEvent: when the API server no longer has the
// Event a repeat would bump (its time to live passed), the repeat creates
// it again, with the count so far.
func TestRecorderRecreatesALostEvent(t *testing.T) {
	sink, d := newFakeSink(), &drops{}
	sink.expire = true
	r := start(sink, d, nil)
	r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
	r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
	r.Close(context.Background())
	webName := fmt.Sprintf("web.%x", t0.Add(time.Second).UnixNano())
	want := map[string]string{"shop/" + webName: "Announcing taken x2"}
	if diff := cmp.Diff(want, sink.stored()); diff != "" {
		t.Errorf("stored Events (-want +got):\n%s", diff)
	}
	if got := sink.seen(); len(got) != 3 || got[2] != "POST shop" {
		t.Errorf("requests %q, want POST, PATCH (not found), POST", got)
	}
}

// TestRecorderLimitsEachObject: past the burst, an object's events are
// dropped and counted; another object's are written.
func TestRecorderLimitsEachObject(t *testing.T) {
	sink, d := newFakeSink(), &drops{}
	r := start(sink, d, func(c *Config) { c.Limits = Limits{Burst: 2} })
	for range 4 {
		r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
	}
	r.Event(api, corev1.EventTypeNormal, "Announcing", "taken")
	r.Close(context.Background())
	if diff := cmp.Diff(map[DropReason]int{DropRateLimited: 2}, d.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if got := len(sink.seen()); got != 3 {
		t.Errorf("%d requests, want 3 (web: POST and PATCH, api: POST)", got)
	}
}

// TestRecorderDropsWhenTheQueueIsFull: Event never blocks; with the
// writer held by a slow API server and the queue full, events are dropped
// and counted.
func TestRecorderDropsWhenTheQueueIsFull(t *testing.T) {
	sink, d := newFakeSink(), &drops{}
	sink.entered, sink.release = make(chan string), make(chan struct{})
	r := start(sink, d, func(c *Config) { c.QueueSize = 1 })
	r.Event(web, corev1.EventTypeNormal, "Announcing", "one")
	<-sink.entered // the writer holds "one"
	r.Event(web, corev1.EventTypeNormal, "Announcing", "two")
	r.Event(web, corev1.EventTypeNormal, "Announcing", "three")
	if diff := cmp.Diff(map[DropReason]int{DropQueueFull: 1}, d.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	close(sink.release)
	go func() {
		for range sink.entered {
		}
	}()
	r.Close(context.Background())
	close(sink.entered)
	if got := len(sink.stored()); got != 2 {
		t.Errorf("%d Events stored, want 2 (one, two)", got)
	}
}

// TestRecorderRetries: a write that reached no answer is tried again up
// to MaxAttempts; one the API server refused is not.
func TestRecorderRetries(t *testing.T) {
	transport := errors.New("connection refused")
	forbidden := apierrors.NewForbidden(eventsResource, "", errors.New("no"))
	tests := []struct {
		name         string
		errs         []error
		wantRequests int
		wantDrops    map[DropReason]int
	}{
		{"a transport error, then success", []error{transport}, 2, nil},
		{"transport errors MaxAttempts times", []error{transport, transport, transport}, 3, map[DropReason]int{DropWriteFailed: 1}},
		{"refused", []error{forbidden}, 1, map[DropReason]int{DropWriteFailed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink, d := newFakeSink(), &drops{}
			sink.errs = tt.errs
			r := start(sink, d, nil)
			r.Event(web, corev1.EventTypeNormal, "Announcing", "taken")
			r.Close(context.Background())
			if got := len(sink.seen()); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			if diff := cmp.Diff(tt.wantDrops, d.get()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecorderCloseGivesUpAtItsDeadline: Close cancels the write under
// way when its context is done, drops the queued events, and drops the
// events that come after it.
func TestRecorderCloseGivesUpAtItsDeadline(t *testing.T) {
	sink, d := newFakeSink(), &drops{}
	sink.entered, sink.release = make(chan string, 4), make(chan struct{})
	r := start(sink, d, nil)
	r.Event(web, corev1.EventTypeNormal, "Announcing", "one")
	<-sink.entered
	r.Event(web, corev1.EventTypeNormal, "Announcing", "two")
	r.Event(api, corev1.EventTypeNormal, "Announcing", "three")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Close(ctx)
	r.Event(web, corev1.EventTypeNormal, "Announcing", "four")
	r.Close(context.Background())
	if diff := cmp.Diff(map[DropReason]int{DropShutdown: 4}, d.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if got := sink.stored(); len(got) != 0 {
		t.Errorf("stored %v, want nothing", got)
	}
}

// TestRecorderIgnoresUnknownTypes: only Normal and Warning events are
// recorded, as client-go's recorder does.
func TestRecorderIgnoresUnknownTypes(t *testing.T) {
	sink, d := newFakeSink(), &drops{}
	r := start(sink, d, nil)
	r.Event(web, "Info", "Announcing", "taken")
	r.Close(context.Background())
	if got := sink.seen(); len(got) != 0 {
		t.Errorf("requests %q, want none", got)
	}
}
