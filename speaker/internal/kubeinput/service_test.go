package kubeinput

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestServesClass(t *testing.T) {
	class := "herald.dev/lb"
	other := "example.com/lb"
	for _, tt := range []struct {
		svcClass     *string
		speakerClass string
		want         bool
	}{
		{nil, "", true},
		{nil, class, false},
		{&class, "", false},
		{&class, class, true},
		{&other, class, false},
	} {
		svc := cacheService(&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: tt.svcClass}})
		if got := ServesClass(svc, tt.speakerClass); got != tt.want {
			t.Errorf("ServesClass(class %v, speaker %q) = %v, want %v", tt.svcClass, tt.speakerClass, got, tt.want)
		}
	}
}
