package controller

import (
	"bytes"
	"encoding/base64"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestNewMemberlistKey(t *testing.T) {
	a, err := newMemberlistKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(a))
	if err != nil {
		t.Fatalf("key %q is not base64: %v", a, err)
	}
	if len(raw) != MemberlistKeyBytes {
		t.Errorf("key decodes to %d bytes, want %d", len(raw), MemberlistKeyBytes)
	}
	b, err := newMemberlistKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two keys are equal")
	}
}

func TestSpeakersUseGossipKeys(t *testing.T) {
	status := func(name string, ready bool, keys bool) v1alpha1.SpeakerStatus {
		s := v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: name}}
		cond := metav1.ConditionFalse
		if ready {
			cond = metav1.ConditionTrue
		}
		s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: cond}}
		if keys {
			s.Status.GossipKeys = &v1alpha1.GossipKeyStatus{Primary: "3ba3f5f4", Installed: []string{"3ba3f5f4"}}
		}
		return s
	}
	tests := []struct {
		name     string
		statuses []v1alpha1.SpeakerStatus
		inUse    bool
		why      string
	}{
		{name: "first install: no record", inUse: false},
		{name: "records of stopped speakers without keys (encryption was off)", statuses: []v1alpha1.SpeakerStatus{status("n1", false, false)}},
		{name: "a running speaker with keys", statuses: []v1alpha1.SpeakerStatus{status("n2", true, true), status("n1", false, false)},
			inUse: true, why: "the speakers on n2 report gossip keys"},
		{name: "a stopped speaker that used keys still counts", statuses: []v1alpha1.SpeakerStatus{status("n1", false, true)},
			inUse: true, why: "the speakers on n1 report gossip keys"},
		{name: "a running speaker of an earlier version (no keyring reported)", statuses: []v1alpha1.SpeakerStatus{status("n1", true, false)},
			inUse: true, why: "the speakers on n1 run"},
		{name: "many: the first three named", statuses: []v1alpha1.SpeakerStatus{
			status("n5", true, true), status("n4", true, true), status("n3", true, true), status("n2", true, true), status("n1", true, true)},
			inUse: true, why: "the speakers on n1, n2, n3 and 2 more nodes report gossip keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inUse, why := speakersUseGossipKeys(tt.statuses)
			if inUse != tt.inUse || why != tt.why {
				t.Errorf("speakersUseGossipKeys = %v, %q; want %v, %q", inUse, why, tt.inUse, tt.why)
			}
		})
	}
}
