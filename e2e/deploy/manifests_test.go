package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// installs are the kustomizations of deploy/ that install Herald, relative to deploy/.
var installs = []string{
	"default",
	"overlays/layer2-only",
	"overlays/bgp",
	"overlays/load-balancer-class",
	"overlays/cloud-controller-manager",
	"overlays/drain",
}

// Names the manifests give the components.
const (
	namespace          = "herald-system"
	controllerAccount  = "herald-controller"
	speakerAccount     = "herald-speaker"
	controllerLease    = "herald-controller"
	controllerWorkload = "herald-controller"
	speakerWorkload    = "herald-speaker"
	ccmAccount         = "herald-cloud-controller-manager"
	ccmLease           = "herald-cloud-controller-manager"
	ccmWorkload        = "herald-cloud-controller-manager"
)

// deployDir returns deploy/ of the repository.
func deployDir(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy")
}

// render runs `kubectl kustomize dir` with the kubectl we build and returns the objects,
// in the order kustomize prints them.
func render(t *testing.T, kubectl, dir string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), kubectl, "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	for _, doc := range controlplane.SplitYAML(out) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("kubectl kustomize %s printed YAML that does not parse: %v\n%s", dir, err, doc)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		t.Fatalf("kubectl kustomize %s rendered no object", dir)
	}
	return objs
}

// find returns the rendered object of kind and name, failing t when there is none.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

// container returns the first container of a rendered or live workload's pod template.
func container(t *testing.T, workload *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, err := unstructured.NestedSlice(workload.Object, "spec", "template", "spec", "containers")
	if err != nil || len(cs) == 0 {
		t.Fatalf("%s %s has no containers (%v)", workload.GetKind(), workload.GetName(), err)
	}
	c, ok := cs[0].(map[string]any)
	if !ok {
		t.Fatalf("%s %s: container is a %T", workload.GetKind(), workload.GetName(), cs[0])
	}
	return c
}

// args returns the first container's args.
func args(t *testing.T, workload *unstructured.Unstructured) []string {
	t.Helper()
	a, _, err := unstructured.NestedStringSlice(container(t, workload), "args")
	if err != nil {
		t.Fatalf("%s %s: args: %v", workload.GetKind(), workload.GetName(), err)
	}
	return a
}

// flagNames returns the names of the --flags in args, sorted and without duplicates.
func flagNames(args []string) []string {
	var names []string
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		names = append(names, name)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// kubectl runs the control plane's kubectl as the admin and returns its standard output
// and standard error. A non-zero exit is returned as an *exec.ExitError.
func kubectl(ctx context.Context, cp *controlplane.ControlPlane, args ...string) (stdout, stderr string, err error) {
	cmd := cp.Kubectl(ctx, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// exitCode returns the exit status of a finished command's error, 0 for nil, and -1 when
// the command did not run to an exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

// subsetDiff reports where got differs from want, ignoring what got has beyond want:
// every map key of want must be in got with a matching value, every list must have the
// same length with matching elements, and scalars must be equal. Both are compared in
// their JSON form, so a YAML integer and the apiserver's int64 compare equal. It returns
// one line per difference, with its path.
func subsetDiff(want, got any) []string {
	return subset("", normalize(want), normalize(got))
}

func normalize(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unmarshalable %T: %v", v, err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Sprintf("unparsable %T: %v", v, err)
	}
	return out
}

func subset(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %v", path, got)}
		}
		var diffs []string
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing, want %v", path, k, w[k]))
				continue
			}
			diffs = append(diffs, subset(path+"."+k, w[k], gv)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, w, got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		return nil
	}
}

func TestSubsetDiff(t *testing.T) {
	for _, tt := range []struct {
		name      string
		want, got string // YAML
		diffs     int
	}{
		{"equal", `{a: 1, b: [x, {c: 2}]}`, `{a: 1, b: [x, {c: 2}]}`, 0},
		{"extra fields in got are fine", `{a: 1}`, `{a: 1, z: 3, b: {c: 1}}`, 0},
		{"missing key", `{a: 1, b: 2}`, `{a: 1}`, 1},
		{"changed scalar", `{a: {b: "64Mi"}}`, `{a: {b: "128Mi"}}`, 1},
		{"list of another length", `{l: [1, 2]}`, `{l: [1, 2, 3]}`, 1},
		{"nested list element", `{l: [{n: 1}, {n: 2}]}`, `{l: [{n: 1}, {n: 3, m: 0}]}`, 1},
		{"object against scalar", `{a: {b: 1}}`, `{a: 5}`, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want, got any
			if err := yaml.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal([]byte(tt.got), &got); err != nil {
				t.Fatal(err)
			}
			if diffs := subsetDiff(want, got); len(diffs) != tt.diffs {
				t.Errorf("subsetDiff(%s, %s) = %q, want %d difference(s)", tt.want, tt.got, diffs, tt.diffs)
			}
		})
	}
}
