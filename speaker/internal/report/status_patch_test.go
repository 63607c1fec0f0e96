package report

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// bigStatus is a node's record at the measurement command's scale: 3,300
// addresses of one Service each.
func bigStatus() v1alpha1.SpeakerStatusStatus {
	st := v1alpha1.SpeakerStatusStatus{Members: 3, Layer2Addresses: 3300}
	since := metav1.NewTime(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	a := netip.MustParseAddr("2001:db8:1::1:0")
	for i := range 3300 {
		a = a.Next()
		st.Layer2 = append(st.Layer2, v1alpha1.Layer2Announcement{Address: a.String(), Service: fmt.Sprintf("default/mem-%05d", i), Interfaces: []string{"eth0"}, Since: since})
	}
	return st
}

// TestStatusPatchCarriesTheStatus: the patch of a large record decodes to
// the record.
func TestStatusPatchCarriesTheStatus(t *testing.T) {
	st := bigStatus()
	b, err := statusPatch(st)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status v1alpha1.SpeakerStatusStatus `json:"status"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// Compared as JSON: a decoded time is in the local zone.
	want, _ := json.Marshal(st)
	if back, _ := json.Marshal(got.Status); string(back) != string(want) || len(got.Status.Layer2) != 3300 {
		t.Errorf("statusPatch decodes to a different status: %d layer-2 entries", len(got.Status.Layer2))
	}
}

// BenchmarkStatusPatch is the encoding of one write of a node's record at
// the measurement command's scale (3,300 addresses).
func BenchmarkStatusPatch(b *testing.B) {
	st := bigStatus()
	for b.Loop() {
		if _, err := statusPatch(st); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWriteSpacing(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		entries  int
		want     time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1000, time.Second},
		{time.Second, 3300, 3300 * time.Millisecond},
		{5 * time.Second, 3300, 5 * time.Second},
	} {
		if got := writeSpacing(tc.interval, tc.entries); got != tc.want {
			t.Errorf("writeSpacing(%v, %d) = %v, want %v", tc.interval, tc.entries, got, tc.want)
		}
	}
}
