package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
)

// ClusterOptions configures NewCluster.
type ClusterOptions struct {
	// Nodes is the number of node hosts, 1 to MaxNodes; default 3.
	Nodes int
	// RESTConfig reaches a running kube-apiserver from the test process (for example
	// controlplane.ControlPlane.Config()). When set, the control-plane host forwards
	// its port 6443 to that apiserver, every node gets a Node object, and
	// NodeKubeconfig is written.
	RESTConfig *rest.Config
	// KubeProxy is the path of a kube-proxy binary (controlplane's
	// Binaries.KubeProxy). When set, with RESTConfig, kube-proxy runs on every node.
	KubeProxy string
	// Lab options for the underlying Lab.
	Lab Options
}

// Cluster is the standard lab: one LAN bridge joining a router, a control-plane host,
// a client and the nodes, numbered as the address plan says, with pods behind the
// nodes routed as a flat pod network (every node routes every other node's pod
// subnets to it).
type Cluster struct {
	Lab *Lab
	// LAN is the bridge every host is attached to (interface eth0 in each).
	LAN *Bridge
	// Router runs FRR once Router.StartBGP is called.
	Router *Router
	// ControlPlane holds the apiserver's in-lab address: APIServer.
	ControlPlane *Host
	// Client is an outside client on the LAN. It routes RoutedPoolV4/V6 via Router.
	Client *Host
	// Nodes are the node hosts, node1 first.
	Nodes []*Node

	// Kube is a client of the apiserver for the test process (nil without
	// RESTConfig).
	Kube kubernetes.Interface
	// Herald is a client of Herald's resources for the test process (nil
	// without RESTConfig).
	Herald heraldclient.Interface
	// APIServer is where processes in the lab reach the apiserver (the control-plane
	// host's port 6443), and NodeKubeconfig a kubeconfig file that points there with
	// RESTConfig's credentials. Both are empty without RESTConfig.
	APIServer      netip.AddrPort
	NodeKubeconfig string

	restConfig *rest.Config
	apiProxy   *tcpProxy
}

// Node is a node host: its LAN link is eth0, its pods hang off a bridge cni0 that
// holds the first address of each of its pod subnets.
type Node struct {
	*Host
	// Index is the node's number, from 1.
	Index int
	// LAN is the node's link on the cluster's LAN.
	LAN *Link
	// PodCIDRs are the node's pod subnets, IPv4 then IPv6.
	PodCIDRs []netip.Prefix
	// KubeProxy is the node's kube-proxy process, or nil.
	KubeProxy *Process

	cluster *Cluster
	mu      sync.Mutex
	pods    []*Pod
}

// NewCluster builds the standard lab. See ClusterOptions.
func NewCluster(t T, opts ClusterOptions) *Cluster {
	t.Helper()
	n := opts.Nodes
	if n == 0 {
		n = 3
	}
	if n < 1 || n > MaxNodes {
		t.Fatalf("netlab: %d nodes: want 1 to %d", n, MaxNodes)
	}
	lab := New(t, opts.Lab)
	c := &Cluster{Lab: lab, LAN: lab.AddBridge("lan"), restConfig: opts.RESTConfig}
	addHost := func(name string, number int) (*Host, *Link) {
		h := lab.AddHost(name)
		v4, v6 := LANAddrs(number)
		return h, h.Attach(c.LAN, "eth0", v4, v6)
	}
	rh, _ := addHost("router", RouterHostNumber)
	c.Router = NewRouter(rh)
	c.ControlPlane, _ = addHost("cp", ControlPlaneHostNumber)
	c.Client, _ = addHost("client", ClientHostNumber)
	c.Client.AddRoute(RoutedPoolV4, c.Router.Addr4(), "")
	c.Client.AddRoute(RoutedPoolV6, c.Router.Addr6(), "")
	for i := 1; i <= n; i++ {
		h, link := addHost(fmt.Sprintf("node%d", i), FirstNodeHostNumber+i-1)
		v4, v6 := NodePodCIDRs(i, n)
		node := &Node{Host: h, Index: i, LAN: link, PodCIDRs: []netip.Prefix{v4, v6}, cluster: c}
		h.MustRun("ip", "link", "add", "name", "cni0", "type", "bridge")
		h.Sysctl("net.ipv6.conf.cni0.accept_dad=0")
		h.AddAddr("cni0", netip.PrefixFrom(v4.Addr().Next(), v4.Bits()))
		h.AddAddr("cni0", netip.PrefixFrom(v6.Addr().Next(), v6.Bits()))
		h.MustRun("ip", "link", "set", "dev", "cni0", "up")
		c.Nodes = append(c.Nodes, node)
	}
	// A flat pod network: each node routes the others' pod subnets to them.
	for _, a := range c.Nodes {
		for _, b := range c.Nodes {
			if a != b {
				a.AddRoute(b.PodCIDRs[0], b.Addr4(), "eth0")
				a.AddRoute(b.PodCIDRs[1], b.Addr6(), "eth0")
			}
		}
	}
	if opts.RESTConfig != nil {
		c.connectControlPlane(t, opts.RESTConfig)
		if opts.KubeProxy != "" {
			for _, node := range c.Nodes {
				node.StartKubeProxy(opts.KubeProxy)
			}
		}
	} else if opts.KubeProxy != "" {
		t.Fatalf("netlab: ClusterOptions.KubeProxy needs RESTConfig")
	}
	return c
}

// Node returns the node numbered i (from 1).
func (c *Cluster) Node(i int) *Node { return c.Nodes[i-1] }

// NodeNames returns the nodes' names, node1 first.
func (c *Cluster) NodeNames() []string {
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.name
	}
	return names
}

// ClusterCIDRs returns the pod supernets, IPv4 then IPv6 (kube-proxy's --cluster-cidr).
func ClusterCIDRs() []netip.Prefix { return []netip.Prefix{PodsV4, PodsV6} }

// Pods returns the node's pods in creation order.
func (n *Node) Pods() []*Pod {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.pods)
}

// Pod is a network namespace behind a node, as a CNI plugin would make it: eth0 with
// one address from each of the node's pod subnets, a veth whose other end is on the
// node's cni0 bridge, and default routes through the node.
type Pod struct {
	*Host
	// Name is the pod's name for Kubernetes and the answer of its server.
	Name string
	// Node is the node the pod runs on.
	Node *Node
	// Server is the pod's podserver process, once Serve was called.
	Server *Process
}

// AddPod creates a pod named name (any Kubernetes name) behind the node. Its host is
// named n<node>p<k>. Each node has room for 13 pods in its lab's life, 5 in a lab of
// more than RoomyNodes nodes (see NodePodCIDRs).
func (n *Node) AddPod(name string) *Pod {
	t := n.lab.t
	t.Helper()
	n.mu.Lock()
	k := len(n.pods) + 1
	n.mu.Unlock()
	if k > podRoom(n.PodCIDRs[0]) {
		t.Fatalf("netlab: node %s has no room for pod %s", n.name, name)
	}
	h := n.lab.AddHost(fmt.Sprintf("n%dp%d", n.Index, k))
	nodeIf := fmt.Sprintf("veth%d", k)
	n.lab.Veth(n.Host, nodeIf, h, "eth0")
	n.MustRun("ip", "link", "set", "dev", nodeIf, "master", "cni0")
	v4, v6 := n.PodCIDRs[0], n.PodCIDRs[1]
	a4 := netip.PrefixFrom(NthAddr(v4.Addr(), k+1), v4.Bits())
	a6 := netip.PrefixFrom(NthAddr(v6.Addr(), k+1), v6.Bits())
	h.AddAddr("eth0", a4)
	h.AddAddr("eth0", a6)
	link := h.Link("eth0")
	link.Addrs = append(link.Addrs, a4, a6)
	h.MustRun("ip", "route", "add", "default", "via", v4.Addr().Next().String())
	h.MustRun("ip", "-6", "route", "add", "default", "via", v6.Addr().Next().String())
	p := &Pod{Host: h, Name: name, Node: n}
	n.mu.Lock()
	n.pods = append(n.pods, p)
	n.mu.Unlock()
	return p
}

// NthAddr returns a plus n.
func NthAddr(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

// PodServerPort is the port Pod.Serve listens on by default.
const PodServerPort = 8080

// Serve starts the pod's server on port (PodServerPort when 0), on all its addresses,
// and waits until it listens. The server answers each connection with the pod's name
// and the client's address (see ParsePodReply).
func (p *Pod) Serve(port int) *Process {
	t := p.lab.t
	t.Helper()
	if port == 0 {
		port = PodServerPort
	}
	bin := BuildGo(t, PodServerPackage)
	proc := p.Start("podserver", bin, "-name", p.Name, "-listen", fmt.Sprintf(":%d", port))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := proc.WaitLog(ctx, "listening on"); err != nil {
		t.Fatalf("%v", err)
	}
	p.Server = proc
	return proc
}

// PodReply is what a pod's server said.
type PodReply struct {
	// Pod is the name of the pod that answered.
	Pod string
	// Client is the connection's source address as the pod saw it.
	Client netip.AddrPort
}

// ParsePodReply parses a pod server's answer, "<name> <client address:port>\n".
func ParsePodReply(s string) (PodReply, error) {
	var name, client string
	if _, err := fmt.Sscanf(s, "%s %s\n", &name, &client); err != nil {
		return PodReply{}, fmt.Errorf("netlab: pod reply %q: %w", s, err)
	}
	ap, err := netip.ParseAddrPort(client)
	if err != nil {
		return PodReply{}, fmt.Errorf("netlab: pod reply %q: %w", s, err)
	}
	return PodReply{Pod: name, Client: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// ConnectPod connects from h to dst like Connect and parses the pod's answer.
func (h *Host) ConnectPod(ctx context.Context, dst netip.AddrPort) (PodReply, error) {
	s, err := h.Connect(ctx, dst)
	if err != nil {
		return PodReply{}, err
	}
	return ParsePodReply(s)
}
