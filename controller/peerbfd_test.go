package controller

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestPeerBFDCondition(t *testing.T) {
	record := func(node string, bfdNotUp bool, sessions ...v1alpha1.BGPSessionStatus) *v1alpha1.SpeakerStatus {
		st := &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: v1alpha1.SpeakerStatusStatus{BGPSessions: sessions}}
		if bfdNotUp {
			st.Status.Conditions = []metav1.Condition{{Type: v1alpha1.SpeakerConditionBFDUp, Status: metav1.ConditionFalse, Reason: v1alpha1.SpeakerReasonBFDNotUp}}
		}
		return st
	}
	session := func(peer, state, bfd string) v1alpha1.BGPSessionStatus {
		return v1alpha1.BGPSessionStatus{Peer: peer, State: state, BFDState: bfd}
	}
	tests := []struct {
		name     string
		statuses []*v1alpha1.SpeakerStatus
		want     []string // nodes named; nil: no condition
	}{
		{"no records", nil, nil},
		{"BFD up everywhere", []*v1alpha1.SpeakerStatus{record("n1", false, session("tor", "Established", "Up"))}, nil},
		{"a node reports BFD not up with the peer", []*v1alpha1.SpeakerStatus{
			record("n2", true, session("tor", "Established", "Down")),
			record("n1", false, session("tor", "Established", "Up")),
		}, []string{"n2"}},
		{"not up with another peer only", []*v1alpha1.SpeakerStatus{record("n1", true, session("tor", "Established", "Up"), session("other", "Established", "Down"))}, nil},
		{"session not established: a session problem, not BFD's", []*v1alpha1.SpeakerStatus{record("n1", true, session("tor", "Active", "Down"))}, nil},
		{"condition without the session (stale record)", []*v1alpha1.SpeakerStatus{record("n1", true)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, bfdNotUpNodes("tor", tt.statuses)); diff != "" {
				t.Errorf("bfdNotUpNodes (-want +got):\n%s", diff)
			}
			c := peerBFDCondition("tor", tt.statuses, 3)
			if (c != nil) != (tt.want != nil) {
				t.Fatalf("peerBFDCondition = %+v, want one: %v", c, tt.want != nil)
			}
			if c != nil && (c.Type != ConditionBFDUp || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.SpeakerReasonBFDNotUp || c.ObservedGeneration != 3) {
				t.Errorf("peerBFDCondition = %+v", c)
			}
		})
	}
	// Many nodes: the message names three and counts the rest.
	var many []*v1alpha1.SpeakerStatus
	for i := range 5 {
		many = append(many, record(fmt.Sprintf("n%d", i), true, session("tor", "Established", "Down")))
	}
	if c := peerBFDCondition("tor", many, 1); c == nil || !strings.HasPrefix(c.Message, "BFD is enabled but not up on n0, n1, n2 and 2 more ") {
		t.Errorf("message %+v", c)
	}
}
