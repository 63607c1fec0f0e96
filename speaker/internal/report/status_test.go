package report

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
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
