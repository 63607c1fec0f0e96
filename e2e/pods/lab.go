// Package pods runs Herald the way a cluster runs it: the manifests of deploy/default,
// applied unchanged to the real API server, become real pods. Next to etcd and
// kube-apiserver run the real kube-controller-manager (Deployment, ReplicaSet,
// DaemonSet, EndpointSlice and ServiceAccount controllers) and kube-scheduler; each
// node runs a real kubelet with containerd 2.x and Debian's runc, which run the image
// `make images` builds (cmd/images), imported into the node's containerd. The network
// is netlab's: kube-proxy on every node, the client on the LAN, and the pods' own
// addresses from the node's pod subnets (CNI bridge and host-local).
//
// Nothing lands on the machine: each node's kubelet and containerd run in the node's
// network namespace and in a mount namespace of their own, with tmpfs over /run,
// /var/lib and /var/log (the runtime's sockets, the CNI cache, the container log
// links), every directory of theirs under the test's temporary directory, and a
// cgroup root named after the lab's prefix that is removed afterwards, with every
// process in it.
package pods

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

const (
	// PauseImage is every pod's sandbox (cmd/pause), WebImage a pod server
	// (netlab/cmd/podserver) for the tests' Services. Both are built by the lab.
	PauseImage = "localhost/herald-pause:1"
	WebImage   = "localhost/herald-podserver:1"
	// HeraldImage is the name deploy/default gives `make images`' image.
	HeraldImage = "ghcr.io/herald-dev/herald:v0.1.0"
	// runc is Debian's (.ci/install-deps): it has seccomp, which the pods' default
	// profile needs.
	runc = "/usr/sbin/runc"
)

// binaries are the programs the lab runs.
type binaries struct {
	controlplane.Binaries
	kubelet, controllerManager, scheduler string
	runtimeDir                            string // containerd, the shim, ctr, CNI plugins
}

// require fails (CI=true) or skips t unless everything the lab runs is there.
func require(t netlab.T) binaries {
	t.Helper()
	b := binaries{Binaries: productlab.Require(t), runtimeDir: controlplane.RuntimeBinDir()}
	netlab.RequireCommands(t, runc, "nsenter", "unshare", "mount")
	b.kubelet = filepath.Join(b.Dir, "kubelet")
	b.controllerManager = filepath.Join(b.Dir, "kube-controller-manager")
	b.scheduler = filepath.Join(b.Dir, "kube-scheduler")
	if missing := MissingBinaries(); len(missing) > 0 {
		netlab.Missing(t, fmt.Sprintf("pods: %s not built: run `%s` in the repository root",
			strings.Join(missing, ", "), controlplane.BuildCommand))
	}
	return b
}

// MissingBinaries returns the programs of the lab that are not built (the kubelet,
// kube-controller-manager, kube-scheduler, containerd and the CNI plugins): what
// controlplane.BuildCommand builds.
func MissingBinaries() []string {
	dir := controlplane.BinDir()
	runtimeDir := controlplane.RuntimeBinDir()
	want := []string{filepath.Join(dir, "kubelet"), filepath.Join(dir, "kube-controller-manager"), filepath.Join(dir, "kube-scheduler")}
	for _, n := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "bridge", "host-local", "loopback"} {
		want = append(want, filepath.Join(runtimeDir, n))
	}
	var missing []string
	for _, p := range want {
		if info, err := os.Stat(p); err != nil || info.Mode().Perm()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}

// Lab is the running cluster.
type Lab struct {
	T       netlab.T
	CP      *controlplane.ControlPlane
	Cluster *netlab.Cluster
	Kube    kubernetes.Interface
	Herald  heraldclient.Interface
	// Dir holds the images, each node's runtime directories and the kubeconfigs.
	Dir string
	// Nodes are the kubelets' nodes (every node of the cluster).
	Nodes []*Node

	bins binaries
	root string // the repository
}

// Node is a node host with its kubelet and containerd.
type Node struct {
	*netlab.Node
	// Kubelet is the process running containerd and the kubelet (sh, then exec kubelet).
	Kubelet *netlab.Process
	// Dir holds the node's runtime directories, configuration and logs
	// (containerd.log).
	Dir string
	// CgroupRoot is the kubelet's cgroupRoot, a directory of every cgroup hierarchy.
	CgroupRoot string
}

// New builds the cluster with n nodes, each running a kubelet, and waits until every
// node is Ready by its kubelet, with the lab's images imported. Herald is not
// installed: tests apply deploy/default (ApplyManifests). Everything is removed in t's
// cleanup.
func New(t netlab.T, n int) *Lab {
	t.Helper()
	bins := require(t)
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatalf("pods: %v", err)
	}
	ctx := t.Context()
	l := &Lab{T: t, Dir: t.TempDir(), bins: bins, root: root}

	var users []controlplane.User
	for i := 1; i <= n; i++ {
		users = append(users, controlplane.User{Name: nodeUser(i), Groups: []string{"system:nodes"}})
	}
	cp := controlplane.StartOwned(ctx, t, controlplane.Options{Dir: filepath.Join(l.Dir, "controlplane"), Users: users})
	l.CP = cp
	l.Kube = kubernetes.NewForConfigOrDie(cp.Config())
	l.Herald = heraldclient.NewForConfigOrDie(cp.Config())

	// Images first: building them takes a while and needs no cluster.
	images := l.buildImages(ctx)

	l.Cluster = netlab.NewCluster(t, netlab.ClusterOptions{
		Nodes:      n,
		RESTConfig: cp.Config(),
		KubeProxy:  bins.KubeProxy,
		Lab:        netlab.Options{Dir: filepath.Join(l.Dir, "net")},
	})
	c := l.Cluster
	// NewCluster removed the network namespaces of labs whose test binary died; their
	// kubelets' cgroups, with the pods' processes, are left to remove here.
	if err := removeStaleCgroups(); err != nil {
		t.Logf("%v", err)
	}
	// Pods reach the API server (default/kubernetes) on the control-plane host, which
	// answers them through the nodes.
	for _, node := range c.Nodes {
		c.ControlPlane.AddRoute(node.PodCIDRs[0], node.Addr4(), "eth0")
		c.ControlPlane.AddRoute(node.PodCIDRs[1], node.Addr6(), "eth0")
	}
	if err := l.publishAPIServer(ctx); err != nil {
		t.Fatalf("%v", err)
	}
	l.startControllers()
	for _, node := range c.Nodes {
		l.Nodes = append(l.Nodes, l.startNode(node, images))
	}
	for _, node := range l.Nodes {
		l.waitKubeletReady(node)
	}
	t.Logf("pods: lab %s in %s, cgroup root of node1 %s", c.Lab.Prefix(), l.Dir, l.Nodes[0].CgroupRoot)
	return l
}

func nodeUser(i int) string { return fmt.Sprintf("system:node:node%d", i) }

// publishAPIServer writes the endpoints of default/kubernetes, as kube-apiserver
// would if it ran in the lab: the control-plane host's port the lab forwards to it.
// (It runs on the machine's loopback, where it publishes none.)
func (l *Lab) publishAPIServer(ctx context.Context) error {
	port := int32(netlab.APIServerPort)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes",
			discoveryv1.LabelManagedBy:   netlab.EndpointSliceManager,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{l.Cluster.APIServer.Addr().String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("https"), Port: &port, Protocol: ptr(corev1.ProtocolTCP)}},
	}
	if _, err := l.Kube.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("pods: publish the API server: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// startControllers runs kube-controller-manager and kube-scheduler on the
// control-plane host, as the admin.
func (l *Lab) startControllers() {
	t := l.T
	t.Helper()
	kubeconfig := filepath.Join(l.Dir, "admin.kubeconfig")
	if err := l.Cluster.WriteKubeconfig(kubeconfig, l.CP.Config()); err != nil {
		t.Fatalf("%v", err)
	}
	ca := filepath.Join(l.Dir, "ca.crt")
	if err := os.WriteFile(ca, l.CP.Config().CAData, 0o644); err != nil {
		t.Fatalf("pods: %v", err)
	}
	h := l.Cluster.ControlPlane
	h.Start("kube-controller-manager", l.bins.controllerManager,
		"--kubeconfig="+kubeconfig,
		"--root-ca-file="+ca, // published to every namespace as kube-root-ca.crt
		// Not /usr/libexec/kubernetes/...: the flex volume prober creates its directory.
		"--flex-volume-plugin-dir="+filepath.Join(l.Dir, "flexvolume"),
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1")
	h.Start("kube-scheduler", l.bins.scheduler,
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1")
}

// images are the archives imported into every node's containerd.
type images struct {
	herald, pause, web string
}

// buildImages builds Herald's image with cmd/images (make images, for this machine's
// platform) and the pause and pod-server images.
func (l *Lab) buildImages(ctx context.Context) images {
	t := l.T
	t.Helper()
	start := time.Now()
	dir := filepath.Join(l.Dir, "images")
	e2eDir := filepath.Join(l.root, "e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("pods: %v", err)
	}
	layout := filepath.Join(dir, "herald")
	cmd := command(ctx, e2eDir, "go", "run", "./cmd/images", "-platforms", "linux/"+runtime.GOARCH, "-out", layout)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pods: make images: %v\n%s", err, b)
	}
	im := images{herald: filepath.Join(dir, "herald.tar"), pause: filepath.Join(dir, "pause.tar"), web: filepath.Join(dir, "web.tar")}
	if err := tarDir(layout, im.herald); err != nil {
		t.Fatalf("%v", err)
	}
	if err := binaryImage(ctx, e2eDir, "github.com/herald-dev/herald/e2e/pods/cmd/pause", PauseImage, im.pause); err != nil {
		t.Fatalf("%v", err)
	}
	if err := binaryImage(ctx, e2eDir, netlab.PodServerPackage, WebImage, im.web); err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("pods: images built in %v", time.Since(start).Round(time.Second))
	return im
}

// startNode starts containerd and the kubelet in node's network namespace and a mount
// namespace of their own, and imports the images.
func (l *Lab) startNode(node *netlab.Node, im images) *Node {
	t := l.T
	t.Helper()
	n := &Node{Node: node, Dir: filepath.Join(l.Dir, node.Name())}
	n.CgroupRoot = "/" + l.Cluster.Lab.Prefix() + "-" + node.Name()
	for _, d := range []string{"cni/net.d", "cni/ipam", "kubelet", "pods", "containerd", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			t.Fatalf("pods: %v", err)
		}
	}
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		t.Fatalf("%v", err)
	}
	// The kubelet wants its cgroup root in every hierarchy. Registered before the
	// kubelet starts, so it runs after the kubelet is stopped.
	t.Cleanup(func() {
		if err := removeCgroups(hierarchies, n.CgroupRoot); err != nil {
			t.Logf("%v", err)
		}
	})
	for _, h := range hierarchies {
		if err := os.Mkdir(filepath.Join(h, n.CgroupRoot), 0o755); err != nil {
			t.Fatalf("pods: %v", err)
		}
	}

	sock := filepath.Join(n.Dir, "containerd.sock")
	write := func(name, content string) string {
		p := filepath.Join(n.Dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatalf("pods: %v", err)
		}
		return p
	}
	containerdConfig := write("containerd.toml", containerdTOML(n.Dir, sock, l.bins.runtimeDir))
	write("cni/net.d/10-herald-lab.conflist", cniConflist(n.Dir, node.PodCIDRs))
	kubeletConfig := write("kubelet.yaml", kubeletYAML(n.Dir, sock, n.CgroupRoot))
	kubeconfig := filepath.Join(n.Dir, "kubeconfig")
	cfg, err := l.CP.UserConfig(nodeUser(node.Index))
	if err != nil {
		t.Fatalf("pods: %v", err)
	}
	if err := l.Cluster.WriteKubeconfig(kubeconfig, cfg); err != nil {
		t.Fatalf("%v", err)
	}

	// One mount namespace for both: the kubelet mounts each pod's volumes and runc
	// must see them. Its tmpfs mounts hide what containerd, its shims, the CNI
	// library and the kubelet write outside the directories they are given.
	script := strings.Join([]string{
		"set -e",
		"mount -t tmpfs herald-lab-run /run",
		"mount -t tmpfs herald-lab-varlib /var/lib",
		"mount -t tmpfs herald-lab-varlog /var/log",
		"export PATH=" + l.bins.runtimeDir + ":$PATH",
		fmt.Sprintf("%s --config %s >%s 2>&1 &", filepath.Join(l.bins.runtimeDir, "containerd"), containerdConfig, filepath.Join(n.Dir, "containerd.log")),
		fmt.Sprintf("i=0; while [ ! -S %s ]; do i=$((i+1)); [ $i -lt 600 ] || { echo containerd did not start; exit 1; }; sleep 0.1; done", sock),
		strings.Join([]string{"exec", l.bins.kubelet,
			"--config=" + kubeletConfig,
			"--kubeconfig=" + kubeconfig,
			"--root-dir=" + filepath.Join(n.Dir, "kubelet"),
			"--hostname-override=" + node.Name(),
			"--node-ip=" + node.Addr4().String() + "," + node.Addr6().String(),
			"--v=1"}, " "),
	}, "\n")
	n.Kubelet = node.StartProcess(netlab.ProcessSpec{
		Name:    "kubelet",
		Args:    []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script},
		KeepSys: true,
	})
	// Stop the kubelet first (it would restart what follows), then every process in
	// its cgroups: the pods' processes live outside the node's network namespace,
	// which netlab empties.
	t.Cleanup(func() {
		_ = n.Kubelet.Stop(5 * time.Second)
		if err := killCgroups(hierarchies, n.CgroupRoot); err != nil {
			t.Logf("%v", err)
		}
	})

	netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		if n.Kubelet.Exited() {
			return fmt.Errorf("pods: containerd or the kubelet on %s exited: %v\n%s", node.Name(), n.Kubelet.Err(), n.Kubelet.Log())
		}
		if _, err := os.Stat(sock); err != nil {
			return fmt.Errorf("pods: containerd on %s: %w", node.Name(), err)
		}
		return nil
	})
	ctr := func(args ...string) {
		cmd := command(t.Context(), "", filepath.Join(l.bins.runtimeDir, "ctr"), append([]string{"--address", sock, "--namespace", "k8s.io"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pods: ctr %s on %s: %v\n%s", strings.Join(args, " "), node.Name(), err, b)
		}
	}
	ref := strings.SplitN(HeraldImage, ":", 2) // name, tag (the layout's ref.name)
	ctr("images", "import", "--base-name", ref[0], im.herald)
	ctr("images", "import", im.pause)
	ctr("images", "import", im.web)
	return n
}

// waitKubeletReady waits until the node's kubelet has registered it and reports it
// Ready.
func (l *Lab) waitKubeletReady(n *Node) {
	t := l.T
	t.Helper()
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		if n.Kubelet.Exited() {
			return fmt.Errorf("pods: the kubelet on %s exited: %v\n%s", n.Name(), n.Kubelet.Err(), n.Kubelet.Log())
		}
		node, err := l.Kube.CoreV1().Nodes().Get(ctx, n.Name(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if v := node.Status.NodeInfo.KubeletVersion; v != controlplane.KubernetesVersion {
			return fmt.Errorf("pods: node %s: kubelet version %q, want %s (the kubelet has not reported yet)", n.Name(), v, controlplane.KubernetesVersion)
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status != corev1.ConditionTrue {
					return fmt.Errorf("pods: node %s not ready: %s: %s", n.Name(), c.Reason, c.Message)
				}
				return nil
			}
		}
		return fmt.Errorf("pods: node %s has no Ready condition", n.Name())
	})
}

// Kubectl runs the control plane's kubectl as the admin with stdin and returns its
// combined output.
func (l *Lab) Kubectl(stdin string, args ...string) (string, error) {
	cmd := l.CP.Kubectl(l.T.Context(), args...)
	cmd.Stdin = strings.NewReader(stdin)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return string(b), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return string(b), nil
}

// ApplyManifests renders deploy/default with kubectl kustomize and applies it, as a
// user installs Herald, and returns the rendered manifests.
func (l *Lab) ApplyManifests() string {
	t := l.T
	t.Helper()
	rendered, err := l.Kubectl("", "kustomize", filepath.Join(l.root, "deploy", "default"))
	if err != nil {
		t.Fatalf("pods: %v", err)
	}
	if _, err := l.Kubectl(rendered, "apply", "--server-side", "--force-conflicts", "-f", "-"); err != nil {
		t.Fatalf("pods: %v", err)
	}
	return rendered
}

// endpointSliceController is the managed-by label of the EndpointSlices
// kube-controller-manager's EndpointSlice controller writes.
const endpointSliceController = "endpointslice-controller.k8s.io"

// The demo ApplyDemo applies: a pool of one address, advertised over layer 2, and a
// LoadBalancer Service of a 2-replica Deployment of WebImage, both named DemoService in
// the default namespace.
var DemoAddress = netip.MustParseAddr("198.51.100.130")

const DemoService = "web"

// ApplyDemo applies the demo: the IPPool and L2Advertisement "pods" (DemoAddress only),
// and the Deployment and LoadBalancer Service DemoService (port 80 to the pods' 8080).
func (l *Lab) ApplyDemo() {
	t := l.T
	t.Helper()
	if _, err := l.Kubectl(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: pods}
spec:
  addresses: ["`+DemoAddress.String()+`/32"]
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: pods}
spec:
  ipPools: [pods]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: `+DemoService+`, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: `+WebImage+`
        args: [-name, $(POD_NAME), -listen, ":8080"]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports: [{containerPort: 8080}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: `+DemoService+`, namespace: default}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v", err)
	}
}

// ServiceAddress waits (two minutes at most) until the Service has a load-balancer
// address and returns the first.
func (l *Lab) ServiceAddress(namespace, name string) netip.Addr {
	t := l.T
	t.Helper()
	var addr netip.Addr
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		svc, err := l.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			return fmt.Errorf("service %s has no address yet", name)
		}
		addr, err = netip.ParseAddr(svc.Status.LoadBalancer.Ingress[0].IP)
		return err
	})
	return addr
}

// WaitReadyEndpoints waits (two minutes at most) until ReadyEndpoints lists n pods,
// and returns them.
func (l *Lab) WaitReadyEndpoints(namespace, service string, n int) []string {
	t := l.T
	t.Helper()
	var pods []string
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		var err error
		pods, err = l.ReadyEndpoints(ctx, namespace, service)
		if err == nil && len(pods) != n {
			err = fmt.Errorf("ready endpoints %v, want %d pods", pods, n)
		}
		return err
	})
	return pods
}

// ConnectFromClient connects from the client on the LAN to dst (two minutes of retries
// at most) and returns the pod's answer.
func (l *Lab) ConnectFromClient(dst netip.AddrPort) netlab.PodReply {
	t := l.T
	t.Helper()
	var reply netlab.PodReply
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		var err error
		reply, err = l.Cluster.Client.ConnectPod(ctx, dst)
		return err
	})
	return reply
}

// WaitHeraldReady waits until the speaker DaemonSet has a ready pod on every node and
// both controller replicas are ready, as the API reports them (their kubelets' probes).
func (l *Lab) WaitHeraldReady() {
	t := l.T
	t.Helper()
	netlab.Eventually(t, 4*time.Minute, func(ctx context.Context) error {
		ds, err := l.Kube.AppsV1().DaemonSets("herald-system").Get(ctx, "herald-speaker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ds.Status.DesiredNumberScheduled != int32(len(l.Nodes)) || ds.Status.NumberReady != ds.Status.DesiredNumberScheduled {
			return fmt.Errorf("daemonset herald-speaker: %d of %d ready, %d nodes%s", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled, len(l.Nodes), podStates(ctx, l))
		}
		dep, err := l.Kube.AppsV1().Deployments("herald-system").Get(ctx, "herald-controller", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if want := *dep.Spec.Replicas; dep.Status.ReadyReplicas != want || dep.Status.UpdatedReplicas != want {
			return fmt.Errorf("deployment herald-controller: %d of %d ready%s", dep.Status.ReadyReplicas, want, podStates(ctx, l))
		}
		return nil
	})
}

// podStates describes herald-system's pods for a message.
func podStates(ctx context.Context, l *Lab) string {
	pods, err := l.Kube.CoreV1().Pods("herald-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return ": " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "\n  pod %s on %q: %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			switch {
			case c.State.Waiting != nil:
				fmt.Fprintf(&b, ", %s waiting: %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
			case c.State.Terminated != nil:
				fmt.Fprintf(&b, ", %s terminated: %s %s", c.Name, c.State.Terminated.Reason, c.State.Terminated.Message)
			default:
				fmt.Fprintf(&b, ", %s running, ready %v (restarts %d)", c.Name, c.Ready, c.RestartCount)
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				fmt.Fprintf(&b, ", %s: %s", c.Type, c.Message)
			}
		}
	}
	return b.String()
}

// ReadyEndpoints returns the pods the Service's EndpointSlices list as ready, and fails
// unless every slice is the EndpointSlice controller's and every endpoint is a running
// pod of the Service at its pod's address.
func (l *Lab) ReadyEndpoints(ctx context.Context, namespace, service string) ([]string, error) {
	list, err := l.Kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("service %s/%s has no EndpointSlice yet", namespace, service)
	}
	var ready []string
	for _, s := range list.Items {
		if m := s.Labels[discoveryv1.LabelManagedBy]; m != endpointSliceController {
			return nil, fmt.Errorf("EndpointSlice %s is managed by %q, want %q", s.Name, m, endpointSliceController)
		}
		for _, e := range s.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
				return nil, fmt.Errorf("EndpointSlice %s: endpoint %v names no pod", s.Name, e.Addresses)
			}
			pod, err := l.Kube.CoreV1().Pods(namespace).Get(ctx, e.TargetRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			var podIPs []string
			for _, ip := range pod.Status.PodIPs {
				podIPs = append(podIPs, ip.IP)
			}
			for _, a := range e.Addresses {
				if !slices.Contains(podIPs, a) {
					return nil, fmt.Errorf("EndpointSlice %s: address %s is not one of pod %s's %v", s.Name, a, pod.Name, podIPs)
				}
			}
			if e.Conditions.Ready != nil && *e.Conditions.Ready && pod.Status.Phase == corev1.PodRunning {
				ready = append(ready, pod.Name)
			}
		}
	}
	return ready, nil
}

// cgroupHierarchies returns the directories under /sys/fs/cgroup that are cgroup
// hierarchies (v1 controllers and the v2 unified one), without the symbolic links
// (cpu -> cpu,cpuacct).
func cgroupHierarchies() ([]string, error) {
	const root = "/sys/fs/cgroup"
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	const cgroup2Magic = 0x63677270
	if st.Type == cgroup2Magic {
		return []string{root}, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	return out, nil
}

// staleCgroup matches a kubelet's cgroup root of this package: <lab prefix>-node<i>.
var staleCgroup = regexp.MustCompile(`^(hl[a-z0-9]{5})-node[0-9]+$`)

// removeStaleCgroups removes the cgroup roots of labs that have no network namespace
// left (a test binary killed before its cleanup ran), with every process in them.
func removeStaleCgroups() error {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hierarchies {
		entries, _ := os.ReadDir(h)
		for _, e := range entries {
			m := staleCgroup.FindStringSubmatch(e.Name())
			if m == nil || !e.IsDir() {
				continue
			}
			if live, _ := filepath.Glob(filepath.Join("/run/netns", m[1]+"-*")); len(live) > 0 {
				continue
			}
			errs = append(errs, removeCgroups(hierarchies, "/"+e.Name()))
		}
	}
	return errors.Join(errs...)
}

// killCgroups SIGKILLs every process in the cgroup subtree named root of every
// hierarchy until none is left (five seconds at most).
func killCgroups(hierarchies []string, root string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pids []int
		for _, h := range hierarchies {
			_ = filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
				for _, f := range strings.Fields(string(b)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil && !slices.Contains(pids, pid) {
						pids = append(pids, pid)
					}
				}
				return nil
			})
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods: processes %v in cgroup %s survive SIGKILL", pids, root)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroups kills what is left in root and removes it from every hierarchy,
// deepest directories first.
func removeCgroups(hierarchies []string, root string) error {
	errs := []error{killCgroups(hierarchies, root)}
	for _, h := range hierarchies {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("pods: remove cgroup: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// command is exec.CommandContext in dir.
func command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd
}
