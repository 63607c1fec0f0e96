package productlab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
)

// ControllerAccount is the controller's ServiceAccount in Namespace, as
// deploy/controller names it.
const ControllerAccount = "herald-controller"

// MemberlistSecret is the gossip key Secret the controller creates
// (--memberlist-secret-name in deploy/controller) and the speakers mount.
const MemberlistSecret = "herald-memberlist"

// startPod starts w's container on host as the kubelet would for a Pod with facts
// (Options.Manifests): the manifests' command line with the binary at labBinaryDir,
// then the kubeconfig (at /etc/herald/kubeconfig) and labFlags, each one of
// labOnlyFlags, then the test's extra flags; each of volumes (directory name to files) at
// /etc/herald/<name>, mode 0400 as the manifests' Secret volume; all under the
// container's privileges and read-only root.
func (l *Lab) startPod(w Workload, facts PodFacts, host *netlab.Host, name, binary, kubeconfig string, labFlags, extra []string, secrets map[string]map[string][]byte) *netlab.Process {
	l.T.Helper()
	argv, env, err := w.Command(facts)
	if err == nil {
		argv, err = labCommand(argv, binary, append([]string{"--kubeconfig=/etc/herald/kubeconfig"}, labFlags...), extra)
	}
	if err != nil {
		l.T.Fatalf("%v", err)
	}
	priv, err := w.Privileges()
	if err != nil {
		l.T.Fatalf("%v", err)
	}
	etc := filepath.Join(l.opts.Dir, "pods", host.Name()+"-"+name, "etc")
	files := map[string]fileSpec{
		filepath.Join("herald", "bin", filepath.Base(argv[0])): {from: binary, mode: 0o755},
		filepath.Join("herald", "kubeconfig"):                  {from: kubeconfig, mode: 0o644},
	}
	mounts, err := w.secretMounts()
	if err != nil {
		l.T.Fatalf("%v", err)
	}
	for secret, dir := range mounts {
		entries, ok := secrets[secret]
		if !ok {
			l.T.Fatalf("productlab: %s mounts the Secret %s, which the lab does not provide", w.Container.Name, secret)
		}
		for f, data := range entries {
			files[filepath.Join(dir, f)] = fileSpec{data: data, mode: 0o400}
		}
	}
	if err := writeTree(etc, files); err != nil {
		l.T.Fatalf("productlab: %s on %s: %v", name, host.Name(), err)
	}
	return host.StartProcess(netlab.ProcessSpec{Name: name, Args: sandboxArgs(priv, etc, env, argv)})
}

// fileSpec is a file writeTree writes: a copy of from, or data.
type fileSpec struct {
	from string
	data []byte
	mode os.FileMode
}

// writeTree replaces dir with files (paths relative to dir), every directory 0755 so
// that a process of any user can reach them through the overlay.
func writeTree(dir string, files map[string]fileSpec) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for rel, f := range files {
		p := filepath.Join(dir, rel)
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(d, 0o755); err != nil {
				return err
			}
			if d == dir {
				break
			}
		}
		data := f.data
		if f.from != "" {
			var err error
			if data, err = os.ReadFile(f.from); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// controllerKubeconfig returns the path of a kubeconfig, made the first time, that
// authenticates as the controller's ServiceAccount with a token bound to a Pod on
// node1 and reaches the apiserver through the lab.
func (l *Lab) controllerKubeconfig() string {
	l.T.Helper()
	path := filepath.Join(l.opts.Dir, "controller.kubeconfig")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	cfg, err := l.CP.PodBoundServiceAccountConfig(l.T.Context(), Namespace, ControllerAccount, l.Cluster.Nodes[0].Name())
	if err != nil {
		l.T.Fatalf("productlab: controller token: %v", err)
	}
	if err := l.Cluster.WriteKubeconfig(path, cfg); err != nil {
		l.T.Fatalf("productlab: %v", err)
	}
	return path
}

// memberlistKeys waits until the controller's leader has created the gossip key
// Secret and returns its data, the files the kubelet would mount.
func (l *Lab) memberlistKeys() map[string][]byte {
	l.T.Helper()
	var data map[string][]byte
	netlab.Eventually(l.T, 60*time.Second, func(ctx context.Context) error {
		s, err := l.Kube.CoreV1().Secrets(Namespace).Get(ctx, MemberlistSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("the controller has not created the Secret %s/%s yet", Namespace, MemberlistSecret)
		}
		if err != nil {
			return err
		}
		data = s.Data
		return nil
	})
	return data
}
