package deploy

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// TestExternalIPsPolicy installs deploy/components/external-ips-policy as shipped, with
// the ranges ConfigMap listing the pools' addresses, and writes Services' spec.externalIPs
// as a tenant (alice, who may edit Services in her namespaces) and as Herald's controller
// (its service account, impersonated). The tenant gets only what an IPPool allows her
// namespace; an address outside every pool, or in a pool that does not allow her
// namespace, is refused, so kube-proxy never programs it. The controller is not checked,
// and an address a Service already has does not block edits.
func TestExternalIPsPolicy(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{})
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	adminHerald := versioned.NewForConfigOrDie(cp.Config())

	// Pools: 203.0.113.0/28 for team-a by name; a range and an IPv6 CIDR for namespaces
	// labelled externalips=yes; 203.0.113.64/28 for no namespace.
	pools := []v1alpha1.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "by-name"}, Spec: v1alpha1.IPPoolSpec{
			Addresses:        []string{"203.0.113.0/28"},
			AllowExternalIPs: &v1alpha1.ExternalIPAllowance{Namespaces: []string{"team-a"}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "by-label"}, Spec: v1alpha1.IPPoolSpec{
			Addresses: []string{"203.0.113.32-203.0.113.40", "2001:db8:5::/120"},
			AllowExternalIPs: &v1alpha1.ExternalIPAllowance{NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "externalips", Operator: metav1.LabelSelectorOpIn, Values: []string{"yes"}}},
			}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "load-balancers-only"}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{"203.0.113.64/28"}}},
	}
	for _, p := range pools {
		if _, err := adminHerald.HeraldV1alpha1().IPPools().Create(ctx, &p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The built-in edit role is aggregated by kube-controller-manager, which does not run
	// here: a role of its own grants what a tenant does to Services.
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "service-editor"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "create", "update", "delete"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-c", Labels: map[string]string{"externalips": "yes"}}},
	} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if ns.Name == namespace {
			continue
		}
		// alice edits Services in the team namespaces, as a tenant would; the
		// controller's account updates them, as its ClusterRole lets it.
		if _, err := admin.RbacV1().RoleBindings(ns.Name).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "service-editors"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "service-editor"},
			Subjects: []rbacv1.Subject{
				{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: "alice"},
				{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: controllerAccount},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	component := filepath.Join(deployDir(t), "components", "external-ips-policy")
	for _, f := range []string{"policy.yaml", "ranges.yaml"} {
		if out, stderr, err := kubectl(ctx, cp, "apply", "-f", filepath.Join(component, f)); err != nil {
			t.Fatalf("kubectl apply -f %s: %v\n%s%s", f, err, out, stderr)
		}
	}

	aliceCfg, err := cp.UserConfig("alice")
	if err != nil {
		t.Fatal(err)
	}
	controllerCfg := cp.ImpersonateServiceAccount(namespace, controllerAccount)
	for _, cfg := range []*rest.Config{aliceCfg, controllerCfg} {
		// spec.externalIPs draws a deprecation warning; it is expected here.
		cfg.WarningHandler = rest.NoWarnings{}
	}
	alice := kubernetes.NewForConfigOrDie(aliceCfg)
	controller := kubernetes.NewForConfigOrDie(controllerCfg)

	// The shipped ConfigMap lists nothing: every external IP a tenant adds is refused.
	// The apiserver loads new policies within a second or so; wait for the refusal.
	waitRefused(t, alice, "team-a", "203.0.113.5", "may not be used as external IPs in this cluster")

	if _, err := admin.CoreV1().ConfigMaps(namespace).Patch(ctx, "herald-external-ip-ranges", "application/merge-patch+json",
		[]byte(`{"data":{"cidrs":"203.0.113.0/28, 203.0.113.32/27,\n2001:db8:5::/120 203.0.113.64/28"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	const outsideMsg = "may not be used as external IPs in this cluster"
	const poolMsg = "does not allow this namespace to use its addresses as external IPs"
	cases := []struct {
		name    string
		client  kubernetes.Interface
		ns      string
		ips     []string
		wantMsg string // empty: allowed
	}{
		{"tenant named by the pool", alice, "team-a", []string{"203.0.113.5"}, ""},
		{"tenant not named by the pool", alice, "team-b", []string{"203.0.113.5"}, "IPPool by-name " + poolMsg},
		{"tenant labelled for the pool, in its range", alice, "team-c", []string{"203.0.113.35"}, ""},
		{"tenant labelled for the pool, IPv6", alice, "team-c", []string{"2001:db8:5::10"}, ""},
		{"tenant labelled for the pool, both families", alice, "team-c", []string{"203.0.113.40", "2001:db8:5::11"}, ""},
		{"tenant not labelled, in the range", alice, "team-b", []string{"203.0.113.33"}, "IPPool by-label " + poolMsg},
		{"tenant not labelled, IPv6", alice, "team-a", []string{"2001:db8:5::12"}, "IPPool by-label " + poolMsg},
		{"a pool that allows no namespace", alice, "team-c", []string{"203.0.113.70"}, "IPPool load-balancers-only " + poolMsg},
		{"an address outside every range (CVE-2020-8554)", alice, "team-a", []string{"198.51.100.10"}, outsideMsg},
		{"an allowed and a refused address together", alice, "team-a", []string{"203.0.113.6", "198.51.100.10"}, outsideMsg},
		{"Herald's controller writes an allocated address", controller, "team-b", []string{"203.0.113.7"}, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.CoreV1().Services(tc.ns).Create(ctx, externalIPService(fmt.Sprintf("svc-%d", i), tc.ips), metav1.CreateOptions{})
			checkVerdict(t, err, tc.wantMsg)
		})
	}

	t.Run("an address the Service already has does not block edits", func(t *testing.T) {
		svc, err := controller.CoreV1().Services("team-b").Create(ctx, externalIPService("kept", []string{"203.0.113.8"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Labels = map[string]string{"edited": "yes"}
		svc, err = alice.CoreV1().Services("team-b").Update(ctx, svc, metav1.UpdateOptions{})
		checkVerdict(t, err, "")
		if err != nil {
			return
		}
		svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, "2001:db8:5::13")
		_, err = alice.CoreV1().Services("team-b").Update(ctx, svc, metav1.UpdateOptions{})
		checkVerdict(t, err, "2001:db8:5::13 may not be used in namespace team-b: IPPool by-label")
	})
}

// externalIPService is a ClusterIP Service with the given spec.externalIPs.
func externalIPService(name string, ips []string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector:    map[string]string{"app": name},
			Ports:       []corev1.ServicePort{{Name: "http", Port: 80}},
			ExternalIPs: ips,
		},
	}
}

// checkVerdict checks that err is nil when wantMsg is empty, and otherwise a 403 whose
// message contains wantMsg.
func checkVerdict(t *testing.T, err error, wantMsg string) {
	t.Helper()
	switch {
	case wantMsg == "" && err != nil:
		t.Errorf("want it allowed, got %v", err)
	case wantMsg != "" && err == nil:
		t.Errorf("want it refused with %q, but it was allowed", wantMsg)
	case wantMsg != "" && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), wantMsg)):
		t.Errorf("want 403 Forbidden containing %q, got %v", wantMsg, err)
	}
}

// waitRefused creates Services with ip in ns until one is refused with wantMsg, for the
// time the apiserver takes to load new policies.
func waitRefused(t *testing.T, c kubernetes.Interface, ns, ip, wantMsg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		name := fmt.Sprintf("wait-%d", i)
		_, err := c.CoreV1().Services(ns).Create(ctx, externalIPService(name, []string{ip}), metav1.CreateOptions{})
		if err != nil && strings.Contains(err.Error(), wantMsg) {
			return
		}
		if err == nil {
			_ = c.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the policies never refused %s in %s; last answer: %v", ip, ns, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
