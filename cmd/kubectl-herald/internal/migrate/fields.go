package migrate

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// fields is a copy of one object's spec from which the converter takes the
// fields it carries; what remains at the end was not carried.
type fields struct {
	m map[string]any
}

func newFields(spec map[string]any) *fields {
	if spec == nil {
		return &fields{m: map[string]any{}}
	}
	return &fields{m: runtime.DeepCopyJSON(spec)}
}

// take removes and returns the field at key, and whether it was set.
func (f *fields) take(key string) (any, bool) {
	v, ok := f.m[key]
	delete(f.m, key)
	return v, ok && v != nil
}

func (f *fields) str(key string) (string, bool, error) {
	v, ok := f.take(key)
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, fmt.Errorf("spec.%s: want a string, got %T", key, v)
	}
	return s, true, nil
}

func (f *fields) boolean(key string) (bool, bool, error) {
	v, ok := f.take(key)
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, true, fmt.Errorf("spec.%s: want true or false, got %v", key, v)
	}
	return b, true, nil
}

// integer reads a JSON number that must be whole.
func (f *fields) integer(key string) (int64, bool, error) {
	v, ok := f.take(key)
	if !ok {
		return 0, false, nil
	}
	switch n := v.(type) {
	case int64:
		return n, true, nil
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true, nil
		}
	}
	return 0, true, fmt.Errorf("spec.%s: want a whole number, got %v", key, v)
}

func (f *fields) strings(key string) ([]string, bool, error) {
	v, ok := f.take(key)
	if !ok {
		return nil, false, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, true, fmt.Errorf("spec.%s: want a list of strings, got %T", key, v)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, isStr := e.(string)
		if !isStr {
			return nil, true, fmt.Errorf("spec.%s: want a list of strings, got an entry %v", key, e)
		}
		out = append(out, s)
	}
	return out, true, nil
}

// object removes and returns a nested object as its own fields.
func (f *fields) object(key string) (*fields, bool, error) {
	v, ok := f.take(key)
	if !ok {
		return nil, false, nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, true, fmt.Errorf("spec.%s: want an object, got %T", key, v)
	}
	return &fields{m: m}, true, nil
}

// list removes and returns a list of raw values.
func (f *fields) list(key string) ([]any, bool, error) {
	v, ok := f.take(key)
	if !ok {
		return nil, false, nil
	}
	l, isList := v.([]any)
	if !isList {
		return nil, true, fmt.Errorf("spec.%s: want a list, got %T", key, v)
	}
	return l, true, nil
}

// rest lists the paths (prefix.key) of the fields left, sorted, with their
// values as written.
func (f *fields) rest(prefix string) []leftField {
	var out []leftField
	for k, v := range f.m {
		if v == nil {
			continue
		}
		out = append(out, leftField{Path: prefix + k, Value: v})
	}
	slices.SortFunc(out, func(a, b leftField) int { return strings.Compare(a.Path, b.Path) })
	return out
}

type leftField struct {
	Path  string
	Value any
}
