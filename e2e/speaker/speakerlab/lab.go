// Package speakerlab runs Herald's speaker for real: a control plane
// (kube-apiserver and etcd), a network lab with node hosts each running the
// herald-speaker binary in its own network namespace, and a client host on
// the same LAN, plus the writers and probes the speaker's integration tests
// and measurement commands need.
//
// Nothing runs a kubelet, kube-controller-manager or controller: the lab
// writes the Nodes, the Services' AddressClaims and
// status.loadBalancer.ingress, and the EndpointSlices itself. Each node host has kube-proxy's IPVS-mode view of a
// load-balancer address (the address on a local interface that is not the
// LAN's, with arp_ignore=1 and arp_announce=2 as kube-proxy's strictARP sets
// them, see AddVIP) and a
// TCP listener on ServicePort answering with the node's name, standing in
// for kube-proxy and a pod. The speakers reach the apiserver through a
// per-node proxy on 127.0.0.1:6443 inside their namespace, which the test
// can cut (APIDown) to show that announcements survive an API outage.
package speakerlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// SpeakerPackage is the speaker's main package, built once per run.
const SpeakerPackage = "github.com/herald-dev/herald/cmd/herald-speaker"

// ServicePort is where every node's stand-in for kube-proxy and a pod
// listens; it answers each TCP connection with the node's name.
const ServicePort = 8080

// MetricsAddr is where each speaker serves /metrics inside its namespace.
const MetricsAddr = "127.0.0.1:7473"

// Namespace is the namespace the lab's Services live in.
const Namespace = "default"

// PoolName is the IPPool covering the lab's layer-2 pools.
const PoolName = "lan"

// Options configures New.
type Options struct {
	// Nodes is the number of node hosts (default 3, at most netlab.MaxNodes).
	Nodes int
	// SpeakerArgs are extra flags for every speaker.
	SpeakerArgs []string
	// SpeakerEnv is extra environment for every speaker (for example
	// GOMEMLIMIT=80MiB).
	SpeakerEnv []string
	// NoSpeakers leaves the speakers stopped (start them with StartSpeaker).
	NoSpeakers bool
	// Dir keeps the logs; default t.TempDir().
	Dir string
	// Speaker, when set, is what StartSpeaker runs on a node instead of
	// herald-speaker, given the kubeconfig that reaches the apiserver through
	// the node's proxy: another implementation measured the same way
	// (measure-failover runs MetalLB's speaker so). It must serve /metrics
	// on MetricsAddr; SpeakerEnv is added to its Env, SpeakerArgs are not
	// used. herald-speaker is then not built.
	Speaker func(n *Node, kubeconfig string) netlab.ProcessSpec
}

// Lab is a running speaker lab.
type Lab struct {
	T      netlab.T
	Net    *netlab.Lab
	CP     *controlplane.ControlPlane
	Kube   kubernetes.Interface
	Herald heraldclient.Interface
	// Client is the client host on the LAN; ClientLink its interface.
	Client     *netlab.Host
	ClientLink *netlab.Link
	Nodes      []*Node

	speakerBin  string
	speaker     func(n *Node, kubeconfig string) netlab.ProcessSpec
	speakerArgs []string
	speakerEnv  []string
	kubeconfig  string
}

// Node is one node host.
type Node struct {
	Name  string
	Host  *netlab.Host
	Link  *netlab.Link
	Addr4 netip.Addr
	Addr6 netip.Addr
	// Speaker is the running speaker process, nil when stopped.
	Speaker *netlab.Process

	proxy *apiProxy
}

// Require fails (CI=true) or skips t unless everything the lab needs is
// here: root, the control-plane binaries, and the commands.
func Require(t netlab.T) controlplane.Binaries {
	t.Helper()
	netlab.RequireRoot(t)
	netlab.RequireCommands(t, "ip", "sysctl", "arping", "ndisc6", "iptables", "tcpdump")
	bins, err := controlplane.FindBinaries("")
	if errors.Is(err, controlplane.ErrBinariesMissing) {
		netlab.Missing(t, err.Error())
	} else if err != nil {
		t.Fatalf("%v", err)
	}
	return bins
}

// New builds the lab: control plane, LAN bridge, client, nodes (Node
// objects written with their LAN addresses), the IPPool "lan" over
// netlab.L2PoolV4 and L2PoolV6 with an L2Advertisement for every node, and
// a speaker on every node (unless NoSpeakers), waiting until each is ready.
// Everything is removed in t's cleanup.
func New(t netlab.T, opts Options) *Lab {
	t.Helper()
	Require(t)
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	ctx := t.Context()
	l := &Lab{T: t, speaker: opts.Speaker, speakerArgs: opts.SpeakerArgs, speakerEnv: opts.SpeakerEnv}
	if l.speaker == nil {
		l.speakerBin = netlab.BuildGo(t, SpeakerPackage)
	}

	cp := controlplane.StartOwned(ctx, t, controlplane.Options{})
	l.CP = cp
	l.Kube = kubernetes.NewForConfigOrDie(cp.Config())
	l.Herald = heraldclient.NewForConfigOrDie(cp.Config())

	l.Net = netlab.New(t, netlab.Options{Dir: opts.Dir})
	lan := l.Net.AddBridge("lan")
	c4, c6 := netlab.LANAddrs(netlab.ClientHostNumber)
	l.Client = l.Net.AddHost("client")
	l.ClientLink = l.Client.Attach(lan, "eth0", c4, c6)

	kc := cp.Config()
	kc.Host = "https://127.0.0.1:6443"
	l.kubeconfig = filepath.Join(l.Net.Dir(), "speaker.kubeconfig")
	if err := controlplane.WriteKubeconfig(l.kubeconfig, kc); err != nil {
		t.Fatalf("%v", err)
	}
	apiAddr := strings.TrimPrefix(cp.URL, "https://")

	for i := range opts.Nodes {
		n := &Node{Name: fmt.Sprintf("node%d", i+1)}
		p4, p6 := netlab.LANAddrs(netlab.FirstNodeHostNumber + i)
		n.Addr4, n.Addr6 = p4.Addr(), p6.Addr()
		n.Host = l.Net.AddHost(n.Name)
		n.Link = n.Host.Attach(lan, "eth0", p4, p6)
		// kube-proxy's strictARP: the kernel answers ARP only for addresses of
		// the interface asked on, and never announces kube-ipvs0's.
		n.Host.Sysctl("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
			"net.ipv4.conf.default.arp_ignore=1", "net.ipv4.conf.default.arp_announce=2")
		if err := serveNodeName(t, n); err != nil {
			t.Fatalf("%v", err)
		}
		var err error
		if n.proxy, err = newAPIProxy(t, n.Host, "127.0.0.1:6443", apiAddr); err != nil {
			t.Fatalf("%v", err)
		}
		l.Nodes = append(l.Nodes, n)
		if err := l.writeNode(ctx, n); err != nil {
			t.Fatalf("%v", err)
		}
	}
	if err := l.writeConfig(ctx); err != nil {
		t.Fatalf("%v", err)
	}
	if !opts.NoSpeakers {
		for _, n := range l.Nodes {
			l.StartSpeaker(n)
		}
		for _, n := range l.Nodes {
			l.WaitReady(n)
		}
		l.WaitMembers(len(l.Nodes))
	}
	return l
}

// writeNode creates n's Node object with its LAN addresses as InternalIPs.
func (l *Lab) writeNode(ctx context.Context, n *Node) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{corev1.LabelHostname: n.Name}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.Addr4.String()},
			{Type: corev1.NodeInternalIP, Address: n.Addr6.String()},
		}},
	}
	created, err := l.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("speakerlab: create Node %s: %w", n.Name, err)
	}
	created.Status = node.Status
	if _, err := l.Kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: write status of Node %s: %w", n.Name, err)
	}
	return nil
}

// writeConfig creates the IPPool and the L2Advertisement.
func (l *Lab) writeConfig(ctx context.Context) error {
	pool := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: PoolName},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []string{netlab.L2PoolV4.String(), netlab.L2PoolV6.String()}},
	}
	if _, err := l.Herald.HeraldV1alpha1().IPPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: create IPPool: %w", err)
	}
	adv := &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{PoolName}}}
	if _, err := l.Herald.HeraldV1alpha1().L2Advertisements().Create(ctx, adv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: create L2Advertisement: %w", err)
	}
	return nil
}

// StartSpeaker starts the speaker on n (without waiting for it).
func (l *Lab) StartSpeaker(n *Node, extraArgs ...string) {
	l.T.Helper()
	if l.speaker != nil {
		spec := l.speaker(n, l.kubeconfig)
		spec.Args = append(spec.Args, extraArgs...)
		spec.Env = append(spec.Env, l.speakerEnv...)
		n.Speaker = n.Host.StartProcess(spec)
		return
	}
	args := []string{l.speakerBin,
		"--node-name=" + n.Name,
		"--kubeconfig=" + l.kubeconfig,
		"--metrics-address=" + MetricsAddr,
		"--namespace=herald-system",
		"--log-format=text",
		"--log-level=info",
	}
	args = append(append(args, l.speakerArgs...), extraArgs...)
	n.Speaker = n.Host.StartProcess(netlab.ProcessSpec{Name: "speaker", Args: args, Env: l.speakerEnv})
}

// WaitReady waits until n's speaker answers /readyz.
func (l *Lab) WaitReady(n *Node) {
	l.T.Helper()
	netlab.Eventually(l.T, 60*time.Second, func(ctx context.Context) error {
		if n.Speaker == nil || n.Speaker.Exited() {
			return fmt.Errorf("speaker on %s is not running", n.Name)
		}
		resp, err := n.Host.HTTPClient(time.Second).Get("http://" + MetricsAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("speaker on %s: /readyz %d", n.Name, resp.StatusCode)
		}
		return nil
	})
}

// WaitMembers waits until every running speaker sees want live members.
func (l *Lab) WaitMembers(want int) {
	l.T.Helper()
	netlab.Eventually(l.T, 30*time.Second, func(ctx context.Context) error {
		for _, n := range l.Nodes {
			if n.Speaker == nil || n.Speaker.Exited() {
				continue
			}
			got, err := l.Metric(ctx, n, "herald_speaker_members", `state="alive"`)
			if err != nil {
				return err
			}
			if int(got) != want {
				return fmt.Errorf("speaker on %s sees %v live members, want %d", n.Name, got, want)
			}
		}
		return nil
	})
}

// KillSpeaker kills n's speaker with SIGKILL and waits until it is gone.
func (l *Lab) KillSpeaker(n *Node) {
	l.T.Helper()
	if n.Speaker == nil {
		return
	}
	if err := n.Speaker.Kill(); err != nil {
		l.T.Fatalf("%v", err)
	}
	n.Speaker = nil
}

// StopSpeaker stops n's speaker with SIGTERM and waits until it exits.
func (l *Lab) StopSpeaker(n *Node) error {
	if n.Speaker == nil {
		return nil
	}
	err := n.Speaker.Stop(10 * time.Second)
	n.Speaker = nil
	return err
}

// APIDown cuts (true) or restores (false) every speaker's path to the apiserver.
func (l *Lab) APIDown(down bool) error {
	for _, n := range l.Nodes {
		if err := n.proxy.setDown(down); err != nil {
			return err
		}
	}
	return nil
}

// Node returns the node named name, or nil.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NodeByMAC returns the node whose LAN interface has mac, or nil.
func (l *Lab) NodeByMAC(mac net.HardwareAddr) *Node {
	for _, n := range l.Nodes {
		if n.Link.MAC.String() == mac.String() {
			return n
		}
	}
	return nil
}

// NodeNames returns the names of all nodes.
func (l *Lab) NodeNames() []string {
	out := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		out[i] = n.Name
	}
	return out
}

// serveNodeName answers every TCP connection to ServicePort on n with n's
// name, from a listener made in n's namespace.
func serveNodeName(t netlab.T, n *Node) error {
	ln, err := n.Host.Listen("tcp", ":"+strconv.Itoa(ServicePort))
	if err != nil {
		return fmt.Errorf("speakerlab: listen on %s: %w", n.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(n.Name + "\n"))
			c.Close()
		}
	}()
	return nil
}

// AddVIP puts addr on every node's loopback interface as a host route, as
// kube-proxy in IPVS mode puts it on its kube-ipvs0 dummy (the lab's kernel
// may lack the dummy driver), so the nodes accept its traffic while the
// kernel never answers ARP or NDP for it.
func (l *Lab) AddVIP(addr netip.Addr) {
	l.T.Helper()
	for _, n := range l.Nodes {
		n.Host.AddAddr("lo", netip.PrefixFrom(addr, addr.BitLen()))
	}
}

// Logs returns every running speaker's log, for failure messages.
func (l *Lab) Logs() string {
	var b strings.Builder
	for _, n := range l.Nodes {
		if n.Speaker != nil {
			fmt.Fprintf(&b, "=== %s\n%s\n", n.Name, tail(n.Speaker.Log(), 30))
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ignoreNotFound returns nil for a NotFound error.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
