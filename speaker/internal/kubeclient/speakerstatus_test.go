package kubeclient

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// TestSpeakerStatusClientRequests: the SpeakerStatus client sends what
// Herald's generated client sent (the path, the subresource, the options
// as query parameters, the patch type) and decodes the answers.
func TestSpeakerStatusClientRequests(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(`{"kind":"SpeakerStatusList","apiVersion":"herald.dev/v1alpha1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"node2"}}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"SpeakerStatus","apiVersion":"herald.dev/v1alpha1","metadata":{"name":"node1","resourceVersion":"8"}}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	statuses := c.SpeakerStatuses()
	created, err := statuses.Create(t.Context(), &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{FieldManager: "herald-speaker"})
	if err != nil || created.Name != "node1" || created.ResourceVersion != "8" {
		t.Errorf("Create = %v, %v; want node1 at resourceVersion 8", created, err)
	}
	patched, err := statuses.Patch(t.Context(), "node1", types.MergePatchType, []byte(`{"status":{}}`), metav1.PatchOptions{FieldManager: "herald-speaker"}, "status")
	if err != nil || patched.Name != "node1" {
		t.Errorf("Patch = %v, %v; want node1", patched, err)
	}
	list, err := statuses.List(t.Context(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "node2" || list.ResourceVersion != "7" {
		t.Errorf("List = %v, %v; want node2 at resourceVersion 7", list, err)
	}
	want := []string{
		"POST /apis/herald.dev/v1alpha1/speakerstatuses?fieldManager=herald-speaker application/json",
		"PATCH /apis/herald.dev/v1alpha1/speakerstatuses/node1/status?fieldManager=herald-speaker application/merge-patch+json",
		"GET /apis/herald.dev/v1alpha1/speakerstatuses?resourceVersion=0 ",
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
