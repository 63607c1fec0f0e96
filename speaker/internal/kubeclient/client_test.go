package kubeclient

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// apiServer answers every request with an empty list of the kind its path
// names (or, for a write, an Event) and records the requests as
// "METHOD path?fieldSelector", followed for a write by its content type.
type apiServer struct {
	mu   sync.Mutex
	seen []string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	req := r.Method + " " + r.URL.Path + "?" + r.URL.Query().Get("fieldSelector")
	if r.Method != http.MethodGet {
		req += " " + r.Header.Get("Content-Type")
	}
	a.seen = append(a.seen, req)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		_, _ = w.Write([]byte(`{"kind":"Event","apiVersion":"v1","metadata":{"name":"e","namespace":"shop"}}`))
		return
	}
	kinds := map[string]string{
		"services": "ServiceList", "nodes": "NodeList", "secrets": "SecretList", "endpointslices": "EndpointSliceList",
		"addressclaims": "AddressClaimList", "ippools": "IPPoolList", "l2advertisements": "L2AdvertisementList",
		"bgppeers": "BGPPeerList", "bgpadvertisements": "BGPAdvertisementList", "speakerstatuses": "SpeakerStatusList",
	}
	parts := strings.Split(r.URL.Path, "/")
	resource := parts[len(parts)-1]
	apiVersion := strings.TrimPrefix(strings.TrimPrefix(strings.Join(parts[:len(parts)-1], "/"), "/apis/"), "/api/")
	if i := strings.Index(apiVersion, "/namespaces"); i >= 0 {
		apiVersion = apiVersion[:i]
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": kinds[resource], "apiVersion": apiVersion, "metadata": map[string]any{"resourceVersion": "7"}, "items": []any{},
	})
}

func newTestClient(t *testing.T) (*Client, *apiServer) {
	t.Helper()
	api := &apiServer{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	c, err := New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, api
}

// TestListWatchesAskForTheirKind lists through each of the speaker's
// list-watches: each asks its group's path, only this node's
// SpeakerStatus, only the named Secret of the speaker's namespace, and
// decodes the answer with the speaker's small scheme.
func TestListWatchesAskForTheirKind(t *testing.T) {
	c, api := newTestClient(t)
	lw := c.ListWatches("node1", "herald-system")
	tests := []struct {
		name string
		lw   cache.ListerWatcher
		want string
	}{
		{"Services", lw.Services, "GET /api/v1/services?"},
		{"EndpointSlices", lw.EndpointSlices, "GET /apis/discovery.k8s.io/v1/endpointslices?"},
		{"Nodes", lw.Nodes, "GET /api/v1/nodes?"},
		{"AddressClaims", lw.AddressClaims, "GET /apis/herald.dev/v1alpha1/addressclaims?"},
		{"IPPools", lw.IPPools, "GET /apis/herald.dev/v1alpha1/ippools?"},
		{"L2Advertisements", lw.L2Advertisements, "GET /apis/herald.dev/v1alpha1/l2advertisements?"},
		{"BGPPeers", lw.BGPPeers, "GET /apis/herald.dev/v1alpha1/bgppeers?"},
		{"BGPAdvertisements", lw.BGPAdvertisements, "GET /apis/herald.dev/v1alpha1/bgpadvertisements?"},
		{"OwnStatus", lw.OwnStatus, "GET /apis/herald.dev/v1alpha1/speakerstatuses?metadata.name=node1"},
		{"Secret", lw.Secret("peer-a"), "GET /api/v1/namespaces/herald-system/secrets?metadata.name=peer-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api.mu.Lock()
			api.seen = nil
			api.mu.Unlock()
			obj, err := cache.ToListerWatcherWithContext(tt.lw).ListWithContext(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if m, err := meta.ListAccessor(obj); err != nil || m.GetResourceVersion() != "7" {
				t.Errorf("List returned %T (%v), want the server's list at resourceVersion 7", obj, err)
			}
			if diff := cmp.Diff([]string{tt.want}, api.seen); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
	if got := c.ListWatches("node1", "").Secret; got != nil {
		t.Error("without a namespace, ListWatches has a Secret list-watch")
	}
}

// TestEventWriterWritesInTheEventsNamespace creates and merge-patches an
// Event as the speaker's recorder (package events) does.
func TestEventWriterWritesInTheEventsNamespace(t *testing.T) {
	c, api := newTestClient(t)
	w := c.Events()
	e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web.1"}}
	if _, err := w.Create(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Patch(t.Context(), "shop", "web.1", []byte(`{"count":2}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /api/v1/namespaces/shop/events? application/json",
		"PATCH /api/v1/namespaces/shop/events/web.1? application/merge-patch+json",
	}
	if diff := cmp.Diff(want, api.seen); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestSchemeHoldsOnlyTheSpeakersGroups: the scheme knows the speaker's
// kinds, and holds no other group.
func TestSchemeHoldsOnlyTheSpeakersGroups(t *testing.T) {
	gvks, _, err := Scheme.ObjectKinds(&corev1.Service{})
	if err != nil || len(gvks) != 1 || gvks[0].Kind != "Service" {
		t.Errorf("ObjectKinds(Service) = %v, %v", gvks, err)
	}
	groups := map[string]bool{}
	for gvk := range Scheme.AllKnownTypes() {
		if gvk.Version != runtime.APIVersionInternal {
			groups[gvk.GroupVersion().String()] = true
		}
	}
	want := map[string]bool{"v1": true, "discovery.k8s.io/v1": true, "herald.dev/v1alpha1": true}
	if diff := cmp.Diff(want, groups); diff != "" {
		t.Errorf("Scheme's group versions (-want +got):\n%s", diff)
	}
}
