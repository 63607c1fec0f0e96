package crd

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// warnings collects the apiserver's warnings to a client.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

// take returns the warnings collected since the last call.
func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.got
	w.got = nil
	return got
}

// testPasswordWarning installs deploy/controller/bgppeer-password-policy.yaml as shipped
// and checks that creating or changing a BGPPeer with an inline spec.password is accepted
// with a deprecation warning, and that a peer using passwordSecretRef draws none.
func testPasswordWarning(t *testing.T, cp *controlplane.ControlPlane) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(root, "deploy", "controller", "bgppeer-password-policy.yaml")
	if out, err := cp.Kubectl(t.Context(), "apply", "-f", policy).CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", policy, err, out)
	}
	cfg := cp.Config()
	var w warnings
	cfg.WarningHandler = &w
	client := dynamic.NewForConfigOrDie(cfg).Resource(resources["BGPPeer"])
	const want = "spec.password is deprecated"

	// The apiserver takes a moment to load a new policy: create, look, delete, retry.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		name := fmt.Sprintf("inline-password-%d", i)
		obj := object(t, "BGPPeer", name, `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, password: s3cret}`)
		if _, err := client.Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create a peer with an inline password: %v (a warning must not refuse it)", err)
		}
		got := w.take()
		if len(got) == 1 && strings.Contains(got[0], want) && strings.Contains(got[0], name) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating a peer with an inline password drew the warnings %q, want one containing %q", got, want)
		}
		if err := client.Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("changing a peer that keeps its inline password warns again", func(t *testing.T) {
		obj := object(t, "BGPPeer", "inline-password-edit", `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, password: s3cret}`)
		created, err := client.Create(t.Context(), obj, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.take()
		created.Object["spec"].(map[string]any)["port"] = int64(1179)
		if _, err := client.Update(t.Context(), created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := w.take(); len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("update drew the warnings %q, want one containing %q", got, want)
		}
	})
	t.Run("a peer with passwordSecretRef draws no warning", func(t *testing.T) {
		obj := object(t, "BGPPeer", "secret-password", `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, passwordSecretRef: {name: bgp}}`)
		if _, err := client.Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := w.take(); len(got) != 0 {
			t.Errorf("create drew the warnings %q, want none", got)
		}
	})
}
