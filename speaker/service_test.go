package speaker

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-dev/herald/config"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceAddresses(t *testing.T) {
	accepted := func(status metav1.ConditionStatus, msg string) []metav1.Condition {
		return []metav1.Condition{{Type: config.ConditionExternalIPsAccepted, Status: status, Message: msg}}
	}
	lb := func(ips ...string) corev1.LoadBalancerStatus {
		var s corev1.LoadBalancerStatus
		for _, ip := range ips {
			s.Ingress = append(s.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	tests := []struct {
		name string
		svc  corev1.Service
		want []string
	}{
		{
			name: "load balancer ingress, sorted and unmapped, hostnames and junk skipped",
			svc: corev1.Service{
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "2001:db8:1::1:5"}, {IP: "::ffff:198.51.100.130"}, {Hostname: "lb.example"}, {IP: "nope"}, {IP: "198.51.100.130"},
				}}},
			},
			want: []string{"198.51.100.130", "2001:db8:1::1:5"},
		},
		{
			name: "ingress of a Service that is no longer a LoadBalancer is ignored",
			svc:  corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}, Status: corev1.ServiceStatus{LoadBalancer: lb("198.51.100.130")}},
		},
		{
			name: "external IPs need the controller's True condition listing them",
			svc: corev1.Service{
				Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ExternalIPs: []string{"203.0.113.5", "203.0.113.6", " 2001:db8::5 "}},
				Status: corev1.ServiceStatus{Conditions: accepted(metav1.ConditionTrue, `Accepted 203.0.113.5, 2001:db8::5 from IPPool "external". More words.`)},
			},
			want: []string{"203.0.113.5", "2001:db8::5"},
		},
		{
			name: "an external IP listed by a False condition is not announced",
			svc: corev1.Service{
				Spec:   corev1.ServiceSpec{ExternalIPs: []string{"203.0.113.5"}},
				Status: corev1.ServiceStatus{Conditions: accepted(metav1.ConditionFalse, `Accepted 203.0.113.5 from IPPool "external".`)},
			},
		},
		{
			name: "an external IP with a message of another form is not announced",
			svc: corev1.Service{
				Spec:   corev1.ServiceSpec{ExternalIPs: []string{"203.0.113.5"}},
				Status: corev1.ServiceStatus{Conditions: accepted(metav1.ConditionTrue, `Accepted 203.0.113.5 somewhere`)},
			},
		},
		{
			name: "an external IP without the condition is not announced (CVE-2020-8554)",
			svc:  corev1.Service{Spec: corev1.ServiceSpec{ExternalIPs: []string{"203.0.113.5"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range ServiceAddresses(&tt.svc) {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ServiceAddresses (-want +got):\n%s", diff)
			}
		})
	}
}

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
		svc := &corev1.Service{Spec: corev1.ServiceSpec{LoadBalancerClass: tt.svcClass}}
		if got := ServesClass(svc, tt.speakerClass); got != tt.want {
			t.Errorf("ServesClass(class %v, speaker %q) = %v, want %v", tt.svcClass, tt.speakerClass, got, tt.want)
		}
	}
}
