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
	"k8s.io/utils/ptr"
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
	if err := ensureServiceAccount(ctx, client, namespace, name); err != nil {
		return nil, err
	}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("controlplane: request token for %s/%s: %w", namespace, name, err)
	}
	return cp.configWithToken(tr.Status.Token), nil
}

// PodBoundServiceAccountConfig returns a client configuration that authenticates as the
// service account namespace/account with a token bound to a Pod on node, as the kubelet
// mounts one into each pod: the apiserver then puts the node's name into the token's user
// information (extra authentication.kubernetes.io/node-name), which admission policies
// can check. It creates, as AdminUser, what is missing of the namespace, the service
// account, the Node (without status: no kubelet runs) and the Pod, named
// "<account>-<node>" and bound to node through spec.nodeName. The token is valid for a
// day, or until the Pod is deleted.
func (cp *ControlPlane) PodBoundServiceAccountConfig(ctx context.Context, namespace, account, node string) (*rest.Config, error) {
	client, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		return nil, fmt.Errorf("controlplane: client: %w", err)
	}
	if err := ensureServiceAccount(ctx, client, namespace, account); err != nil {
		return nil, err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("controlplane: create node %s: %w", node, err)
	}
	pods := client.CoreV1().Pods(namespace)
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: account + "-" + node},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			ServiceAccountName:           account,
			AutomountServiceAccountToken: ptr.To(false),
			// No kubelet runs the Pod; it only anchors the token to node.
			Containers: []corev1.Container{{Name: "anchor", Image: "herald-e2e.invalid/none"}},
		},
	}, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		pod, err = pods.Get(ctx, account+"-"+node, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("controlplane: create pod for %s/%s on %s: %w", namespace, account, node, err)
	}
	if pod.Spec.NodeName != node || pod.Spec.ServiceAccountName != account {
		return nil, fmt.Errorf("controlplane: pod %s/%s exists on node %q as %q, want node %q as %q",
			namespace, pod.Name, pod.Spec.NodeName, pod.Spec.ServiceAccountName, node, account)
	}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](24 * 3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("controlplane: request a token for %s/%s bound to pod %s: %w", namespace, account, pod.Name, err)
	}
	return cp.configWithToken(tr.Status.Token), nil
}

// ensureServiceAccount creates the namespace and the service account namespace/name
// where missing.
func ensureServiceAccount(ctx context.Context, client kubernetes.Interface, namespace, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("controlplane: create namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("controlplane: create service account %s/%s: %w", namespace, name, err)
	}
	return nil
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
