package controller

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// IngressFor returns the status.loadBalancer.ingress entries for addrs, with
// ipMode VIP (what the apiserver would fill in).
func IngressFor(addrs []netip.Addr) []corev1.LoadBalancerIngress {
	if len(addrs) == 0 {
		return nil
	}
	out := make([]corev1.LoadBalancerIngress, len(addrs))
	for i, a := range addrs {
		mode := corev1.LoadBalancerIPModeVIP
		out[i] = corev1.LoadBalancerIngress{IP: a.String(), IPMode: &mode}
	}
	return out
}
