package deploy

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// TestDeploy installs Herald from deploy/ into a real control plane that has none of
// Herald's CRDs yet, as a user would, then checks the RBAC the manifests grant and runs the
// controller and the speaker under it.
func TestDeploy(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{SkipCRDs: true})
	if !t.Run("apply", func(t *testing.T) { testApply(t, cp) }) {
		t.Fatal("the manifests did not apply cleanly; the tests below need them installed")
	}
	t.Run("rbac", func(t *testing.T) { testRBAC(t, cp) })
	t.Run("kubectl auth can-i", func(t *testing.T) { testCanI(t, cp) })
	t.Run("controller allocates under its RBAC", func(t *testing.T) { testControllerUnderRBAC(t, cp) })
	t.Run("speaker runs under its RBAC", func(t *testing.T) { testSpeakerUnderRBAC(t, cp) })
	t.Run("speakers write only their own node's SpeakerStatus", func(t *testing.T) { testSpeakerStatusPolicy(t, cp) })
	t.Run("cloud-controller-manager allocates under its RBAC", func(t *testing.T) { testCloudControllerManagerUnderRBAC(t, cp) })
}

// testApply applies the default install client-side (the command in docs/install.md),
// then server-side, then every overlay server-side, then the default again, and checks
// after each that the apiserver accepted and kept every object as written.
func testApply(t *testing.T, cp *controlplane.ControlPlane) {
	dir := deployDir(t)
	type step struct {
		name, dir  string
		serverSide bool
	}
	steps := []step{
		{"default, client-side", "default", false},
		{"default, server-side", "default", true},
	}
	for _, install := range installs[1:] {
		steps = append(steps, step{install + ", server-side", install, true})
	}
	steps = append(steps,
		// The BGP overlay's peer goes in as a second step, once the CRDs exist.
		step{"overlays/bgp/peer, server-side", "overlays/bgp/peer", true},
		// Back to the default for the tests that follow.
		step{"default again, server-side", "default", true},
	)
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { applyAndCheck(t, cp, filepath.Join(dir, s.dir), s.serverSide) }) {
			t.Fatalf("%s failed; later steps build on it", s.name)
		}
	}
	t.Run("applying the default again changes nothing", func(t *testing.T) {
		out, stderr, err := kubectl(t.Context(), cp, "diff", "--server-side", "-k", filepath.Join(dir, "default"))
		switch exitCode(err) {
		case 0:
		case 1:
			t.Errorf("kubectl diff --server-side -k deploy/default finds differences after applying it:\n%s", out)
		default:
			t.Fatalf("kubectl diff --server-side -k deploy/default: %v\n%s", err, stderr)
		}
	})
}

// applyAndCheck runs `kubectl apply -k dir`, requires it to succeed without a warning, and
// checks that every object the kustomization renders is in the apiserver with every field
// as rendered.
func applyAndCheck(t *testing.T, cp *controlplane.ControlPlane, dir string, serverSide bool) {
	args := []string{"apply", "-k", dir}
	if serverSide {
		args = append(args, "--server-side")
	}
	out, stderr, err := kubectl(t.Context(), cp, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	if stderr != "" {
		t.Errorf("kubectl %s warned:\n%s", strings.Join(args, " "), stderr)
	}
	objs := render(t, cp.Binaries.Kubectl, dir)
	if got := len(strings.Split(strings.TrimSpace(out), "\n")); got != len(objs) {
		t.Errorf("kubectl %s reported %d objects, the kustomization renders %d:\n%s", strings.Join(args, " "), got, len(objs), out)
	}
	checkLive(t, cp, objs)
}

// checkLive checks that each of objs exists in the apiserver and that every field it sets
// has the same value there.
func checkLive(t *testing.T, cp *controlplane.ControlPlane, objs []*unstructured.Unstructured) {
	t.Helper()
	cfg := cp.Config()
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	client := dynamic.NewForConfigOrDie(cfg)
	for _, want := range objs {
		gvk := want.GroupVersionKind()
		id := gvk.Kind + " " + want.GetName()
		if ns := want.GetNamespace(); ns != "" {
			id = gvk.Kind + " " + ns + "/" + want.GetName()
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s: the apiserver serves no such kind: %v", id, err)
			continue
		}
		ns := want.GetNamespace()
		if mapping.Scope.Name() == meta.RESTScopeNameRoot {
			// kubectl's kustomize does not know every cluster-scoped kind
			// (ValidatingAdmissionPolicy) and gives it the namespace, which
			// the apiserver drops.
			ns = ""
			want = want.DeepCopy()
			want.SetNamespace("")
		}
		live, err := client.Resource(mapping.Resource).Namespace(ns).Get(t.Context(), want.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if diffs := subsetDiff(want.Object, live.Object); len(diffs) > 0 {
			t.Errorf("%s differs in the apiserver from the manifest:\n  %s", id, strings.Join(diffs, "\n  "))
		}
	}
}
