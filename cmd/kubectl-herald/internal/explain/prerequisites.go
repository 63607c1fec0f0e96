package explain

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/yaml"
)

// ParseKubeProxyConfig reads kube-proxy's configuration file (the
// KubeProxyConfiguration in kubeadm's ConfigMap, key config.conf).
func ParseKubeProxyConfig(data string) (*KubeProxy, error) {
	var cfg struct {
		Mode string `json:"mode"`
		IPVS struct {
			StrictARP bool `json:"strictARP"`
		} `json:"ipvs"`
	}
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return nil, fmt.Errorf("explain: kube-proxy configuration: %w", err)
	}
	return &KubeProxy{Mode: cfg.Mode, StrictARP: cfg.IPVS.StrictARP}, nil
}

// prerequisites writes the node-side checks: kube-proxy's mode, the
// exclusion label, the speakers and their membership port.
func prerequisites(w *writer, c Cluster, layer2 bool) {
	w.line(0, "Node-side prerequisites:")
	switch kp := c.KubeProxy; {
	case kp == nil:
		w.line(1, "kube-proxy: its configuration was not found (ConfigMap kube-system/kube-proxy). If it runs in IPVS mode, layer 2 needs ipvs.strictARP: true.")
	case kp.Mode == "ipvs" && !kp.StrictARP && layer2:
		w.line(1, "PROBLEM: kube-proxy runs in IPVS mode without strictARP: every node's kernel answers ARP for load-balancer addresses, so clients reach random nodes. Set ipvs.strictARP: true in ConfigMap kube-system/kube-proxy and restart kube-proxy.")
	case kp.Mode == "ipvs":
		w.line(1, "kube-proxy: IPVS mode, strictARP %v.", kp.StrictARP)
	default:
		w.line(1, "kube-proxy: %s mode: nothing to set for Herald.", orText(kp.Mode, "iptables (default)"))
	}
	var excluded, noSpeaker []string
	for _, n := range c.Nodes {
		if _, ok := n.Labels[corev1.LabelNodeExcludeBalancers]; ok {
			excluded = append(excluded, n.Name)
		}
		if !speakerReady(c.speaker(n.Name)) {
			noSpeaker = append(noSpeaker, n.Name)
		}
	}
	slices.Sort(excluded)
	slices.Sort(noSpeaker)
	if len(excluded) > 0 {
		w.line(1, "Nodes labelled %s never announce: %s (kubeadm labels control-plane nodes so; remove the label to let them).", corev1.LabelNodeExcludeBalancers, strings.Join(excluded, ", "))
	}
	if len(noSpeaker) > 0 {
		w.line(1, "Nodes without a running speaker: %s.", strings.Join(noSpeaker, ", "))
	}
	ready := 0
	for _, s := range c.Speakers {
		if speakerReady(s) {
			ready++
		}
	}
	// SpeakerStatus.Members is not rewritten when only the count changes,
	// so it cannot tell a blocked membership port from a stale record; the
	// port is stated instead.
	w.line(1, "Speakers: %d of %d nodes run one; they find each other on port %d (UDP and TCP), which must be open between nodes (a blocked port splits them, and each side announces on its own).", ready, len(c.Nodes), c.membershipPort())
}
