package speaker_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/speaker"
)

// TestAcceptedExternalIPsMatchesController checks that the speaker's copy of
// the controller's condition parsing announces exactly the external IPs the
// controller says it accepted. (The speaker does not import the controller;
// this test, outside both, keeps the two in step.)
func TestAcceptedExternalIPsMatchesController(t *testing.T) {
	messages := []string{
		`Accepted 203.0.113.5 from IPPool "external".`,
		`Accepted 203.0.113.5, 2001:db8::5 from IPPool "external". Some words for people.`,
		`Accepted 203.0.113.6 from IPPool "external".`,
		`Accepted 203.0.113.5 from IPPool "ext\"ernal".`,
		`Allocated 203.0.113.5 from IPPool "external".`,
		`Accepted 203.0.113.5 from IPPool external.`,
		`Accepted 203.0.113.5 from`,
		`Accepted nonsense from IPPool "external".`,
		``,
	}
	externalIPs := [][]string{
		{"203.0.113.5"},
		{"203.0.113.5", "2001:db8::5", "203.0.113.7"},
		{" 203.0.113.6 ", "bad"},
	}
	cmpAddrs := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	for _, msg := range messages {
		for _, status := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse} {
			for _, ips := range externalIPs {
				svc := &corev1.Service{
					Spec: corev1.ServiceSpec{ExternalIPs: ips},
					Status: corev1.ServiceStatus{Conditions: []metav1.Condition{{
						Type: controller.ConditionExternalIPsAccepted, Status: status, Message: msg,
					}}},
				}
				want, got := controller.AcceptedExternalIPs(svc), speaker.AcceptedExternalIPs(svc)
				if diff := cmp.Diff(want, got, cmpAddrs); diff != "" {
					t.Errorf("message %q, %s, externalIPs %q: (-controller +speaker):\n%s", msg, status, ips, diff)
				}
			}
		}
	}
	if controller.ConditionExternalIPsAccepted != speaker.ConditionExternalIPsAccepted {
		t.Errorf("condition types differ: controller %q, speaker %q", controller.ConditionExternalIPsAccepted, speaker.ConditionExternalIPsAccepted)
	}
}
