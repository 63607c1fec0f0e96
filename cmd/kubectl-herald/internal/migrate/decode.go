package migrate

import (
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Decode reads YAML (several documents separated by ---) or JSON objects,
// and List objects' items, from r: the Services as Services, everything
// else as unstructured objects. name names r in errors.
func Decode(name string, r io.Reader) (objects []*unstructured.Unstructured, services []*corev1.Service, err error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, services, nil
			}
			return nil, nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, nil, fmt.Errorf("%s: document %d: %w", name, i, err)
			}
			for j := range list.Items {
				o, s, err := split(&list.Items[j])
				if err != nil {
					return nil, nil, fmt.Errorf("%s: document %d, item %d: %w", name, i, j, err)
				}
				objects, services = appendObject(objects, services, o, s)
			}
			continue
		}
		o, s, err := split(u)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		objects, services = appendObject(objects, services, o, s)
	}
}

func appendObject(objects []*unstructured.Unstructured, services []*corev1.Service, o *unstructured.Unstructured, s *corev1.Service) ([]*unstructured.Unstructured, []*corev1.Service) {
	if s != nil {
		return objects, append(services, s)
	}
	return append(objects, o), services
}

func split(u *unstructured.Unstructured) (*unstructured.Unstructured, *corev1.Service, error) {
	if u.GetKind() == "" {
		return nil, nil, errors.New("the object has no kind")
	}
	if u.GetAPIVersion() == "v1" && u.GetKind() == "Service" {
		var s corev1.Service
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
			return nil, nil, fmt.Errorf("Service %s: %w", u.GetName(), err)
		}
		if s.Namespace == "" {
			s.Namespace = "default"
		}
		return nil, &s, nil
	}
	return u, nil, nil
}
