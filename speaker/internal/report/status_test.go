package report

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// TestMarkGoneForgetsDeletedRecords: the writer remembers when it marked
// each gone speaker's record (to mark it at most every 30 s), and forgets
// a record once it is deleted with its Node.
func TestMarkGoneForgetsDeletedRecords(t *testing.T) {
	ready := func(name string) *v1alpha1.SpeakerStatus {
		return &v1alpha1.SpeakerStatus{
			ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
			Status: v1alpha1.SpeakerStatusStatus{Conditions: []metav1.Condition{{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
			}}},
		}
	}
	client := heraldfake.NewSimpleClientset(ready("n1"), ready("n2"), ready("n3"))
	// The writer's cache holds its own record only (kubeclient.ListWatches.OwnStatus):
	// MarkGone lists the others from the API.
	own := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := own.Add(ready("n1")); err != nil {
		t.Fatal(err)
	}
	w := NewStatusWriter(client.HeraldV1alpha1().SpeakerStatuses(), heraldlisters.NewSpeakerStatusLister(own), "n1", time.Second,
		func() types.UID { return "" }, nil)
	now := time.Now()
	if err := w.MarkGone(t.Context(), map[string]bool{"n1": true}, now); err != nil {
		t.Fatal(err)
	}
	if len(w.marked) != 2 {
		t.Fatalf("marked %v, want n2 and n3", w.marked)
	}
	for _, name := range []string{"n2", "n3"} {
		got, err := client.HeraldV1alpha1().SpeakerStatuses().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("%s's record after MarkGone: Ready %+v, want False", name, c)
		}
	}
	if err := client.HeraldV1alpha1().SpeakerStatuses().Delete(t.Context(), "n3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.MarkGone(t.Context(), map[string]bool{"n1": true}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.marked["n3"]; ok || len(w.marked) != 1 {
		t.Errorf("after n3's record was deleted, marked %v, want n2 only", w.marked)
	}
}

// TestSpeakerRecords: every record is listed, and only one that a
// surviving speaker marked not alive counts as lost; a stopped speaker's
// (a restart, a whole-cluster stop) and one without a condition do not.
func TestSpeakerRecords(t *testing.T) {
	record := func(name string, status metav1.ConditionStatus, reason string) *v1alpha1.SpeakerStatus {
		o := &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if reason != "" {
			o.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason}}
		}
		return o
	}
	client := heraldfake.NewSimpleClientset(
		record("running", metav1.ConditionTrue, v1alpha1.SpeakerReasonRunning),
		record("stopped", metav1.ConditionFalse, v1alpha1.SpeakerReasonStopped),
		record("lost", metav1.ConditionFalse, v1alpha1.SpeakerReasonNotAlive),
		record("new", "", ""),
	)
	w := NewStatusWriter(client.HeraldV1alpha1().SpeakerStatuses(), nil, "running", time.Second, func() types.UID { return "" }, nil)
	got, err := w.SpeakerRecords(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b decide.SpeakerRecord) int { return strings.Compare(a.Node, b.Node) })
	want := []decide.SpeakerRecord{{Node: "lost", Lost: true}, {Node: "new"}, {Node: "running"}, {Node: "stopped"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
