package events

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Limits bound the Events written about one object. Zero fields take the
// defaults shown.
type Limits struct {
	// Burst is how many events about one object and of one type may be
	// written at once (25), and Refill how long it takes for one more to
	// be allowed (5 minutes): client-go's spam filter defaults.
	Burst  int
	Refill time.Duration
	// Window is how long after its last write an Event is bumped by a
	// repeat rather than created again (1 hour, the API server's default
	// --event-ttl: an Event older than that is usually gone).
	Window time.Duration
	// Entries is how many objects' buckets, and how many written Events,
	// are remembered (1024 each); the least recently used are forgotten,
	// which refills an object's bucket or makes its next repeat a new
	// Event.
	Entries int
}

func (l Limits) withDefaults() Limits {
	if l.Burst <= 0 {
		l.Burst = 25
	}
	if l.Refill <= 0 {
		l.Refill = 5 * time.Minute
	}
	if l.Window <= 0 {
		l.Window = time.Hour
	}
	if l.Entries <= 0 {
		l.Entries = 1024
	}
	return l
}

// objectKey is the unit of the rate limit: an object and an event type
// (client-go's spam key, the source being the same for every event).
type objectKey struct {
	kind, namespace, name, uid, apiVersion, eventType string
}

// eventKey identifies the repeats of an event (client-go's event key).
type eventKey struct {
	object                     objectKey
	fieldPath, reason, message string
}

func keysOf(e *corev1.Event) (objectKey, eventKey) {
	o := e.InvolvedObject
	ok := objectKey{kind: o.Kind, namespace: o.Namespace, name: o.Name, uid: string(o.UID), apiVersion: o.APIVersion, eventType: e.Type}
	return ok, eventKey{object: ok, fieldPath: o.FieldPath, reason: e.Reason, message: e.Message}
}

// bucket is an object's token bucket: tokens at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

// writtenEvent is what the correlator remembers of an Event it wrote.
type writtenEvent struct {
	namespace, name string
	count           int32
	first, last     metav1.Time
}

// Action is what to do with an event.
type Action int

const (
	// Create writes a new Event.
	Create Action = iota
	// Bump patches the count and lastTimestamp of the Event written
	// before (Decision.Event carries its name, first timestamp and new
	// count).
	Bump
	// Limit drops the event: its object's bucket is empty.
	Limit
)

func (a Action) String() string {
	switch a {
	case Create:
		return "Create"
	case Bump:
		return "Bump"
	case Limit:
		return "Limit"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is what the Correlator decided for an event.
type Decision struct {
	Action Action
	// Event is the Event to create or to bump to (a copy; nil for Limit).
	Event *corev1.Event
}

// Correlator decides, for each event in turn, whether to create an Event,
// bump one written before, or drop it (Limits). It is pure: the time is
// the event's lastTimestamp. It is not safe for concurrent use: the
// recorder's writer goroutine owns it.
type Correlator struct {
	limits  Limits
	buckets *lru[objectKey, bucket]
	written *lru[eventKey, writtenEvent]
}

// NewCorrelator returns a Correlator with limits (zero fields take the
// defaults).
func NewCorrelator(limits Limits) *Correlator {
	limits = limits.withDefaults()
	return &Correlator{limits: limits, buckets: newLRU[objectKey, bucket](limits.Entries), written: newLRU[eventKey, writtenEvent](limits.Entries)}
}

// Decide takes a token from e's object and returns what to write: e
// itself (Create), the Event written before with its count one higher
// (Bump), or nothing (Limit). Cost: O(1).
func (c *Correlator) Decide(e *corev1.Event) Decision {
	objKey, evKey := keysOf(e)
	now := e.LastTimestamp.Time
	if !c.take(objKey, now) {
		return Decision{Action: Limit}
	}
	out := e.DeepCopy()
	w, ok := c.written.Get(evKey)
	if !ok || now.Sub(w.last.Time) > c.limits.Window {
		return Decision{Action: Create, Event: out}
	}
	out.Namespace, out.Name, out.GenerateName = w.namespace, w.name, ""
	out.Count = w.count + 1
	out.FirstTimestamp = w.first
	return Decision{Action: Bump, Event: out}
}

// take takes a token from key's bucket at now, and reports whether there
// was one. A clock stepping back refills nothing.
func (c *Correlator) take(key objectKey, now time.Time) bool {
	b, ok := c.buckets.Get(key)
	if !ok {
		b = bucket{tokens: float64(c.limits.Burst), at: now}
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(c.limits.Burst), b.tokens+float64(elapsed)/float64(c.limits.Refill))
		b.at = now
	}
	if b.tokens < 1 {
		c.buckets.Put(key, b)
		return false
	}
	b.tokens--
	c.buckets.Put(key, b)
	return true
}

// Written records that e (a Decision's Event, with the name the API
// server gave it) was written: its next repeat within the window bumps it.
func (c *Correlator) Written(e *corev1.Event) {
	_, evKey := keysOf(e)
	c.written.Put(evKey, writtenEvent{namespace: e.Namespace, name: e.Name, count: e.Count, first: e.FirstTimestamp, last: e.LastTimestamp})
}

// generatedNamePrefix names the Events whose object's name would make an
// invalid Event name: the API server appends a random suffix.
const generatedNamePrefix = "herald-speaker."

// NewEvent returns the Event of source about ref at now, named as
// client-go names them (the object's name, a dot and the time in hex
// nanoseconds), in the object's namespace ("default" for a cluster-scoped
// object, as client-go does).
func NewEvent(source corev1.EventSource, ref corev1.ObjectReference, eventType, reason, message string, now time.Time) *corev1.Event {
	t := metav1.NewTime(now)
	e := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ref.Namespace},
		InvolvedObject: ref,
		Reason:         reason, Message: message, Type: eventType,
		FirstTimestamp: t, LastTimestamp: t, Count: 1,
		Source:              source,
		ReportingController: source.Component, ReportingInstance: source.Host,
	}
	if e.Namespace == "" {
		e.Namespace = metav1.NamespaceDefault
	}
	name := fmt.Sprintf("%s.%x", ref.Name, now.UnixNano())
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		e.GenerateName = generatedNamePrefix
	} else {
		e.Name = name
	}
	return e
}
