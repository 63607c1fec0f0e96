// Package productlab runs the whole product in the network lab, as a user would
// run it on a cluster: a real control plane (etcd and kube-apiserver), three node
// hosts each running the real kube-proxy (iptables mode) and herald-speaker, the
// herald-controller binary, pods behind the nodes, an FRR router and a client on
// the LAN. Nothing is faked but the kubelet: the lab writes the Node objects and,
// as the endpointslice controller would, the EndpointSlices of the pods it starts.
// The speakers run as in a cluster: the speaker's ServiceAccount, RBAC and
// SpeakerStatus admission policy from deploy/speaker, each with a token bound to a Pod
// on its node; the controller runs as the admin. With Options.Manifests (make lab
// uses it) both run as the rendered deploy/default says, the controller with its own
// ServiceAccount too (manifests.go).
//
// The end-to-end suite (package suite) and the measurement command
// cmd/measure-e2e use it; cmd/lab (make lab) builds the same thing for people.
package productlab

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

const (
	// ControllerPackage and SpeakerPackage are the product's binaries, built once
	// per run.
	ControllerPackage = "github.com/herald-dev/herald/cmd/herald-controller"
	SpeakerPackage    = "github.com/herald-dev/herald/cmd/herald-speaker"
	// Namespace is where Herald runs (its Secrets, Leases and events).
	Namespace = "herald-system"
	// SpeakerMetrics is where each speaker serves /metrics, /healthz and /readyz
	// inside its node's namespace.
	SpeakerMetrics = "127.0.0.1:7473"
	// ControllerMetrics is where each controller replica serves the same, inside the
	// control-plane host (replica i listens on port 7472+10*i).
	ControllerMetrics = "127.0.0.1:7472"
)

// Options configures New.
type Options struct {
	// Nodes is the number of node hosts (default 3).
	Nodes int
	// ControllerReplicas is how many herald-controller processes run, with leader
	// election (default 1).
	ControllerReplicas int
	// ControllerArgs and SpeakerArgs are extra flags for every controller and
	// speaker.
	ControllerArgs, SpeakerArgs []string
	// Dir keeps the logs and the control plane's data (in Dir/controlplane and
	// Dir/net); default t.TempDir().
	Dir string
	// OnNetwork, when set, is called once the network and kube-proxy are up, before
	// Herald starts (make lab records the lab's namespace prefix there).
	OnNetwork func(*netlab.Cluster) error
	// Manifests runs the controller and the speakers as the rendered deploy/default
	// says (see manifests.go): its arguments and environment, its users and
	// capabilities (only NET_RAW for the speaker), no new privileges and a read-only
	// root, each in a mount namespace of its own, and each with its ServiceAccount's
	// token bound to a Pod object. Without it the binaries run as root with the lab's
	// flags, and the controller as the admin.
	Manifests bool
	// WithoutHerald brings the lab up without Herald's controller and speakers
	// (another load balancer runs first, as in the migration from MetalLB); the
	// test starts them with StartHerald.
	WithoutHerald bool
}

// Lab is the running product.
type Lab struct {
	T       netlab.T
	CP      *controlplane.ControlPlane
	Cluster *netlab.Cluster
	Kube    kubernetes.Interface
	Herald  heraldclient.Interface
	// Client is the outside client on the LAN (Cluster.Client).
	Client *netlab.Host

	*state
}

// state is what every view of the lab (see For) shares.
type state struct {
	opts          Options
	controllerBin string
	speakerBin    string
	// workloads are deploy/default's containers, with Options.Manifests.
	workloads Workloads

	mu          sync.Mutex
	controllers []*netlab.Process // by replica; nil when stopped
	speakers    map[string]*netlab.Process
	identities  map[string]speakerIdentity // by node
	web         []*netlab.Pod
}

// For returns a view of the lab that reports to t: a subtest uses the suite's lab
// through l.For(t), so that its failures end the subtest, not the suite. (Failures
// inside netlab's own calls, such as starting a pod, still go to the T the lab was
// built with.)
func (l *Lab) For(t netlab.T) *Lab {
	c := *l
	c.T = t
	return &c
}

// Require fails (CI=true) or skips t unless the machine has what the lab needs:
// root, the commands, and the control-plane binaries.
func Require(t netlab.T) controlplane.Binaries {
	t.Helper()
	bins := speakerlab.Require(t)
	netlab.RequireCommands(t, "ip6tables") // kube-proxy's IPv6 rules
	return bins
}

// New builds the lab and waits until every speaker and the controller are ready
// (unless opts.WithoutHerald). It creates no Herald configuration: tests apply the IPPools and advertisements
// they need. Everything is removed in t's cleanup.
func New(t netlab.T, opts Options) *Lab {
	t.Helper()
	bins := Require(t)
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.ControllerReplicas == 0 {
		opts.ControllerReplicas = 1
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx := t.Context()
	l := &Lab{T: t, state: &state{opts: opts, speakers: map[string]*netlab.Process{}, identities: map[string]speakerIdentity{}}}
	l.controllerBin = netlab.BuildGo(t, ControllerPackage)
	l.speakerBin = netlab.BuildGo(t, SpeakerPackage)

	cp := controlplane.StartOwned(ctx, t, controlplane.Options{Dir: filepath.Join(opts.Dir, "controlplane")})
	l.CP = cp
	l.Kube = kubernetes.NewForConfigOrDie(cp.Config())
	l.Herald = heraldclient.NewForConfigOrDie(cp.Config())

	l.Cluster = netlab.NewCluster(t, netlab.ClusterOptions{
		Nodes:      opts.Nodes,
		RESTConfig: cp.Config(),
		KubeProxy:  bins.KubeProxy,
		Lab:        netlab.Options{Dir: filepath.Join(opts.Dir, "net")},
	})
	l.Client = l.Cluster.Client
	if opts.OnNetwork != nil {
		if err := opts.OnNetwork(l.Cluster); err != nil {
			t.Fatalf("productlab: %v", err)
		}
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := l.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("productlab: create namespace %s: %v", Namespace, err)
	}
	l.installIdentity("speaker")
	if opts.Manifests {
		l.installIdentity("controller")
		root, err := controlplane.RepoRoot()
		if err != nil {
			t.Fatalf("productlab: %v", err)
		}
		if l.workloads, err = RenderWorkloads(ctx, bins.Kubectl, filepath.Join(root, "deploy", "default")); err != nil {
			t.Fatalf("%v", err)
		}
	}
	l.controllers = make([]*netlab.Process, opts.ControllerReplicas)
	if !opts.WithoutHerald {
		l.StartHerald()
	}
	return l
}

// StartHerald starts every controller replica and a speaker on every node, and
// waits until all are ready. New calls it unless Options.WithoutHerald.
func (l *Lab) StartHerald() {
	l.T.Helper()
	for i := range l.opts.ControllerReplicas {
		l.StartController(i)
	}
	for _, n := range l.Cluster.Nodes {
		l.StartSpeaker(n)
	}
	for _, n := range l.Cluster.Nodes {
		l.WaitSpeakerReady(n)
	}
	for i := range l.opts.ControllerReplicas {
		l.WaitControllerReady(i)
	}
}

// Node returns the node named name (node1, node2, ...).
func (l *Lab) Node(name string) *netlab.Node {
	l.T.Helper()
	for _, n := range l.Cluster.Nodes {
		if n.Name() == name {
			return n
		}
	}
	l.T.Fatalf("productlab: no node %q", name)
	return nil
}

// controllerMetrics returns where replica i serves /metrics in the control-plane host.
func controllerMetrics(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", 7472+10*i)
}

// ControllerMetricsAddr returns where controller replica i serves /metrics,
// /healthz and /readyz inside the control-plane host (Cluster.ControlPlane).
func ControllerMetricsAddr(i int) string { return controllerMetrics(i) }

// StartController starts controller replica i (not waiting for it).
func (l *Lab) StartController(i int) *netlab.Process {
	l.T.Helper()
	if l.opts.Manifests {
		p := l.startPod(l.workloads.Controller, PodFacts{Namespace: Namespace, Name: ControllerIdentity(i),
			NodeName: l.Cluster.Nodes[0].Name(), PodIP: l.Cluster.ControlPlane.Addr4().String(), HostIP: l.Cluster.ControlPlane.Addr4().String()},
			l.Cluster.ControlPlane, fmt.Sprintf("controller-%d", i), l.controllerBin, l.controllerKubeconfig(),
			[]string{"--metrics-bind-address=" + controllerMetrics(i)}, l.opts.ControllerArgs, nil)
		l.mu.Lock()
		l.controllers[i] = p
		l.mu.Unlock()
		return p
	}
	args := append([]string{l.controllerBin,
		"--kubeconfig=" + l.Cluster.NodeKubeconfig,
		"--namespace=" + Namespace,
		"--metrics-bind-address=" + controllerMetrics(i),
		"--log-format=text",
	}, l.opts.ControllerArgs...)
	p := l.Cluster.ControlPlane.StartProcess(netlab.ProcessSpec{
		Name: fmt.Sprintf("controller-%d", i),
		Args: args,
		Env:  []string{fmt.Sprintf("POD_NAME=herald-controller-%d", i)},
	})
	l.mu.Lock()
	l.controllers[i] = p
	l.mu.Unlock()
	return p
}

// Controller returns controller replica i's process, or nil when it is stopped.
func (l *Lab) Controller(i int) *netlab.Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.controllers[i]
}

// StopController stops replica i: gracefully (SIGTERM) or with SIGKILL.
func (l *Lab) StopController(i int, graceful bool) {
	l.T.Helper()
	l.mu.Lock()
	p := l.controllers[i]
	l.controllers[i] = nil
	l.mu.Unlock()
	if p == nil {
		return
	}
	var err error
	if graceful {
		err = p.Stop(15 * time.Second)
	} else {
		err = p.Kill()
	}
	if err != nil {
		l.T.Logf("productlab: stop controller %d: %v", i, err)
	}
}

// WaitControllerReady waits until replica i answers /healthz.
func (l *Lab) WaitControllerReady(i int) {
	l.T.Helper()
	h := l.Cluster.ControlPlane
	netlab.Eventually(l.T, 60*time.Second, func(ctx context.Context) error {
		p := l.Controller(i)
		if p == nil || p.Exited() {
			return fmt.Errorf("controller %d is not running", i)
		}
		code, body, err := h.HTTPGet(ctx, "http://"+controllerMetrics(i)+"/healthz")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("controller %d: /healthz answered %d: %s", i, code, body)
		}
		return nil
	})
}

// StartSpeaker starts the speaker on n (not waiting for it), with the lab's and
// extra flags. The speaker authenticates as a speaker does in a cluster: its
// ServiceAccount, with a token bound to a Pod on n (SpeakerConfig), under the RBAC and
// SpeakerStatus admission policy of deploy/speaker.
func (l *Lab) StartSpeaker(n *netlab.Node, extra ...string) *netlab.Process {
	l.T.Helper()
	_, kubeconfig := l.speakerIdentity(n)
	if l.opts.Manifests {
		node := n.Addr4().String()
		p := l.startPod(l.workloads.Speaker, PodFacts{Namespace: Namespace, Name: SpeakerAccount + "-" + n.Name(),
			NodeName: n.Name(), PodIP: node, HostIP: node},
			n.Host, "speaker", l.speakerBin, kubeconfig,
			[]string{"--metrics-address=" + SpeakerMetrics}, slices.Concat(l.opts.SpeakerArgs, extra),
			map[string]map[string][]byte{MemberlistSecret: l.memberlistKeys()})
		l.mu.Lock()
		l.speakers[n.Name()] = p
		l.mu.Unlock()
		return p
	}
	args := []string{l.speakerBin,
		"--node-name=" + n.Name(),
		"--kubeconfig=" + kubeconfig,
		"--namespace=" + Namespace,
		"--metrics-address=" + SpeakerMetrics,
		"--log-format=text",
	}
	args = append(append(args, l.opts.SpeakerArgs...), extra...)
	p := n.StartProcess(netlab.ProcessSpec{Name: "speaker", Args: args})
	l.mu.Lock()
	l.speakers[n.Name()] = p
	l.mu.Unlock()
	return p
}

// Speaker returns n's speaker process, or nil when it is stopped.
func (l *Lab) Speaker(n *netlab.Node) *netlab.Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.speakers[n.Name()]
}

// StopSpeaker stops n's speaker with SIGTERM (a drained node: the speaker hands its
// addresses over before it exits) and waits until it exits.
func (l *Lab) StopSpeaker(n *netlab.Node) {
	l.T.Helper()
	if p := l.takeSpeaker(n); p != nil {
		if err := p.Stop(15 * time.Second); err != nil {
			l.T.Logf("productlab: stop speaker on %s: %v", n.Name(), err)
		}
	}
}

// KillSpeaker kills n's speaker with SIGKILL and waits until it is gone.
func (l *Lab) KillSpeaker(n *netlab.Node) {
	l.T.Helper()
	if p := l.takeSpeaker(n); p != nil {
		if err := p.Kill(); err != nil {
			l.T.Fatalf("productlab: kill speaker on %s: %v", n.Name(), err)
		}
	}
}

func (l *Lab) takeSpeaker(n *netlab.Node) *netlab.Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.speakers[n.Name()]
	delete(l.speakers, n.Name())
	return p
}

// WaitSpeakerReady waits until n's speaker answers /readyz.
func (l *Lab) WaitSpeakerReady(n *netlab.Node) {
	l.T.Helper()
	netlab.Eventually(l.T, 60*time.Second, func(ctx context.Context) error {
		p := l.Speaker(n)
		if p == nil || p.Exited() {
			return fmt.Errorf("speaker on %s is not running", n.Name())
		}
		code, body, err := n.HTTPGet(ctx, "http://"+SpeakerMetrics+"/readyz")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("speaker on %s: /readyz answered %d: %s", n.Name(), code, body)
		}
		return nil
	})
}

// Apply applies YAML manifests with kubectl (server-side apply), failing t on error.
func (l *Lab) Apply(manifests string) {
	l.T.Helper()
	// The manifests go on stdin: kubectl splits -f at commas, which a file under
	// t.TempDir() has when the subtest's name does.
	cmd := l.CP.Kubectl(l.T.Context(), "apply", "--server-side", "--force-conflicts", "-f", "-")
	cmd.Stdin = strings.NewReader(manifests)
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.T.Fatalf("productlab: kubectl apply: %v\n%s\n%s", err, out, manifests)
	}
}

// Kubectl runs kubectl with args (within 60 s, so that it works in cleanups too) and
// returns its combined output and error.
func (l *Lab) Kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := l.CP.Kubectl(ctx, args...).CombinedOutput()
	return string(out), err
}

// WaitAddresses waits until the Service namespace/name has want addresses in
// status.loadBalancer.ingress (want 0 waits for at least one) and returns them.
func (l *Lab) WaitAddresses(namespace, name string, want int, timeout time.Duration) []netip.Addr {
	l.T.Helper()
	var addrs []netip.Addr
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		svc, err := l.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		addrs = IngressAddrs(svc)
		if len(addrs) == 0 || (want > 0 && len(addrs) != want) {
			return fmt.Errorf("service %s/%s has ingress %v, want %d addresses; conditions %v",
				namespace, name, addrs, want, svc.Status.Conditions)
		}
		return nil
	})
	return addrs
}

// IngressAddrs returns the IP addresses in svc's status.loadBalancer.ingress.
func IngressAddrs(svc *corev1.Service) []netip.Addr {
	var addrs []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// WebPort is the port the lab's web pods serve.
const WebPort = netlab.PodServerPort

// WebPods returns the lab's shared web pods, one on node1 and one on node2, serving
// WebPort, starting them on first use. Node hosts have room for 13 pods each (5 in
// a lab of more than netlab.RoomyNodes nodes) for the lab's whole life, so Services that need no pods of their own share these:
// write their EndpointSlices with Backend.
func (l *Lab) WebPods() []*netlab.Pod {
	l.T.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.web == nil {
		for _, n := range l.Cluster.Nodes[:min(2, len(l.Cluster.Nodes))] {
			p := n.AddPod("web-" + n.Name())
			p.Serve(WebPort)
			l.web = append(l.web, p)
		}
	}
	return slices.Clone(l.web)
}

// Backend makes existing pods (for example WebPods) the ready endpoints of the
// Service namespace/name, whose targetPort must be port, and returns them as an App.
// Remove on such an App takes the pods out of its EndpointSlices but leaves them
// serving.
func (l *Lab) Backend(namespace, service string, port int, pods ...*netlab.Pod) *App {
	l.T.Helper()
	a := &App{lab: l, Namespace: namespace, Service: service, Port: port,
		state: map[*netlab.Pod]netlab.EndpointState{}, owned: map[*netlab.Pod]bool{}}
	for _, p := range pods {
		a.pods = append(a.pods, p)
		a.state[p] = netlab.EndpointReady
	}
	a.Sync()
	return a
}

// App is a set of pods behind a Service, each serving Port and answering with its
// name and the client's address (see netlab.ParsePodReply).
type App struct {
	lab       *Lab
	Namespace string
	Service   string
	Port      int

	mu    sync.Mutex
	pods  []*netlab.Pod
	state map[*netlab.Pod]netlab.EndpointState
	owned map[*netlab.Pod]bool // pods AddPod started
}

// NewApp starts one pod on each of nodes serving port and writes the Service's
// EndpointSlices with every pod ready. The Service must exist with a numeric
// targetPort equal to port.
func (l *Lab) NewApp(namespace, service string, port int, nodes ...*netlab.Node) *App {
	l.T.Helper()
	a := &App{lab: l, Namespace: namespace, Service: service, Port: port,
		state: map[*netlab.Pod]netlab.EndpointState{}, owned: map[*netlab.Pod]bool{}}
	for _, n := range nodes {
		a.AddPod(n, netlab.EndpointReady)
	}
	return a
}

// AddPod starts a pod on n serving the app's port, gives it state, and writes the
// EndpointSlices.
func (a *App) AddPod(n *netlab.Node, state netlab.EndpointState) *netlab.Pod {
	t := a.lab.T
	t.Helper()
	a.mu.Lock()
	name := fmt.Sprintf("%s-%s-%d", a.Service, n.Name(), len(n.Pods())+1)
	a.mu.Unlock()
	p := n.AddPod(name)
	p.Serve(a.Port)
	a.mu.Lock()
	a.pods = append(a.pods, p)
	a.state[p] = state
	a.owned[p] = true
	a.mu.Unlock()
	a.Sync()
	return p
}

// Pods returns the app's pods, oldest first (removed ones excluded).
func (a *App) Pods() []*netlab.Pod {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.pods)
}

// Set changes the endpoint states of pods and writes the EndpointSlices once.
func (a *App) Set(state netlab.EndpointState, pods ...*netlab.Pod) {
	a.lab.T.Helper()
	a.mu.Lock()
	for _, p := range pods {
		a.state[p] = state
	}
	a.mu.Unlock()
	a.Sync()
}

// Remove takes pods out of the EndpointSlices, then stops the servers of those the
// app started (AddPod), as the kubelet does once a pod's containers have exited.
func (a *App) Remove(pods ...*netlab.Pod) {
	a.lab.T.Helper()
	a.mu.Lock()
	a.pods = slices.DeleteFunc(a.pods, func(p *netlab.Pod) bool { return slices.Contains(pods, p) })
	var stop []*netlab.Pod
	for _, p := range pods {
		delete(a.state, p)
		if a.owned[p] {
			stop = append(stop, p)
			delete(a.owned, p)
		}
	}
	a.mu.Unlock()
	a.Sync()
	for _, p := range stop {
		if p.Server != nil {
			_ = p.Server.Stop(5 * time.Second)
		}
	}
}

// Sync writes the Service's EndpointSlices from the app's pods and their states.
func (a *App) Sync() {
	t := a.lab.T
	t.Helper()
	a.mu.Lock()
	eps := make([]netlab.Endpoint, 0, len(a.pods))
	for _, p := range a.pods {
		eps = append(eps, netlab.Endpoint{Pod: p, State: a.state[p]})
	}
	a.mu.Unlock()
	if err := a.lab.Cluster.SetEndpoints(t.Context(), a.Namespace, a.Service, eps...); err != nil {
		t.Fatalf("%v", err)
	}
}

// Connect opens one TCP connection from the client to addr:port and returns the
// pod's answer.
func (l *Lab) Connect(ctx context.Context, addr netip.Addr, port int) (netlab.PodReply, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return l.Client.ConnectPod(ctx, netip.AddrPortFrom(addr, uint16(port)))
}

// WaitConnect waits until a TCP connection from the client to addr:port reaches a
// pod whose name satisfies ok (any pod when ok is nil) and returns its answer.
func (l *Lab) WaitConnect(addr netip.Addr, port int, timeout time.Duration, ok func(netlab.PodReply) error) netlab.PodReply {
	l.T.Helper()
	var reply netlab.PodReply
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		r, err := l.Connect(ctx, addr, port)
		if err != nil {
			return err
		}
		if ok != nil {
			if err := ok(r); err != nil {
				return err
			}
		}
		reply = r
		return nil
	})
	return reply
}

// ServiceEvents returns "<reason>: <message>" for each event about the Service.
func (l *Lab) ServiceEvents(ctx context.Context, namespace, name string) ([]string, error) {
	evs, err := l.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name,
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out, nil
}

// WaitEvent waits until an event about the Service has reason and a message
// containing substr, and returns its message.
func (l *Lab) WaitEvent(namespace, name, reason, substr string, timeout time.Duration) string {
	l.T.Helper()
	var found string
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		evs, err := l.ServiceEvents(ctx, namespace, name)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if strings.HasPrefix(e, reason+": ") && strings.Contains(e, substr) {
				found = strings.TrimPrefix(e, reason+": ")
				return nil
			}
		}
		return fmt.Errorf("no %s event containing %q about %s/%s; events: %q", reason, substr, namespace, name, evs)
	})
	return found
}

// LogsAround returns the lines of every speaker's and controller's log written
// from before t to after it that contain one of substrs (every line when substrs
// is empty), for failure messages that must show what happened when a client's
// connection failed, not what happened last.
func (l *Lab) LogsAround(t time.Time, before, after time.Duration, substrs ...string) string {
	var b strings.Builder
	for _, p := range l.daemons() {
		lines := linesBetween(p.Log(), t.Add(-before), t.Add(after), substrs)
		if len(lines) > 0 {
			fmt.Fprintf(&b, "--- %s on %s\n%s\n", p.Name(), p.Host().Name(), strings.Join(lines, "\n"))
		}
	}
	return b.String()
}

// linesBetween returns the lines of a log in slog's text or JSON format
// stamped from from to to (inclusive) that contain one of substrs (all when
// substrs is empty). Lines without a stamp are left out.
func linesBetween(log string, from, to time.Time, substrs []string) []string {
	var out []string
	for line := range strings.Lines(log) {
		line = strings.TrimRight(line, "\n")
		stamp, ok := logStamp(line)
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil || at.Before(from) || at.After(to) {
			continue
		}
		if len(substrs) == 0 || slices.ContainsFunc(substrs, func(s string) bool { return strings.Contains(line, s) }) {
			out = append(out, line)
		}
	}
	return out
}

// logStamp returns the time stamp of a log line: time=... (slog's text
// format) or "time":"..." (its JSON format).
func logStamp(line string) (string, bool) {
	if _, rest, ok := strings.Cut(line, `"time":"`); ok {
		stamp, _, ok := strings.Cut(rest, `"`)
		return stamp, ok
	}
	if _, rest, ok := strings.Cut(line, "time="); ok {
		stamp, _, _ := strings.Cut(rest, " ")
		return stamp, true
	}
	return "", false
}

// daemons returns the controllers' and speakers' processes running now.
func (l *Lab) daemons() []*netlab.Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	var procs []*netlab.Process
	for _, p := range l.controllers {
		if p != nil {
			procs = append(procs, p)
		}
	}
	for _, n := range l.Cluster.Nodes {
		if p := l.speakers[n.Name()]; p != nil {
			procs = append(procs, p)
		}
	}
	return procs
}

// Logs returns the tail of every speaker's and controller's log, for failure
// messages.
func (l *Lab) Logs(lines int) string {
	procs := l.daemons()
	var b strings.Builder
	for _, p := range procs {
		log := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
		if len(log) > lines {
			log = log[len(log)-lines:]
		}
		fmt.Fprintf(&b, "--- %s on %s\n%s\n", p.Name(), p.Host().Name(), strings.Join(log, "\n"))
	}
	return b.String()
}
