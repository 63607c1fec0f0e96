package kubeinput

import (
	corev1 "k8s.io/api/core/v1"
)

// ServesClass reports whether a speaker serving loadBalancerClass class
// (empty: Services without a class) handles svc. A Service without a class
// is served by speakers without one; with a class, only by speakers of that
// class, as spec.loadBalancerClass requires.
func ServesClass(svc *corev1.Service, class string) bool {
	if svc.Spec.LoadBalancerClass == nil {
		return class == ""
	}
	return *svc.Spec.LoadBalancerClass == class
}
