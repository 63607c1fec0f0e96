package events

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	source = corev1.EventSource{Component: "herald-speaker", Host: "node1"}
	t0     = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	web    = corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: "shop", Name: "web", UID: "u-web"}
	api    = corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: "shop", Name: "api", UID: "u-api"}
	tor    = corev1.ObjectReference{Kind: "BGPPeer", APIVersion: "herald.dev/v1alpha1", Name: "tor", UID: "u-tor"}
)

// TestCorrelatorSteps drives one Correlator through a sequence of events,
// each written when the decision is to write it: repeats bump the Event
// written before, other messages, objects and types are Events of their
// own, and each object and type has a bucket of Burst tokens refilled one
// per Refill.
func TestCorrelatorSteps(t *testing.T) {
	c := NewCorrelator(Limits{Burst: 3, Refill: time.Minute, Window: 10 * time.Minute, Entries: 16})
	type step struct {
		name      string
		at        time.Duration
		ref       corev1.ObjectReference
		eventType string
		message   string
		want      Action
		wantCount int32
		wantFirst time.Duration // of a bump
	}
	normal, warning := corev1.EventTypeNormal, corev1.EventTypeWarning
	steps := []step{
		{"first event creates", 0, web, normal, "taken", Create, 1, 0},
		{"its repeat bumps it", time.Second, web, normal, "taken", Bump, 2, 0},
		{"another message creates", 2 * time.Second, web, normal, "withdrawn", Create, 1, 0},
		{"the bucket of web's Normal events is empty", 3 * time.Second, web, normal, "taken", Limit, 0, 0},
		{"another object has its own bucket", 3 * time.Second, api, normal, "taken", Create, 1, 0},
		{"another type has its own bucket", 3 * time.Second, web, warning, "taken", Create, 1, 0},
		{"a refill lets one more through, bumping", time.Minute + 2*time.Second, web, normal, "taken", Bump, 3, 0},
		{"and only one", time.Minute + 3*time.Second, web, normal, "taken", Limit, 0, 0},
		{"a clock stepping back refills nothing", time.Second, web, normal, "taken", Limit, 0, 0},
		{"after the window the repeat creates anew", time.Hour, web, normal, "taken", Create, 1, 0},
		{"the bucket refilled to Burst only (2)", time.Hour, web, normal, "taken", Bump, 2, time.Hour},
		{"the bucket refilled to Burst only (3)", time.Hour, web, normal, "taken", Bump, 3, time.Hour},
		{"the bucket refilled to Burst only (empty)", time.Hour, web, normal, "taken", Limit, 0, 0},
		{"a cluster-scoped object is correlated too", time.Hour, tor, warning, "failed", Create, 1, 0},
		{"its repeat bumps it", time.Hour + time.Second, tor, warning, "failed", Bump, 2, time.Hour},
	}
	created := map[string]string{} // object/type/message -> the name of its Event
	for _, s := range steps {
		e := NewEvent(source, s.ref, s.eventType, "Reason", s.message, t0.Add(s.at))
		d := c.Decide(e)
		if d.Action != s.want {
			t.Fatalf("%s: action %v, want %v", s.name, d.Action, s.want)
		}
		if s.want == Limit {
			if d.Event != nil {
				t.Errorf("%s: a dropped event carries %v", s.name, d.Event)
			}
			continue
		}
		if d.Event.Count != s.wantCount || !d.Event.LastTimestamp.Time.Equal(t0.Add(s.at)) {
			t.Errorf("%s: count %d, last %v; want %d, %v", s.name, d.Event.Count, d.Event.LastTimestamp, s.wantCount, t0.Add(s.at))
		}
		if s.want == Bump && !d.Event.FirstTimestamp.Time.Equal(t0.Add(s.wantFirst)) {
			t.Errorf("%s: first timestamp %v, want %v", s.name, d.Event.FirstTimestamp, t0.Add(s.wantFirst))
		}
		key := s.ref.Name + "/" + s.eventType + "/" + s.message
		if s.want == Create {
			created[key] = d.Event.Name
		}
		if s.want == Bump && d.Event.Name != created[key] {
			t.Errorf("%s: bumps %s, want the Event created before, %s", s.name, d.Event.Name, created[key])
		}
		c.Written(d.Event)
	}
}

// TestCorrelatorForgetsTheLeastRecentlyUsed: with room for two Events, a
// third makes the least recently used (api) forgotten, so its repeat
// creates a new Event, while the recently used one (web) is still bumped.
func TestCorrelatorForgetsTheLeastRecentlyUsed(t *testing.T) {
	c := NewCorrelator(Limits{Entries: 2})
	write := func(ref corev1.ObjectReference, at time.Duration) Action {
		d := c.Decide(NewEvent(source, ref, corev1.EventTypeNormal, "Reason", "message", t0.Add(at)))
		if d.Event != nil {
			c.Written(d.Event)
		}
		return d.Action
	}
	got := []Action{write(web, 0), write(api, 1), write(web, 2), write(tor, 3), write(web, 4), write(api, 5)}
	want := []Action{Create, Create, Bump, Create, Bump, Create}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if c.written.Len() != 2 || c.buckets.Len() != 2 {
		t.Errorf("remembers %d Events and %d buckets, want 2 and 2", c.written.Len(), c.buckets.Len())
	}
}

// TestNewEvent: the Event carries the speaker's source and the reference
// as given, in the object's namespace ("default" for a cluster-scoped
// one), named as client-go names them, or named by the API server when
// that name would be invalid.
func TestNewEvent(t *testing.T) {
	long := corev1.ObjectReference{Kind: "BGPPeer", APIVersion: "herald.dev/v1alpha1", Name: strings.Repeat("a", 250)}
	at := metav1.NewTime(t0)
	tests := []struct {
		name string
		ref  corev1.ObjectReference
		want corev1.Event
	}{
		{"a Service", web, corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "shop", Name: "web.18eee3480f39c000"},
			InvolvedObject: web,
		}},
		{"a cluster-scoped BGPPeer", tor, corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "tor.18eee3480f39c000"},
			InvolvedObject: tor,
		}},
		{"a name too long for the suffix", long, corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "default", GenerateName: "herald-speaker."},
			InvolvedObject: long,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Reason, want.Message, want.Type = "Announcing", "taken", corev1.EventTypeNormal
			want.FirstTimestamp, want.LastTimestamp, want.Count = at, at, 1
			want.Source, want.ReportingController, want.ReportingInstance = source, "herald-speaker", "node1"
			got := NewEvent(source, tt.ref, corev1.EventTypeNormal, "Announcing", "taken", t0)
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("NewEvent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBumpPatch(t *testing.T) {
	e := NewEvent(source, web, corev1.EventTypeNormal, "Announcing", "taken", t0)
	e.Count = 7
	if got, want := string(bumpPatch(e)), `{"count":7,"lastTimestamp":"2026-12-07T06:00:00Z"}`; got != want {
		t.Errorf("bumpPatch = %s, want %s", got, want)
	}
}
