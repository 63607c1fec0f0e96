package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/herald-dev/herald/config"
	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// APIServerPort is the port the control-plane host forwards to the apiserver.
const APIServerPort = 6443

// EndpointSliceManager is the endpointslice.kubernetes.io/managed-by value of the
// slices SetEndpoints writes.
const EndpointSliceManager = "netlab.herald.dev"

// connectControlPlane makes the apiserver reachable in the lab: the control-plane host
// listens on its LAN addresses, port 6443, and this process copies each connection to
// the apiserver's own address. The apiserver keeps running where the control-plane
// harness put it (loopback of the machine); only the lab's hosts and this process
// carry the traffic.
func (c *Cluster) connectControlPlane(t T, cfg *rest.Config) {
	t.Helper()
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		t.Fatalf("netlab: apiserver address %q: %v", cfg.Host, err)
	}
	target := u.Host
	var lns []net.Listener
	for _, a := range []netip.Addr{c.ControlPlane.Addr4(), c.ControlPlane.Addr6()} {
		ln, err := c.ControlPlane.Listen("tcp", netip.AddrPortFrom(a, APIServerPort).String())
		if err != nil {
			t.Fatalf("%v", err)
		}
		lns = append(lns, ln)
	}
	proxy := newTCPProxy(lns, target)
	c.Lab.onClose(proxy.close)
	c.apiProxy = proxy
	c.APIServer = netip.AddrPortFrom(c.ControlPlane.Addr4(), APIServerPort)

	c.NodeKubeconfig = filepath.Join(c.Lab.Dir(), "node-kubeconfig")
	if err := writeLabKubeconfig(c.NodeKubeconfig, cfg, "https://"+c.APIServer.String()); err != nil {
		t.Fatalf("%v", err)
	}
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatalf("netlab: client: %v", err)
	}
	if c.Herald, err = heraldclient.NewForConfig(cfg); err != nil {
		t.Fatalf("netlab: Herald client: %v", err)
	}
	for _, n := range c.Nodes {
		if err := c.RegisterNode(t.Context(), n); err != nil {
			t.Fatalf("%v", err)
		}
	}
}

// WriteKubeconfig writes a kubeconfig file at path for a process inside the lab: cfg's
// credentials (for example a service-account token), with the lab's apiserver address
// (APIServer) as the server.
func (c *Cluster) WriteKubeconfig(path string, cfg *rest.Config) error {
	if !c.APIServer.IsValid() {
		return errors.New("netlab: the cluster has no control plane (ClusterOptions.RESTConfig)")
	}
	return writeLabKubeconfig(path, cfg, "https://"+c.APIServer.String())
}

// writeLabKubeconfig writes a kubeconfig with cfg's credentials whose server is
// server. The apiserver's certificate does not name the lab address, so the TLS server
// name is the host of cfg's own address, which it does name.
func writeLabKubeconfig(path string, cfg *rest.Config, server string) error {
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return fmt.Errorf("netlab: apiserver address %q: %w", cfg.Host, err)
	}
	serverName := cfg.TLSClientConfig.ServerName
	if serverName == "" {
		serverName = u.Hostname()
	}
	const name = "netlab"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: cfg.CAData,
		CertificateAuthority:     cfg.CAFile,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            serverName,
	}
	if cfg.Insecure {
		kc.Clusters[name].TLSServerName = ""
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		ClientCertificateData: cfg.CertData,
		ClientCertificate:     cfg.CertFile,
		ClientKeyData:         cfg.KeyData,
		ClientKey:             cfg.KeyFile,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("netlab: write kubeconfig: %w", err)
	}
	return nil
}

// LabRESTConfig returns a copy of the cluster's REST config that reaches the apiserver
// through the lab (for a process or client that runs inside a lab host).
func (c *Cluster) LabRESTConfig() *rest.Config {
	cfg := rest.CopyConfig(c.restConfig)
	u, _ := url.Parse(cfg.Host)
	if cfg.TLSClientConfig.ServerName == "" && !cfg.Insecure {
		cfg.TLSClientConfig.ServerName = u.Hostname()
	}
	cfg.Host = "https://" + c.APIServer.String()
	return cfg
}

// tcpProxy copies connections accepted on its listeners to target. It can
// also play a slow or failing apiserver for the lab's processes (APIFault).
type tcpProxy struct {
	lns    []net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	fault  APIFault
	wg     sync.WaitGroup
}

// APIFault is how the lab's path to the apiserver misbehaves: the zero value
// is a healthy path.
type APIFault struct {
	// Delay holds back every chunk of data, each way, this long.
	Delay time.Duration
	// RefusePercent of the new connections are closed as soon as accepted.
	RefusePercent int
}

// SetAPIFault makes the lab's path to the apiserver (every process in a lab
// host reaches it through the control-plane host) behave as f; with reset,
// it first cuts every open connection, as an apiserver that goes away does.
// The test process's own clients (Kube, Herald) do not go through it.
func (c *Cluster) SetAPIFault(f APIFault, reset bool) {
	if c.apiProxy == nil {
		return
	}
	c.apiProxy.setFault(f, reset)
}

func (p *tcpProxy) setFault(f APIFault, reset bool) {
	p.mu.Lock()
	p.fault = f
	var open []net.Conn
	if reset {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

func (p *tcpProxy) currentFault() APIFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

func newTCPProxy(lns []net.Listener, target string) *tcpProxy {
	p := &tcpProxy{lns: lns, target: target, conns: map[net.Conn]struct{}{}}
	for _, ln := range lns {
		p.wg.Add(1)
		go p.accept(ln)
	}
	return p
}

func (p *tcpProxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		if f := p.currentFault(); f.RefusePercent > 0 && rand.IntN(100) < f.RefusePercent {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			return
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// track records a connection pair; false when the proxy is closing.
func (p *tcpProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := p.currentFault().Delay; d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	if p.conns != nil {
		delete(p.conns, dst)
		delete(p.conns, src)
	}
	p.mu.Unlock()
}

func (p *tcpProxy) close() {
	for _, ln := range p.lns {
		ln.Close()
	}
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

// RegisterNode writes the Node object a kubelet would: the node's LAN addresses as
// InternalIP, its pod CIDRs, and a Ready condition.
func (c *Cluster) RegisterNode(ctx context.Context, n *Node) error {
	if c.Kube == nil {
		return errors.New("netlab: the cluster has no control plane (ClusterOptions.RESTConfig)")
	}
	nodes := c.Kube.CoreV1().Nodes()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{
			"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux",
		}},
	}
	for _, p := range n.PodCIDRs {
		node.Spec.PodCIDRs = append(node.Spec.PodCIDRs, p.String())
	}
	node.Spec.PodCIDR = node.Spec.PodCIDRs[0]
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = nodes.Get(ctx, n.name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("netlab: create node %s: %w", n.name, err)
	}
	now := metav1.Now()
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: n.name}}
	for _, a := range []netip.Addr{n.Addr4(), n.Addr6()} {
		created.Status.Addresses = append(created.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.String()})
	}
	created.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "netlab writes this condition; no kubelet runs", LastHeartbeatTime: now, LastTransitionTime: now,
	}}
	if _, err := nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("netlab: update status of node %s: %w", n.name, err)
	}
	return nil
}

// EndpointState is the condition of an endpoint as an EndpointSlice records it.
type EndpointState int

// Endpoint states, in a pod's life order.
const (
	// EndpointReady is a running, ready pod: ready, serving, not terminating.
	EndpointReady EndpointState = iota
	// EndpointNotReady is a pod that fails its readiness probe: nothing true.
	EndpointNotReady
	// EndpointTerminatingServing is a pod being deleted that still passes its
	// readiness probe: serving and terminating, not ready.
	EndpointTerminatingServing
	// EndpointTerminating is a pod being deleted that no longer serves: terminating.
	EndpointTerminating
)

func (s EndpointState) conditions() discoveryv1.EndpointConditions {
	b := func(v bool) *bool { return &v }
	switch s {
	case EndpointReady:
		return discoveryv1.EndpointConditions{Ready: b(true), Serving: b(true), Terminating: b(false)}
	case EndpointTerminatingServing:
		return discoveryv1.EndpointConditions{Ready: b(false), Serving: b(true), Terminating: b(true)}
	case EndpointTerminating:
		return discoveryv1.EndpointConditions{Ready: b(false), Serving: b(false), Terminating: b(true)}
	default:
		return discoveryv1.EndpointConditions{Ready: b(false), Serving: b(false), Terminating: b(false)}
	}
}

// Endpoint is one pod backing a Service.
type Endpoint struct {
	Pod   *Pod
	State EndpointState
}

// SetEndpoints writes the EndpointSlices of the Service namespace/name, one per IP
// family of the Service, holding eps (replacing what was there): each endpoint's pod
// address of that family, its node name, its conditions, and the Service's ports
// (targetPort, which must be a number). No endpointslice controller runs, so these
// slices are what kube-proxy and Herald's speaker see.
func (c *Cluster) SetEndpoints(ctx context.Context, namespace, name string, eps ...Endpoint) error {
	if c.Kube == nil {
		return errors.New("netlab: the cluster has no control plane (ClusterOptions.RESTConfig)")
	}
	svc, err := c.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("netlab: get service %s/%s: %w", namespace, name, err)
	}
	var ports []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		if sp.TargetPort.IntValue() == 0 {
			return fmt.Errorf("netlab: service %s/%s port %q: SetEndpoints needs a numeric targetPort", namespace, name, sp.Name)
		}
		ports = append(ports, discoveryv1.EndpointPort{
			Name: ptr(sp.Name), Protocol: ptr(sp.Protocol), Port: ptr(int32(sp.TargetPort.IntValue())),
		})
	}
	families := svc.Spec.IPFamilies
	if len(families) == 0 {
		families = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	slices := c.Kube.DiscoveryV1().EndpointSlices(namespace)
	for _, fam := range families {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-netlab-%s", name, strings.ToLower(string(fam))),
				Labels: map[string]string{
					discoveryv1.LabelServiceName: name,
					discoveryv1.LabelManagedBy:   EndpointSliceManager,
				},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: svc.UID}},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       ports,
		}
		if fam == corev1.IPv6Protocol {
			slice.AddressType = discoveryv1.AddressTypeIPv6
		}
		for _, ep := range eps {
			addr := ep.Pod.Addr4()
			if fam == corev1.IPv6Protocol {
				addr = ep.Pod.Addr6()
			}
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{addr.String()},
				Conditions: ep.State.conditions(),
				NodeName:   ptr(ep.Pod.Node.name),
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: ep.Pod.Name},
			})
		}
		old, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
		case err == nil:
			slice.ResourceVersion = old.ResourceVersion
			_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("netlab: write endpointslice %s/%s: %w", namespace, slice.Name, err)
		}
	}
	return nil
}

// SetLoadBalancerIngress writes addrs to the Service's status.loadBalancer.ingress, as
// Herald's controller would, so kube-proxy forwards traffic for them and a speaker may
// announce them: it first claims each address in pool for the Service (WriteClaim), and
// after the status write releases the addresses the status no longer names
// (ReleaseClaim). The cluster's control plane needs Herald's CRDs.
func (c *Cluster) SetLoadBalancerIngress(ctx context.Context, namespace, name, pool string, addrs ...netip.Addr) error {
	if c.Kube == nil {
		return errors.New("netlab: the cluster has no control plane (ClusterOptions.RESTConfig)")
	}
	svcs := c.Kube.CoreV1().Services(namespace)
	svc, err := svcs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("netlab: get service %s/%s: %w", namespace, name, err)
	}
	for _, a := range addrs {
		if err := WriteClaim(ctx, c.Herald, a, pool, svc, v1alpha1.HolderLoadBalancer); err != nil {
			return err
		}
	}
	old := config.LoadBalancerAddresses(svc)
	svc.Status.LoadBalancer.Ingress = nil
	for _, a := range addrs {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress,
			corev1.LoadBalancerIngress{IP: a.String(), IPMode: ptr(corev1.LoadBalancerIPModeVIP)})
	}
	if _, err := svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("netlab: update status of service %s/%s: %w", namespace, name, err)
	}
	for _, a := range old {
		if !slices.Contains(addrs, a) {
			if err := ReleaseClaim(ctx, c.Herald, a, namespace, name, v1alpha1.HolderLoadBalancer); err != nil {
				return err
			}
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// KubeProxyHealthPort is kube-proxy's node health port (/healthz, /livez).
const KubeProxyHealthPort = 10256

// StartKubeProxy runs kube-proxy (the binary at path) in the node, in iptables mode,
// as node <name> with the cluster's node kubeconfig, and waits until its node health
// port answers. It leaves conntrack limits alone (--conntrack-max-per-core=0) and
// syncs rules on every change (--iptables-min-sync-period=0).
func (n *Node) StartKubeProxy(path string) *Process {
	t := n.lab.t
	t.Helper()
	c := n.cluster
	if c == nil || c.NodeKubeconfig == "" {
		t.Fatalf("netlab: kube-proxy on %s needs a cluster with a control plane", n.name)
	}
	RequireCommands(t, path, "iptables", "ip6tables", "iptables-restore")
	var cidrs []string
	for _, p := range ClusterCIDRs() {
		cidrs = append(cidrs, p.String())
	}
	p := n.Start("kube-proxy", path,
		"--kubeconfig", c.NodeKubeconfig,
		"--hostname-override", n.name,
		"--proxy-mode", "iptables",
		"--conntrack-max-per-core", "0",
		"--conntrack-tcp-timeout-established", "0",
		"--conntrack-tcp-timeout-close-wait", "0",
		"--cluster-cidr", strings.Join(cidrs, ","),
		"--detect-local-mode", "ClusterCIDR",
		"--healthz-bind-address", fmt.Sprintf("0.0.0.0:%d", KubeProxyHealthPort),
		"--metrics-bind-address", "127.0.0.1:10249",
		"--iptables-min-sync-period", "0",
		"--v", "2")
	n.KubeProxy = p
	Eventually(t, 30*time.Second, func(ctx context.Context) error {
		if p.Exited() {
			return fmt.Errorf("kube-proxy on %s exited: %v\n%s", n.name, p.Err(), tailFile(p.logPath, 30))
		}
		code, body, err := n.HTTPGet(ctx, fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(n.Addr4(), KubeProxyHealthPort)))
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("kube-proxy on %s: /healthz answered %d: %s", n.name, code, body)
		}
		return nil
	})
	return p
}

// HTTPGet fetches url from inside the host and returns the status code and body
// (at most 1 MiB). It times out after 5 s.
func (h *Host) HTTPGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("netlab: GET %s: %w", url, err)
	}
	resp, err := h.HTTPClient(5 * time.Second).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("netlab: GET %s from %s: %w", url, h.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, string(b), fmt.Errorf("netlab: GET %s from %s: %w", url, h.name, err)
	}
	return resp.StatusCode, string(b), nil
}
