package report

import (
	"testing"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestStatusPatchClearsEmptyLists(t *testing.T) {
	b, err := statusPatch(v1alpha1.SpeakerStatusStatus{Members: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"status":{"bgpSessions":null,"conditions":null,"gossipKeys":null,"layer2":null,"members":2}}`
	if string(b) != want {
		t.Errorf("statusPatch = %s, want %s", b, want)
	}
}

// TestStatusPatchClearsTheKeyringsEmptyFields: a rotation step that stopped
// waiting must clear the stored waiting list, which a merge patch of the
// keyring object would otherwise keep.
func TestStatusPatchClearsTheKeyringsEmptyFields(t *testing.T) {
	b, err := statusPatch(v1alpha1.SpeakerStatusStatus{GossipKeys: &v1alpha1.GossipKeyStatus{Primary: "3ba3f5f4", Installed: []string{"3ba3f5f4"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"status":{"bgpSessions":null,"conditions":null,"gossipKeys":{"installed":["3ba3f5f4"],"primary":"3ba3f5f4","secretProblem":null,"waiting":null},"layer2":null,"members":null}}`
	if string(b) != want {
		t.Errorf("statusPatch = %s, want %s", b, want)
	}
}
