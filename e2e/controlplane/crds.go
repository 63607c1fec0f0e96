package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// ErrNoCRDs reports that the CRD directory holds no CustomResourceDefinition manifests.
var ErrNoCRDs = errors.New("controlplane: no CRD manifests")

// RepoRoot returns the root of Herald's working tree: the directory holding go.mod and
// e2e/go.mod. It starts from this package's source directory, then from the working
// directory, so it works both in tests and in programs run with `go run`.
func RepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, "e2e", "go.mod")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("controlplane: find the repository root (a directory with go.mod and e2e/go.mod) above %v", starts)
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// DefaultCRDDir returns deploy/crds in the repository root.
func DefaultCRDDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "crds"), nil
}

// ReadCRDs reads every CustomResourceDefinition in the .yaml and .yml files of dir
// (documents of other kinds are ignored), in file-name order. It returns an error wrapping
// ErrNoCRDs when there is none.
func ReadCRDs(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("controlplane: read CRD directory: %w", err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, e := range entries {
		if e.IsDir() || (filepath.Ext(e.Name()) != ".yaml" && filepath.Ext(e.Name()) != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("controlplane: read CRD file: %w", err)
		}
		for i, doc := range SplitYAML(data) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				return nil, fmt.Errorf("controlplane: parse %s document %d: %w", e.Name(), i+1, err)
			}
			if meta.Kind != "CustomResourceDefinition" {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				return nil, fmt.Errorf("controlplane: parse CRD in %s document %d: %w", e.Name(), i+1, err)
			}
			crds = append(crds, crd)
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("%w in %s: generate them (make generate) or start with SkipCRDs", ErrNoCRDs, dir)
	}
	return crds, nil
}

// SplitYAML splits a multi-document YAML stream at its "---" separator lines and drops the
// documents that are empty or hold only comments.
func SplitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for line := range bytes.Lines(data) {
		trimmed := bytes.TrimRight(line, " \t\r\n")
		if bytes.Equal(trimmed, []byte("---")) || bytes.HasPrefix(trimmed, []byte("--- ")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

func hasContent(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return true
		}
	}
	return false
}

// InstallCRDs creates or updates crds through cfg and waits until every one is Established
// or ctx ends. It returns the CRDs' names.
func InstallCRDs(ctx context.Context, cfg *rest.Config, crds []*apiextensionsv1.CustomResourceDefinition) ([]string, error) {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("controlplane: apiextensions client: %w", err)
	}
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	names := make([]string, 0, len(crds))
	for _, crd := range crds {
		crd = crd.DeepCopy()
		_, err := api.Create(ctx, crd, metav1.CreateOptions{FieldManager: fieldManager})
		if apierrors.IsAlreadyExists(err) {
			// A persistent directory keeps the CRDs of the last run: bring them up to date.
			var current *apiextensionsv1.CustomResourceDefinition
			current, err = api.Get(ctx, crd.Name, metav1.GetOptions{})
			if err == nil {
				crd.ResourceVersion = current.ResourceVersion
				_, err = api.Update(ctx, crd, metav1.UpdateOptions{FieldManager: fieldManager})
			}
		}
		if err != nil {
			return nil, fmt.Errorf("controlplane: install CRD %s: %w", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	for _, name := range names {
		if err := waitEstablished(ctx, api, name); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// installCRDsWhenServing runs InstallCRDs until it succeeds: an apiserver that has just
// started serving may not serve the apiextensions API yet. It gives up at once when the
// apiserver refuses a CRD as invalid, and when ctx ends.
func installCRDsWhenServing(ctx context.Context, cfg *rest.Config, crds []*apiextensionsv1.CustomResourceDefinition) ([]string, error) {
	for {
		names, err := InstallCRDs(ctx, cfg, crds)
		if err == nil || apierrors.IsInvalid(err) || ctx.Err() != nil {
			return names, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pollInterval):
		}
	}
}

type crdGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*apiextensionsv1.CustomResourceDefinition, error)
}

func waitEstablished(ctx context.Context, api crdGetter, name string) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		crd, err := api.Get(ctx, name, metav1.GetOptions{})
		if err == nil && established(crd) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("conditions %v", crd.Status.Conditions)
			}
			return fmt.Errorf("controlplane: wait for CRD %s to be Established: %w (last: %v)", name, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
