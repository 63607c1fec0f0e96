package reconcile

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// TestStatusOnlyWritesKeepTheModel: the controller writes an IPPool's usage
// to its status every 500 ms during churn; such a write (metadata.generation
// unchanged) must not rebuild the configuration model, which would make
// every node recompute every address. A spec change, a label change (pool
// selectors read them) and a deletion do.
func TestStatusOnlyWritesKeepTheModel(t *testing.T) {
	pool := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "lan", Generation: 3, ResourceVersion: "10", Labels: map[string]string{"zone": "a"}},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []string{"198.51.100.128/26"}},
	}
	with := func(f func(p *v1alpha1.IPPool)) *v1alpha1.IPPool {
		p := pool.DeepCopy()
		p.ResourceVersion = "11"
		f(p)
		return p
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "bgp", ResourceVersion: "5"}, Data: map[string][]byte{"password": []byte("a")}}
	newSecret := secret.DeepCopy()
	newSecret.ResourceVersion, newSecret.Data["password"] = "6", []byte("b")
	tests := []struct {
		name     string
		old, new any
		want     bool
	}{
		{name: "status only", old: pool, new: with(func(p *v1alpha1.IPPool) { p.Status.Conditions = []metav1.Condition{{Type: "Ready"}} }), want: false},
		{name: "a relist of the same object", old: pool, new: pool, want: false},
		{name: "spec", old: pool, new: with(func(p *v1alpha1.IPPool) { p.Generation++; p.Spec.Addresses = nil }), want: true},
		{name: "labels", old: pool, new: with(func(p *v1alpha1.IPPool) { p.Labels = nil }), want: true},
		{name: "deletion starts", old: pool, new: with(func(p *v1alpha1.IPPool) { p.DeletionTimestamp = &metav1.Time{} }), want: true},
		{name: "a Secret has no generation: any change counts", old: secret, new: newSecret, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChanges("n1", kubeinput.NewSummaries(nil), nil)
			c.configDirty.Store(false)
			c.configHandler().OnUpdate(tt.old, tt.new)
			if got := c.configDirty.Load(); got != tt.want {
				t.Errorf("the model is rebuilt: %v, want %v", got, tt.want)
			}
		})
	}
}
