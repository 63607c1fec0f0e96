package cli

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-dev/herald/config"
)

func addrsOf(svc *corev1.Service) []netip.Addr { return config.LoadBalancerAddresses(svc) }
