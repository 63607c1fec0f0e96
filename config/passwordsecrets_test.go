package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestPasswordSecrets(t *testing.T) {
	peer := func(name, secret, namespace string, selectors ...metav1.LabelSelector) *v1alpha1.BGPPeer {
		p := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}}
		p.Spec.NodeSelectors = selectors
		if secret != "" {
			p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: secret, Namespace: namespace}
		}
		return p
	}
	rack := func(r string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{"rack": r}}
	}
	broken := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "rack", Operator: "Bogus"}}}
	peers := []*v1alpha1.BGPPeer{
		peer("all", "all-password", ""),
		peer("rack-a", "a-password", "", rack("a")),
		peer("rack-a-too", "a-password", "", rack("a")),
		peer("rack-b", "b-password", "", rack("b")),
		peer("a-or-b", "ab-password", "", rack("a"), rack("b")),
		peer("no-password", "", "", rack("a")),
		peer("elsewhere", "foreign-password", "tenant-a"),
		peer("own-namespace-named", "named-password", "herald-system", rack("a")),
		peer("broken-selector", "broken-password", "", broken),
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{"a node in rack a", map[string]string{"rack": "a"}, []string{"a-password", "ab-password", "all-password", "named-password"}},
		{"a node in rack b", map[string]string{"rack": "b"}, []string{"ab-password", "all-password", "b-password"}},
		{"a node in no rack", nil, []string{"all-password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PasswordSecrets(peers, "herald-system", tc.labels)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("PasswordSecrets (-want +got):\n%s", diff)
			}
		})
	}
	if got := PasswordSecrets(nil, "herald-system", nil); len(got) != 0 {
		t.Errorf("no peers: %q, want none", got)
	}
}
