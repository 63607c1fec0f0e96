package metallb

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// Namespace is where the labs run MetalLB: its configuration, its speakers'
// Pod objects and ServiceAccount.
const Namespace = "metallb-system"

// InstallCRDs installs MetalLB's CRDs from crdDir (Binaries.CRDDir) through
// cfg, first widening every integer of format int32 whose maximum lies beyond
// int32 to int64: MetalLB v0.15.3's BGPPeer declares its AS numbers that way,
// and the labs' kube-apiserver refuses every object of such a CRD ("Maximum
// boundary value must be of type integer with format int32"); later MetalLB
// releases declare them int64. It returns the paths it widened, for the
// caller to log.
func InstallCRDs(ctx context.Context, cfg *rest.Config, crdDir string) (widened []string, err error) {
	crds, err := controlplane.ReadCRDs(crdDir)
	if err != nil {
		return nil, fmt.Errorf("metallb: CRDs in %s: %w", crdDir, err)
	}
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if v.Schema != nil {
				widened = append(widened, WidenInt32Formats(v.Schema.OpenAPIV3Schema, crd.Name+"/"+v.Name)...)
			}
		}
	}
	if _, err := controlplane.InstallCRDs(ctx, cfg, crds); err != nil {
		return widened, fmt.Errorf("metallb: install CRDs: %w", err)
	}
	return widened, nil
}

// WidenInt32Formats changes, in s and below, every integer of format int32
// whose maximum is beyond int32 to int64, and returns the paths it changed.
func WidenInt32Formats(s *apiextensionsv1.JSONSchemaProps, path string) []string {
	if s == nil {
		return nil
	}
	var changed []string
	if s.Format == "int32" && s.Maximum != nil && *s.Maximum > math.MaxInt32 {
		s.Format = "int64"
		changed = append(changed, path)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		p := s.Properties[name]
		changed = append(changed, WidenInt32Formats(&p, path+"."+name)...)
		s.Properties[name] = p
	}
	if s.Items != nil {
		changed = append(changed, WidenInt32Formats(s.Items.Schema, path+"[]")...)
	}
	return changed
}

// SpeakerPodName is the name of the Pod object of node's speaker.
func SpeakerPodName(node string) string { return "speaker-" + node }

// CreateSpeakerPods creates, in Namespace (which must exist), the
// ServiceAccount "speaker" and one Pod object per node for its speaker
// (host network, Pending: the labs have no kubelet). MetalLB's speaker reads
// its own Pod at start and exits without it.
func CreateSpeakerPods(ctx context.Context, kube kubernetes.Interface, nodes ...string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "speaker"}}
	if _, err := kube.CoreV1().ServiceAccounts(Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("metallb: create the speakers' ServiceAccount: %w", err)
	}
	for _, node := range nodes {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: SpeakerPodName(node),
				Labels: map[string]string{"app": "metallb", "component": "speaker"}},
			Spec: corev1.PodSpec{NodeName: node, HostNetwork: true, ServiceAccountName: sa.Name,
				Containers: []corev1.Container{{Name: "speaker", Image: "quay.io/metallb/speaker:" + Version}}},
		}
		if _, err := kube.CoreV1().Pods(Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("metallb: create the Pod of %s's speaker: %w", node, err)
		}
	}
	return nil
}

// SpeakerArgs is the command line of node's speaker, serving /metrics on
// host:port, without memberlist (--ml-bindaddr unset: every node is then
// eligible for layer 2, as MetalLB documents for that mode). The kubeconfig
// comes from the environment (KUBECONFIG).
func (b Binaries) SpeakerArgs(node, host string, port int, extra ...string) []string {
	return append([]string{b.Speaker, "--namespace=" + Namespace, "--node-name=" + node, "--pod-name=" + SpeakerPodName(node),
		fmt.Sprintf("--host=%s", host), fmt.Sprintf("--port=%d", port), "--log-level=info"}, extra...)
}

// ControllerArgs is the command line of the controller, without its webhooks,
// serving /metrics on port.
func (b Binaries) ControllerArgs(port int) []string {
	return []string{b.Controller, "--namespace=" + Namespace, "--webhook-mode=disabled", "--disable-cert-rotation",
		fmt.Sprintf("--port=%d", port), "--log-level=info"}
}
