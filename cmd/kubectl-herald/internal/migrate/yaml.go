package migrate

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Objects returns what the plan writes, in the order to apply it (pools,
// peers, advertisements, then the Services' annotations as partial
// Services for server-side apply), without status or server-set fields.
func (p *Plan) Objects() ([]*unstructured.Unstructured, error) {
	var typed []runtime.Object
	for _, o := range p.IPPools {
		typed = append(typed, o)
	}
	for _, o := range p.BGPPeers {
		typed = append(typed, o)
	}
	for _, o := range p.L2Advertisements {
		typed = append(typed, o)
	}
	for _, o := range p.BGPAdvertisements {
		typed = append(typed, o)
	}
	var out []*unstructured.Unstructured
	for _, o := range typed {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		delete(m, "status")
		unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	for _, s := range p.Services {
		if len(s.Annotations) == 0 {
			continue
		}
		ann := map[string]any{}
		for k, v := range s.Annotations {
			ann[k] = v
		}
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": s.Name, "namespace": s.Namespace, "annotations": ann},
		}})
	}
	return out, nil
}

// WriteYAML writes Objects as YAML documents, for kubectl apply
// --server-side (the Services are partial: only their annotations).
func (p *Plan) WriteYAML(w io.Writer) error {
	objs, err := p.Objects()
	if err != nil {
		return err
	}
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		docs = append(docs, string(b))
	}
	header := fmt.Sprintf("# Herald resources and Service annotations migrated from %s by kubectl herald.\n# Apply with: kubectl apply --server-side -f FILE (the Services are partial: annotations only).\n", p.Source)
	_, err = io.WriteString(w, header+strings.Join(slices.Clip(docs), "---\n"))
	return err
}
