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
