package reconcile

import (
	"net/netip"
	"reflect"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/report"
)

// report records what changed since the last reconcile (events,
// metrics) and hands the status writer this node's record when this
// node's own state in it changed: its announcements, or its BGP sessions'
// states and errors. The record is rebuilt only then: with thousands of
// addresses, building it costs more than the compare.
//
// The other speakers' state is no reason to write: the member count and
// the sessions' prefix counts are refreshed with the next write for the
// node's own reasons. Otherwise one node's death (the member count) or a
// Service added under BGP (every node's prefix counts) made every node
// rewrite its record: N writes for an event, where now only the nodes
// whose announcements change write (TestStatusWritesOnANodeDeath).
func (s *Loop) report(d decide.Desired, members int, now time.Time) {
	sessions := s.bgpSessions()
	s.lastMembers = members
	if s.record(d, now) || !sameSessions(sessions, s.lastSessions) {
		s.status.Update(s.statusOf(d, members, sessions))
		s.lastSessions = sessions
	}
}

// sameSessions reports whether a and b show the same sessions in the same
// states, with the same errors, whatever their prefix counts.
func sameSessions(a, b []v1alpha1.BGPSessionStatus) bool {
	return slices.EqualFunc(a, b, func(x, y v1alpha1.BGPSessionStatus) bool {
		x.PrefixesAdvertised, y.PrefixesAdvertised = 0, 0
		return reflect.DeepEqual(x, y)
	})
}

// record emits events and metrics for what changed since the last
// reconcile, and keeps when each address was taken. It reports whether
// the layer-2 announcements (or their Services) changed.
func (s *Loop) record(d decide.Desired, now time.Time) (changed bool) {
	changed = s.prev.Owners == nil || !sameAnnouncements(s.prev.Layer2, d.Layer2)
	changes := decide.OwnershipChanges(s.prev, d, s.cfg.NodeName)
	// The first reconcile after a start knows no previous owner: its
	// gains are logged, not recorded as events. Later, at most
	// maxEventsPerReconcile events are recorded per reconcile (a node
	// failure moves a third of a large cluster's addresses at once); the
	// SpeakerStatus records carry the rest.
	first := s.prev.Owners == nil
	if len(changes) > 20 {
		s.log.Info("layer-2 announcements changed", "gained", countGained(changes), "lost", len(changes)-countGained(changes))
	}
	skipped := 0
	for i, c := range changes {
		if len(changes) <= 20 {
			s.log.Info("layer-2 announcement changed", "address", c.Addr, "gained", c.Gained, "previous", c.Previous, "interfaces", c.Interfaces)
		}
		if c.Gained {
			s.since[c.Addr] = now
			s.metrics.OwnershipChanges.WithLabelValues("gained").Inc()
		}
		if first || i >= maxEventsPerReconcile {
			skipped++
			continue
		}
		s.event(c.Services, corev1.EventTypeNormal, c.Reason(), c.Message())
	}
	if skipped > 0 && !first {
		s.log.Info("ownership events not recorded", "count", skipped)
	}
	for a := range s.prev.Layer2 {
		if _, ok := d.Layer2[a]; !ok {
			delete(s.since, a)
			s.metrics.OwnershipChanges.WithLabelValues("lost").Inc()
		}
	}
	var v4, v6 int
	for a := range d.Layer2 {
		if a.Is4() {
			v4++
		} else {
			v6++
		}
	}
	s.metrics.Announced.WithLabelValues("arp").Set(float64(v4))
	s.metrics.Announced.WithLabelValues("ndp").Set(float64(v6))
	s.metrics.Announced.WithLabelValues("bgp").Set(float64(len(d.BGP)))
	s.prev = d
	return changed
}

// sameAnnouncements reports whether a and b announce the same addresses,
// on the same interfaces, for the same Services.
func sameAnnouncements(a, b map[netip.Addr]decide.Layer2Entry) bool {
	if !sameInterfaces(a, b) {
		return false
	}
	for addr, e := range a {
		if !slices.Equal(e.Services, b[addr].Services) {
			return false
		}
	}
	return true
}

// maxEventsPerReconcile bounds the ownership events one reconcile records.
const maxEventsPerReconcile = 50

func countGained(cs []decide.OwnershipChange) int {
	n := 0
	for _, c := range cs {
		if c.Gained {
			n++
		}
	}
	return n
}

// event records an event on each of the Services.
func (s *Loop) event(keys []decide.ServiceKey, typ, reason, msg string) {
	for _, k := range keys {
		ref := corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: k.Namespace, Name: k.Name, UID: s.changes.sums.UID(k)}
		s.recorder.Event(ref, typ, reason, msg)
		s.metrics.Events.WithLabelValues(reason).Inc()
	}
}

// bgpSessions returns the BGP sessions as the SpeakerStatus shows them.
func (s *Loop) bgpSessions() []v1alpha1.BGPSessionStatus {
	return sessionStatuses(s.bgpStatuses())
}

// statusOf returns this node's SpeakerStatus for d.
func (s *Loop) statusOf(d decide.Desired, members int, sessions []v1alpha1.BGPSessionStatus) v1alpha1.SpeakerStatusStatus {
	st := v1alpha1.SpeakerStatusStatus{
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
			Message:            "The speaker runs; this record lists what it announces.",
			LastTransitionTime: metav1.NewTime(s.started.Truncate(time.Second)),
		}},
		Members:         int32(members),
		Layer2:          report.Layer2Status(d, s.since),
		BGPSessions:     sessions,
		BGPSessionCount: int32(len(sessions)),
	}
	if c := bfdCondition(s.bgpSeen); c != nil {
		st.Conditions = append(st.Conditions, *c)
	}
	st.Layer2Addresses = int32(report.DistinctAddresses(st.Layer2))
	for _, bs := range sessions {
		if bs.State == "Established" {
			st.BGPSessionsEstablished++
		}
	}
	return st
}
