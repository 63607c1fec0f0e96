package config

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/ipam"
)

// namespaceRule admits the namespaces it lists and those its selector matches.
type namespaceRule struct {
	namespaces []string        // sorted, for binary search
	selector   labels.Selector // nil: none by selector
}

func (r namespaceRule) admits(s ipam.Subject) bool {
	if _, found := slices.BinarySearch(r.namespaces, s.Namespace); found {
		return true
	}
	return r.selector != nil && r.selector.Matches(labels.Set(s.NamespaceLabels))
}

func (r namespaceRule) empty() bool { return len(r.namespaces) == 0 && r.selector == nil }

// serviceAdmission implements ipam.Admitter for an IPPool's serviceAllocation:
// the namespace must qualify (or no namespace rule is set), and the Service's
// labels must match serviceSelector when it is set. Admits costs a binary
// search over the listed namespaces plus the selectors' requirements.
type serviceAdmission struct {
	namespaces      namespaceRule
	serviceSelector labels.Selector // nil: every Service
}

// Admits reports whether the pool may serve s.
func (a serviceAdmission) Admits(s ipam.Subject) bool {
	if !a.namespaces.empty() && !a.namespaces.admits(s) {
		return false
	}
	return a.serviceSelector == nil || a.serviceSelector.Matches(labels.Set(s.ServiceLabels))
}

// externalIPAdmission implements ipam.Admitter for an IPPool's
// allowExternalIPs: only the listed or selected namespaces qualify.
type externalIPAdmission struct {
	namespaces namespaceRule
}

// Admits reports whether s may use the pool's addresses as external IPs.
func (a externalIPAdmission) Admits(s ipam.Subject) bool { return a.namespaces.admits(s) }

// admitNone implements ipam.Admitter for a pool that must serve nothing new.
type admitNone struct{}

// Admits reports false.
func (admitNone) Admits(ipam.Subject) bool { return false }

// selector converts a label selector; nil stays nil.
func selector(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return nil, nil
	}
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, fmt.Errorf("config: label selector: %w", err)
	}
	return s, nil
}

// nodeSelectors converts an object's nodeSelectors. An empty list selects
// every node, and so does an empty selector in the list.
type nodeSelectors []labels.Selector

func newNodeSelectors(in []metav1.LabelSelector) (nodeSelectors, error) {
	out := make(nodeSelectors, 0, len(in))
	for i := range in {
		s, err := selector(&in[i])
		if err != nil {
			return nil, fmt.Errorf("nodeSelectors[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// matches reports whether a node with these labels is selected.
func (ns nodeSelectors) matches(nodeLabels map[string]string) bool {
	if len(ns) == 0 {
		return true
	}
	set := labels.Set(nodeLabels)
	for _, s := range ns {
		if s.Matches(set) {
			return true
		}
	}
	return false
}

// sortedUnique returns the sorted distinct non-empty strings of in.
func sortedUnique(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
