package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Config returns a new client configuration for AdminUser (system:masters), which the
// caller may modify.
func (cp *ControlPlane) Config() *rest.Config {
	return cp.configWithToken(cp.pki.tokensByUser[AdminUser])
}

// UserConfig returns a new client configuration that authenticates as the named user of
// Options.Users (or AdminUser). The user has only the permissions RBAC grants it.
func (cp *ControlPlane) UserConfig(name string) (*rest.Config, error) {
	token, ok := cp.pki.tokensByUser[name]
	if !ok {
		return nil, fmt.Errorf("controlplane: no user %q in the token file", name)
	}
	return cp.configWithToken(token), nil
}

// ImpersonateServiceAccount returns a new client configuration in which AdminUser
// impersonates the service account namespace/name. The apiserver adds the service-account
// groups, so RBAC sees the account exactly as a pod using it; the account need not exist.
func (cp *ControlPlane) ImpersonateServiceAccount(namespace, name string) *rest.Config {
	cfg := cp.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + name}
	return cfg
}

// ServiceAccountConfig creates the service account namespace/name (and its namespace) if
// missing, asks the apiserver for a token for it (TokenRequest, signed with the control
// plane's service-account key) and returns a client configuration using that token.
func (cp *ControlPlane) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	client, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		return nil, fmt.Errorf("controlplane: client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("controlplane: create namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("controlplane: create service account %s/%s: %w", namespace, name, err)
	}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("controlplane: request token for %s/%s: %w", namespace, name, err)
	}
	return cp.configWithToken(tr.Status.Token), nil
}

func (cp *ControlPlane) configWithToken(token string) *rest.Config {
	return &rest.Config{
		Host:            cp.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), cp.pki.caCertPEM...)},
		QPS:             -1, // no client-side rate limit: tests make bursts of requests
	}
}

// Kubectl returns a command running the kubectl built with the control plane (not one
// on PATH) as AdminUser, with the discovery cache inside Dir.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	args = append([]string{"--kubeconfig=" + cp.Kubeconfig, "--cache-dir=" + cp.kubectlDir}, args...)
	cmd := exec.CommandContext(ctx, cp.Binaries.Kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig)
	return cmd
}

// WriteKubeconfig writes a kubeconfig file holding cfg's server, CA and bearer token (and
// impersonated user, if any), for command-line tools and for processes such as kube-proxy.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	const name = "herald-e2e"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		Token:             cfg.BearerToken,
		Impersonate:       cfg.Impersonate.UserName,
		ImpersonateGroups: cfg.Impersonate.Groups,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("controlplane: write kubeconfig: %w", err)
	}
	return nil
}
