package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// poolPrefix is the measurement's one pool: 65,536 documentation addresses.
var poolPrefix = netip.MustParsePrefix("2001:db8:100::/112")

const (
	heraldNamespace  = "herald-system"
	latencyNamespace = "latency"
	bulkNamespace    = "bulk"
)

// lab is a control plane with the controller running as a process.
type lab struct {
	opts       options
	bin        string
	cp         *controlplane.ControlPlane
	kube       kubernetes.Interface
	apiserver  int // kube-apiserver's pid
	ctrl       *controllerProcess
	watch      *watcher
	generation int // controller processes started
}

// startLab starts a control plane, the pool, the watcher and the controller,
// and waits until the controller is ready.
func startLab(ctx context.Context, o options, bin string) (*lab, error) {
	cp, kube, err := startControlPlane(ctx, o)
	if err != nil {
		return nil, err
	}
	l := &lab{opts: o, bin: bin, cp: cp, kube: kube}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	if l.apiserver, err = apiserverPID(cp); err != nil {
		return nil, err
	}
	herald, err := versioned.NewForConfig(cp.Config())
	if err != nil {
		return nil, err
	}
	if err := createNamespaces(ctx, kube, heraldNamespace, latencyNamespace, bulkNamespace); err != nil {
		return nil, err
	}
	if _, err := herald.HeraldV1alpha1().IPPools().Create(ctx, &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "measure"},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []string{poolPrefix.String()}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create ippool: %w", err)
	}
	if l.watch, err = startWatcher(ctx, kube); err != nil {
		return nil, err
	}
	if _, err := l.startController(ctx); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// startControlPlane starts etcd and kube-apiserver and returns a client
// without a client-side rate limit, speaking protobuf.
func startControlPlane(ctx context.Context, o options) (*controlplane.ControlPlane, kubernetes.Interface, error) {
	if _, err := controlplane.FindBinaries(""); err != nil {
		return nil, nil, err
	}
	var opts controlplane.Options
	if o.profileDir != "" {
		opts.ExtraAPIServerArgs = []string{"--profiling=true"}
	}
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("start control plane: %w", err)
	}
	kube, err := kubernetes.NewForConfig(fastConfig(cp.Config()))
	if err != nil {
		_ = cp.Stop()
		return nil, nil, err
	}
	return cp, kube, nil
}

// fastConfig removes the client-side rate limit and speaks protobuf, so the
// measuring client is limited only by the apiserver.
func fastConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.WarningHandler = rest.NoWarnings{}
	return cfg
}

func createNamespaces(ctx context.Context, kube kubernetes.Interface, names ...string) error {
	for _, n := range names {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", n, err)
		}
	}
	return nil
}

// close stops the controller, the watcher and the control plane.
func (l *lab) close() {
	if l.ctrl != nil {
		l.ctrl.kill()
	}
	if l.watch != nil {
		l.watch.stop()
	}
	if err := l.cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
	}
}

// services returns how many Services the watcher has seen.
func (l *lab) services() int { return l.watch.count() }

// startController starts a new controller process and waits for /readyz.
// It returns the time from the process start to the first ok.
func (l *lab) startController(ctx context.Context) (time.Duration, error) {
	l.generation++
	kubeconfig := filepath.Join(l.opts.dir, "kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, l.cp.Config()); err != nil {
		return 0, err
	}
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--namespace=" + heraldNamespace,
		"--leader-elect=true",
		"--leader-elect-lease-namespace=" + heraldNamespace,
		"--leader-elect-identity=measure-" + fmt.Sprint(l.generation),
		"--metrics-bind-address=" + addr,
		"--log-format=text",
	}
	if l.opts.workers > 0 {
		args = append(args, fmt.Sprintf("--workers=%d", l.opts.workers))
	}
	args = append(args, strings.Fields(l.opts.extraArgs)...)
	logPath := filepath.Join(l.opts.dir, fmt.Sprintf("controller-%d.log", l.generation))
	p, err := startControllerProcess(l.bin, args, logPath, addr)
	if err != nil {
		return 0, err
	}
	l.ctrl = p
	ready, err := p.waitReady(ctx, 2*time.Minute)
	if err != nil {
		return 0, fmt.Errorf("%w; log tail:\n%s", err, tail(logPath, 20))
	}
	return ready, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildController builds cmd/herald-controller into out.
func buildController(ctx context.Context, out string) (string, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return "", err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/herald-controller")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/herald-controller: %w\n%s", err, b)
	}
	fmt.Printf("built herald-controller in %v\n", since(start))
	return out, nil
}

// apiserverPID finds the control plane's kube-apiserver process by its
// command line (the etcd URL is unique to this control plane).
func apiserverPID(cp *controlplane.ControlPlane) (int, error) {
	pid, err := findProcess(func(args []string) bool {
		return len(args) > 0 && args[0] == cp.Binaries.KubeAPIServer && contains(args, "--etcd-servers="+cp.EtcdURL)
	})
	if err != nil {
		return 0, fmt.Errorf("find kube-apiserver: %w", err)
	}
	return pid, nil
}

func contains(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

// findProcess returns the pid of the one process whose argv matches.
func findProcess(match func([]string) bool) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			return pid, nil
		}
	}
	return 0, errors.New("no such process")
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// profileAPIServer saves a CPU profile of kube-apiserver over seconds into
// path.
func profileAPIServer(ctx context.Context, kube kubernetes.Interface, path string, seconds int) error {
	b, err := kube.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", fmt.Sprint(seconds)).Timeout(time.Duration(seconds+30) * time.Second).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("profile kube-apiserver: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}
