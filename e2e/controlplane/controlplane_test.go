package controlplane_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/metallb"
)

func TestVersionsMatchBuildModules(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		goMod, module, want string
	}{
		{"e2e/controlplane/build/kube/go.mod", "k8s.io/kubernetes", controlplane.KubernetesVersion},
		{"e2e/controlplane/build/etcd/go.mod", "go.etcd.io/etcd/server/v3", controlplane.EtcdVersion},
		{"e2e/metallb/build/go.mod", metallb.Module, metallb.Version},
		{"e2e/controlplane/build/containerd/go.mod", "github.com/containerd/containerd/v2", controlplane.ContainerdVersion},
		{"e2e/controlplane/build/containerd/go.mod", "github.com/containernetworking/plugins", controlplane.CNIPluginsVersion},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, tt.goMod))
			if err != nil {
				t.Fatal(err)
			}
			re := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(tt.module) + `\s+(v\S+)\s*(?://.*)?$`)
			m := re.FindSubmatch(data)
			if m == nil {
				t.Fatalf("%s does not require %s", tt.goMod, tt.module)
			}
			if got := string(m[1]); got != tt.want {
				t.Errorf("%s requires %s %s, the package constant says %s", tt.goMod, tt.module, got, tt.want)
			}
		})
	}
}

func TestFindBinariesNamesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := controlplane.FindBinaries(dir)
	if err == nil {
		t.Fatal("FindBinaries succeeded with three binaries missing")
	}
	for _, want := range []string{"kube-apiserver, kube-proxy, kubectl", dir, controlplane.BuildCommand} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(err.Error()) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if regexp.MustCompile(`\betcd\b.*not found`).MatchString(err.Error()) {
		t.Errorf("error %q names etcd, which exists", err)
	}
}

func TestSplitYAML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one document", "a: 1\n", []string{"a: 1\n"}},
		{"leading separator", "---\na: 1\n", []string{"a: 1\n"}},
		{"two documents", "a: 1\n---\nb: 2\n", []string{"a: 1\n", "b: 2\n"}},
		{"comment-only documents dropped", "# header\n---\na: 1\n---\n# trailer\n", []string{"a: 1\n"}},
		{"separator with comment", "a: 1\n--- # next\nb: 2\n", []string{"a: 1\n", "b: 2\n"}},
		{"dashes inside a value kept", "a: |\n  ---x\n", []string{"a: |\n  ---x\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, d := range controlplane.SplitYAML([]byte(tt.in)) {
				got = append(got, string(d))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SplitYAML (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadCRDsWithoutManifests(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.ReadCRDs(dir); !errors.Is(err, controlplane.ErrNoCRDs) {
		t.Errorf("ReadCRDs of a directory without CRDs: got %v, want ErrNoCRDs", err)
	}
}

// TestControlPlane starts a control plane and checks what the harness promises: the pinned
// version runs, the identities authenticate as themselves and RBAC applies to them, service
// accounts work both by impersonation and by signed token, dual-stack Services get
// addresses from the configured ranges, and kubectl works with the kubeconfig.
func TestControlPlane(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{SkipCRDs: true})
	t.Logf("ready after %v", cp.ReadyAfter)
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())

	t.Run("version", func(t *testing.T) {
		v, err := admin.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != controlplane.KubernetesVersion {
			t.Errorf("server version %s, want %s", v.GitVersion, controlplane.KubernetesVersion)
		}
	})

	t.Run("identities", func(t *testing.T) {
		alice := mustUserConfig(t, cp, "alice")
		saToken, err := cp.ServiceAccountConfig(ctx, "herald-system", "speaker")
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			cfg       *rest.Config
			user      string
			hasGroups []string
		}{
			{"admin", cp.Config(), controlplane.AdminUser, []string{"system:masters", "system:authenticated"}},
			{"alice", alice, "alice", []string{"system:authenticated"}},
			{"impersonated service account", cp.ImpersonateServiceAccount("herald-system", "controller"),
				"system:serviceaccount:herald-system:controller", []string{"system:serviceaccounts", "system:serviceaccounts:herald-system"}},
			{"service account token", saToken,
				"system:serviceaccount:herald-system:speaker", []string{"system:serviceaccounts", "system:serviceaccounts:herald-system"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				review, err := kubernetes.NewForConfigOrDie(tt.cfg).AuthenticationV1().SelfSubjectReviews().
					Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got := review.Status.UserInfo
				if got.Username != tt.user {
					t.Errorf("user %q, want %q", got.Username, tt.user)
				}
				for _, g := range tt.hasGroups {
					if !slices.Contains(got.Groups, g) {
						t.Errorf("groups %v lack %q", got.Groups, g)
					}
				}
			})
		}
	})

	t.Run("rbac", func(t *testing.T) {
		bob := kubernetes.NewForConfigOrDie(mustUserConfig(t, cp, "bob"))
		if _, err := bob.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("bob lists namespaces before any grant: got %v, want Forbidden", err)
		}
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "namespace-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}}},
		}
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		grant := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "bob-reads-namespaces"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "bob"}},
		}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, grant, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The RBAC authorizer reads bindings from an informer: allow it a moment to see this one.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := bob.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
				t.Fatalf("bob lists namespaces after the grant: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := bob.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("bob lists secrets, which nothing granted: got %v, want Forbidden", err)
		}
	})

	t.Run("dual-stack service", func(t *testing.T) {
		policy := corev1.IPFamilyPolicyRequireDualStack
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "dual", Namespace: "default"},
			Spec: corev1.ServiceSpec{
				Type:           corev1.ServiceTypeLoadBalancer,
				IPFamilyPolicy: &policy,
				Ports:          []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}
		got, err := admin.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.ClusterIPs) != 2 {
			t.Fatalf("clusterIPs %v, want one per family", got.Spec.ClusterIPs)
		}
		for i, s := range got.Spec.ClusterIPs {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				t.Fatal(err)
			}
			if r := cp.ServiceClusterIPRanges[i]; !r.Contains(ip) {
				t.Errorf("clusterIP %v outside range %v", ip, r)
			}
		}
		if got.Spec.Ports[0].NodePort == 0 {
			t.Errorf("LoadBalancer Service got no node port")
		}
	})

	t.Run("kubectl", func(t *testing.T) {
		out, err := cp.Kubectl(ctx, "version", "-o", "json").Output()
		if err != nil {
			t.Fatalf("kubectl version: %v\n%s", err, exitStderr(err))
		}
		var v struct {
			ClientVersion struct{ GitVersion string }
			ServerVersion struct{ GitVersion string }
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("parse kubectl version: %v\n%s", err, out)
		}
		want := controlplane.KubernetesVersion
		if v.ClientVersion.GitVersion != want || v.ServerVersion.GitVersion != want {
			t.Errorf("kubectl version: client %s, server %s, want %s for both", v.ClientVersion.GitVersion, v.ServerVersion.GitVersion, want)
		}
	})
}

// TestStopRemovesEverything checks that Stop ends both process groups and removes the
// temporary directory.
func TestStopRemovesEverything(t *testing.T) {
	controlplane.RequireBinaries(t, "")
	cp, err := controlplane.Start(t.Context(), controlplane.Options{SkipCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	pids := processPIDs(t, cp)
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, cp.Dir, pids)
	if err := cp.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestPersistentDir checks that a control plane started in a kept directory keeps its
// data across a restart and leaves the directory in place.
func TestPersistentDir(t *testing.T) {
	controlplane.RequireBinaries(t, "")
	dir := t.TempDir()
	opts := controlplane.Options{Dir: dir, SkipCRDs: true}
	cp, err := controlplane.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd")); err != nil {
		t.Fatalf("etcd data gone after Stop of a kept directory: %v", err)
	}

	cp, err = controlplane.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	got, err := kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().ConfigMaps("default").Get(t.Context(), "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap written before the restart: %v", err)
	}
	if diff := cmp.Diff(cm.Data, got.Data); diff != "" {
		t.Errorf("ConfigMap data after restart (-want +got):\n%s", diff)
	}
}

func mustUserConfig(t *testing.T, cp *controlplane.ControlPlane, name string) *rest.Config {
	t.Helper()
	cfg, err := cp.UserConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRestartAPIServer: the apiserver comes back on the same URL with the same
// data, and a client made before the restart works after it, whether the
// apiserver was stopped gracefully or killed.
func TestRestartAPIServer(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{SkipCRDs: true})
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}}
	if _, err := admin.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, grace := range []time.Duration{5 * time.Second, 0} {
		if err := cp.RestartAPIServer(t.Context(), grace); err != nil {
			t.Fatalf("restart (grace %v): %v", grace, err)
		}
		if _, err := admin.CoreV1().ConfigMaps("default").Get(t.Context(), "kept", metav1.GetOptions{}); err != nil {
			t.Fatalf("after a restart (grace %v): %v", grace, err)
		}
	}
}
