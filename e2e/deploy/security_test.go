package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// TestPodSecurity renders every install and checks the security settings of both
// workloads: the capabilities each may hold (the speaker NET_RAW, with the drain NET_ADMIN too, and nothing once layer 2
// is off; the controller nothing), no privilege escalation, a read-only root filesystem,
// the runtime's seccomp profile, a non-root controller, and the speaker on the host
// network, on every node.
func TestPodSecurity(t *testing.T) {
	bins := controlplane.RequireBinaries(t, "")
	speakerCaps := map[string][]corev1.Capability{
		"default":                           {"NET_RAW"},
		"overlays/layer2-only":              {"NET_RAW"},
		"overlays/bgp":                      nil,
		"overlays/load-balancer-class":      {"NET_RAW"},
		"overlays/cloud-controller-manager": {"NET_RAW"},
		"overlays/drain":                    {"NET_RAW", "NET_ADMIN"},
	}
	for _, install := range installs {
		t.Run(install, func(t *testing.T) {
			objs := render(t, bins.Kubectl, filepath.Join(deployDir(t), install))
			var ctrl appsv1.Deployment
			fromUnstructured(t, find(t, objs, "Deployment", controllerWorkload).Object, &ctrl)
			var spk appsv1.DaemonSet
			fromUnstructured(t, find(t, objs, "DaemonSet", speakerWorkload).Object, &spk)

			checkContainer(t, "controller", ctrl.Spec.Template.Spec, nil, "/readyz")
			checkContainer(t, "speaker", spk.Spec.Template.Spec, speakerCaps[install], "/readyz")
			checkOwnAddress(t, "controller", ctrl.Spec.Template.Spec, "--metrics-bind-address", "HERALD_POD_IP", "status.podIP")
			checkOwnAddress(t, "speaker", spk.Spec.Template.Spec, "--metrics-address", "HERALD_NODE_IP", "status.hostIP")
			if hasObject(objs, "Deployment", ccmWorkload) {
				checkCloudControllerManager(t, objs)
			}

			if got := ptr.Deref(ctrl.Spec.Replicas, 0); got != 2 {
				t.Errorf("controller replicas = %d, want 2", got)
			}
			pod := ctrl.Spec.Template.Spec
			if pod.SecurityContext == nil || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) {
				t.Errorf("controller pod does not set runAsNonRoot: %+v", pod.SecurityContext)
			}
			if pod.HostNetwork {
				t.Errorf("controller uses the host network")
			}

			sp := spk.Spec.Template.Spec
			if !sp.HostNetwork || sp.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
				t.Errorf("speaker: hostNetwork %v, dnsPolicy %q; want true, %q", sp.HostNetwork, sp.DNSPolicy, corev1.DNSClusterFirstWithHostNet)
			}
			if !slices.ContainsFunc(sp.Tolerations, func(tol corev1.Toleration) bool {
				return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
			}) {
				t.Errorf("speaker does not tolerate every taint, so it would miss tainted and control-plane nodes: %+v", sp.Tolerations)
			}
			ru := spk.Spec.UpdateStrategy.RollingUpdate
			if spk.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil ||
				ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
				t.Errorf("speaker update strategy %+v, want a rolling update of one node at a time", spk.Spec.UpdateStrategy)
			}
			// Added capabilities reach user 0 only; see the DaemonSet's comments.
			if u := sp.Containers[0].SecurityContext.RunAsUser; len(speakerCaps[install]) > 0 && (u == nil || *u != 0) {
				t.Errorf("speaker runs as user %v, but only user 0 receives added capabilities", u)
			}
		})
	}
}

// checkOwnAddress checks that a component serves /metrics and its health checks on its
// own address only: the container gets env from the downward API's fieldPath (the
// binary's default listen address is that address), and flag does not override it.
func checkOwnAddress(t *testing.T, name string, pod corev1.PodSpec, flag, env, fieldPath string) {
	t.Helper()
	c := pod.Containers[0]
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env }); i < 0 ||
		c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != fieldPath {
		t.Errorf("%s: no env %s from the downward API's %s: %+v", name, env, fieldPath, c.Env)
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			t.Errorf("%s: %s overrides the default, the pod's own address: /metrics and /healthz would listen on %q", name, a, strings.TrimPrefix(a, flag+"="))
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p != nil && p.HTTPGet != nil && p.HTTPGet.Host != "" {
			t.Errorf("%s: a probe asks host %q; the kubelet must probe the pod's address, where the endpoint listens", name, p.HTTPGet.Host)
		}
	}
}

// checkCloudControllerManager checks the cloud-controller-manager's Deployment as the
// controller's: no capability, not root, not on the host network, two replicas. The
// upstream manager serves /healthz only, which both its probes use.
func checkCloudControllerManager(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var ccm appsv1.Deployment
	fromUnstructured(t, find(t, objs, "Deployment", ccmWorkload).Object, &ccm)
	pod := ccm.Spec.Template.Spec
	checkContainer(t, "cloud-controller-manager", pod, nil, "/healthz")
	if got := ptr.Deref(ccm.Spec.Replicas, 0); got != 2 {
		t.Errorf("cloud-controller-manager replicas = %d, want 2", got)
	}
	if pod.SecurityContext == nil || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) {
		t.Errorf("cloud-controller-manager pod does not set runAsNonRoot: %+v", pod.SecurityContext)
	}
	if pod.HostNetwork {
		t.Errorf("cloud-controller-manager uses the host network")
	}
	if pod.ServiceAccountName != ccmAccount {
		t.Errorf("cloud-controller-manager runs as %q, want %q", pod.ServiceAccountName, ccmAccount)
	}
}

// hasObject reports whether objs hold an object of kind and name.
func hasObject(objs []*unstructured.Unstructured, kind, name string) bool {
	return slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind && o.GetName() == name })
}

// checkContainer checks the security settings every Herald container must have, that it
// adds exactly wantCaps, and that its readiness probe asks readyPath.
func checkContainer(t *testing.T, name string, pod corev1.PodSpec, wantCaps []corev1.Capability, readyPath string) {
	t.Helper()
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil ||
		pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccomp profile is not RuntimeDefault: %+v", name, pod.SecurityContext)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("%s: want exactly one container, got %d (and %d init containers)", name, len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("%s: container has no securityContext", name)
	}
	if ptr.Deref(sc.Privileged, false) {
		t.Errorf("%s: privileged", name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", name)
	}
	if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		t.Errorf("%s: the root filesystem is writable", name)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: capabilities.drop is not [ALL]: %+v", name, sc.Capabilities)
	} else if diff := cmp.Diff(wantCaps, sc.Capabilities.Add); diff != "" {
		t.Errorf("%s: added capabilities (-want +got):\n%s", name, diff)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("%s: no liveness probe on /healthz: %+v", name, c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != readyPath {
		t.Errorf("%s: no readiness probe on %s: %+v", name, readyPath, c.ReadinessProbe)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: want CPU and memory requests and a memory limit: %+v", name, c.Resources)
	}
}

func fromUnstructured(t *testing.T, obj map[string]any, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, into, true); err != nil {
		t.Fatalf("rendered %T does not convert: %v", into, err)
	}
}

// TestOverlayEffects checks that each overlay changes what it says it changes.
func TestOverlayEffects(t *testing.T) {
	bins := controlplane.RequireBinaries(t, "")
	build := func(t *testing.T, install string) []*unstructured.Unstructured {
		return render(t, bins.Kubectl, filepath.Join(deployDir(t), install))
	}
	has := hasObject
	t.Run("default lets the speaker read Secrets in herald-system", func(t *testing.T) {
		objs := build(t, "default")
		if !has(objs, "Role", speakerAccount) || !has(objs, "RoleBinding", speakerAccount) {
			t.Error("no Role and RoleBinding herald-speaker: the speaker could not read BGP passwords")
		}
	})
	t.Run("layer2-only: the speaker reads no Secret and holds no BFD port", func(t *testing.T) {
		objs := build(t, "overlays/layer2-only")
		if has(objs, "Role", speakerAccount) || has(objs, "RoleBinding", speakerAccount) {
			t.Error("the speaker's Secret-reading Role or RoleBinding is still there")
		}
		spk := find(t, objs, "DaemonSet", speakerWorkload)
		if a := args(t, spk); a[len(a)-1] != "--namespace=" {
			t.Errorf("speaker args %q do not end with --namespace= (watch no Secret)", a)
		}
		ports, _, _ := unstructured.NestedSlice(container(t, spk), "ports")
		for _, p := range ports {
			if p.(map[string]any)["containerPort"] == float64(3784) {
				t.Errorf("the BFD port is still declared: %v", p)
			}
		}
		if !has(objs, "Role", controllerAccount) {
			t.Error("the controller's Role went too")
		}
	})
	t.Run("load-balancer-class: both components serve one class", func(t *testing.T) {
		objs := build(t, "overlays/load-balancer-class")
		const flag = "--load-balancer-class=herald.dev/herald"
		for _, w := range []struct{ kind, name string }{{"Deployment", controllerWorkload}, {"DaemonSet", speakerWorkload}} {
			if a := args(t, find(t, objs, w.kind, w.name)); !slices.Contains(a, flag) {
				t.Errorf("%s args %q lack %s", w.name, a, flag)
			}
		}
	})
	t.Run("cloud-controller-manager: the manager serves Services without a class, herald-controller another class", func(t *testing.T) {
		objs := build(t, "overlays/cloud-controller-manager")
		for _, o := range []struct{ kind, name string }{
			{"Deployment", ccmWorkload}, {"ServiceAccount", ccmAccount}, {"ConfigMap", "herald-cloud-config"},
			{"ClusterRole", ccmAccount}, {"ClusterRoleBinding", ccmAccount}, {"Role", ccmAccount}, {"RoleBinding", ccmAccount},
			{"PodDisruptionBudget", ccmWorkload},
		} {
			if !has(objs, o.kind, o.name) {
				t.Errorf("no %s %s", o.kind, o.name)
			}
		}
		ccm := find(t, objs, "Deployment", ccmWorkload)
		if ns := ccm.GetNamespace(); ns != namespace {
			t.Errorf("the manager is in namespace %q, want %q", ns, namespace)
		}
		for _, flag := range []string{"--cloud-provider=herald", "--controllers=service", "--leader-elect=true",
			"--leader-elect-resource-name=" + ccmLease, "--leader-elect-resource-namespace=$(POD_NAMESPACE)"} {
			if a := args(t, ccm); !slices.Contains(a, flag) {
				t.Errorf("manager args %q lack %s", a, flag)
			}
		}
		if a := args(t, find(t, objs, "Deployment", controllerWorkload)); !slices.Contains(a, "--load-balancer-class=herald.dev/herald") {
			t.Errorf("herald-controller args %q lack --load-balancer-class=herald.dev/herald: it would serve the manager's Services too", a)
		}
		if a := args(t, find(t, objs, "DaemonSet", speakerWorkload)); slices.ContainsFunc(a, func(s string) bool {
			return strings.HasPrefix(s, "--load-balancer-class")
		}) {
			t.Errorf("speaker args %q set a class: the speakers would not announce the manager's Services", a)
		}
		// The authentication reader binding must stay in kube-system, where the role is.
		for _, o := range objs {
			if o.GetKind() == "RoleBinding" && o.GetName() == ccmAccount+":authentication-reader" && o.GetNamespace() != "kube-system" {
				t.Errorf("RoleBinding %s is in %q, want kube-system", o.GetName(), o.GetNamespace())
			}
		}
		for _, o := range objs {
			if o.GetNamespace() != "" && o.GetNamespace() != namespace && o.GetNamespace() != "kube-system" {
				t.Errorf("%s %s is in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
	})
}
