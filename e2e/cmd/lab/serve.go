package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

const (
	heraldNamespace = productlab.Namespace
	// podNodes is how many nodes (node1, node2, ...) run pods; the others have none.
	podNodes = 2
)

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...)
}

// lab is the running lab, as serve builds it.
type lab struct {
	root    string
	sess    *netlab.Session
	cp      *controlplane.ControlPlane
	cluster *netlab.Cluster
	kube    kubernetes.Interface
	herald  heraldclient.Interface
	// routerNote says how the router was set up for the BGP example.
	routerNote string
}

// serve builds the lab, writes the report, and keeps the lab until SIGTERM or SIGINT.
func serve() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	sess, err := netlab.NewSession(ctx, "lab", statePath("logs"))
	if err != nil {
		return err
	}
	// Registered first, so it runs last: tells `lab up` that bring-up failed.
	sess.Cleanup(func() {
		if sess.Failed() {
			_ = os.WriteFile(statePath(failedFile), nil, 0o644)
		}
	})
	l := &lab{root: root, sess: sess}
	if err := l.build(ctx); err != nil {
		progress("%v", err)
		_ = os.WriteFile(statePath(failedFile), nil, 0o644)
		sess.Close()
		return err
	}
	report, err := l.report(ctx)
	if err != nil {
		progress("%v", err)
		_ = os.WriteFile(statePath(failedFile), nil, 0o644)
		sess.Close()
		return err
	}
	tmp := statePath(reportFile + ".tmp")
	if err := os.WriteFile(tmp, []byte(report), 0o644); err == nil {
		err = os.Rename(tmp, statePath(reportFile))
	}
	progress("up; keeping the lab until sudo make lab-down")
	<-ctx.Done()
	progress("stopping")
	sess.Close()
	progress("stopped")
	return nil
}

// build starts everything and applies examples/. Failures of netlab calls end the
// process through the session's Fatalf (which tears down what was built).
func (l *lab) build(ctx context.Context) error {
	progress("building herald-controller and herald-speaker; starting etcd and kube-apiserver; " +
		"building the network (router, control-plane host, client, 3 nodes with kube-proxy); starting Herald")
	_ = os.RemoveAll(statePath("controlplane")) // a fresh cluster every time
	// The binaries run as deploy/default says: its arguments, environment, users,
	// capabilities and read-only root (productlab.Options.Manifests).
	pl := productlab.New(l.sess, productlab.Options{
		Dir:       StateDir,
		Manifests: true,
		OnNetwork: func(c *netlab.Cluster) error {
			if err := os.WriteFile(statePath(prefixFile), []byte(c.Lab.Prefix()+"\n"), 0o644); err != nil {
				return fmt.Errorf("write the prefix file: %w", err)
			}
			return nil
		},
	})
	l.cp, l.cluster, l.kube, l.herald = pl.CP, pl.Cluster, pl.Kube, pl.Herald
	cp := l.cp

	progress("applying examples/")
	out, err := cp.Kubectl(ctx, "apply", "-f", filepath.Join(l.root, "examples")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl apply -f examples/: %w\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		progress("  %s", line)
	}

	l.routerNote = l.startRouter(ctx)

	progress("starting pods on %s and writing EndpointSlices", strings.Join(l.cluster.NodeNames()[:podNodes], ", "))
	return l.addPods(ctx)
}

// startRouter starts FRR on the router for the BGP example's BGPPeer when the
// example points at the router's address, accepting sessions from the LAN with the
// example's AS numbers and password. It returns a line for the report.
func (l *lab) startRouter(ctx context.Context) string {
	r := l.cluster.Router
	peers, err := l.herald.HeraldV1alpha1().BGPPeers().List(ctx, metav1.ListOptions{})
	if err != nil || len(peers.Items) == 0 {
		return "router: no BGPPeer in examples/; FRR not started"
	}
	p := peers.Items[0]
	addr, err := netip.ParseAddr(p.Spec.PeerAddress)
	if err != nil || addr != r.Addr4() {
		return fmt.Sprintf("router: BGPPeer %s points at %s, not at the lab's router %s; FRR not started", p.Name, p.Spec.PeerAddress, r.Addr4())
	}
	password := ""
	if ref := p.Spec.PasswordSecretRef; ref != nil {
		ns := ref.Namespace
		if ns == "" {
			ns = heraldNamespace
		}
		s, err := l.kube.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Sprintf("router: read the password Secret %s/%s: %v; FRR not started", ns, ref.Name, err)
		}
		password = string(s.Data[ref.Key])
	}
	cfg := netlab.BGPConfig{ASN: uint32(p.Spec.PeerASN), InstallRoutes: true}
	bfd := p.Spec.BFD != nil && (p.Spec.BFD.Enabled == nil || *p.Spec.BFD.Enabled)
	if !bfd {
		progress("starting FRR on the router (AS %d, accepting AS %d from %s)", p.Spec.PeerASN, p.Spec.MyASN, netlab.LANv4)
		cfg.ListenRanges, cfg.ListenASN, cfg.ListenPassword = []netip.Prefix{netlab.LANv4}, uint32(p.Spec.MyASN), password
		r.StartBGP(cfg)
		return fmt.Sprintf("router: FRR at %s, AS %d, accepts BGPPeer %q's sessions (AS %d, with its password) from the LAN", r.Addr4(), p.Spec.PeerASN, p.Name, p.Spec.MyASN)
	}
	// BFD: FRR 8.4 runs no BFD for the sessions of a listen range, so every node is
	// a configured, passive neighbour with the BGPPeer's BFD timers.
	timers := netlab.BGPNeighborConfig{BFD: true}
	if d := p.Spec.BFD.MinRx; d != nil {
		timers.BFDMinRx = d.Duration
	}
	if d := p.Spec.BFD.MinTx; d != nil {
		timers.BFDMinTx = d.Duration
	}
	if m := p.Spec.BFD.Multiplier; m != nil {
		timers.BFDMultiplier = int(*m)
	}
	for _, n := range l.cluster.Nodes {
		nb := timers
		nb.Address, nb.ASN, nb.Password, nb.Passive = n.Addr4(), uint32(p.Spec.MyASN), password, true
		cfg.Neighbors = append(cfg.Neighbors, nb)
	}
	detect := fmt.Sprintf("%d x %v", cmp.Or(timers.BFDMultiplier, 3), max(cmp.Or(timers.BFDMinRx, 300*time.Millisecond), cmp.Or(timers.BFDMinTx, 300*time.Millisecond)))
	progress("starting FRR on the router (AS %d, accepting AS %d from the nodes, with BFD %s)", p.Spec.PeerASN, p.Spec.MyASN, detect)
	r.StartBGP(cfg)
	return fmt.Sprintf("router: FRR at %s, AS %d, accepts BGPPeer %q's sessions (AS %d, with its password) from the nodes, with BFD (%s): a node that fails leaves the router's ECMP within the BFD detection time, about a second, not the hold time", r.Addr4(), p.Spec.PeerASN, p.Name, p.Spec.MyASN, detect)
}

// addPods starts, for every app the Services select, one pod on each of the first
// podNodes nodes serving the Services' first TCP target port, and writes each
// Service's EndpointSlices.
func (l *lab) addPods(ctx context.Context) error {
	svcs, err := l.services(ctx)
	if err != nil {
		return err
	}
	type app struct{ namespace, name string }
	pods := map[app][]*netlab.Pod{}
	for _, svc := range svcs {
		a := app{svc.Namespace, svc.Spec.Selector["app"]}
		if a.name == "" {
			continue
		}
		if _, ok := pods[a]; !ok {
			port := tcpTargetPort(svcs, a.namespace, a.name)
			for _, n := range l.cluster.Nodes[:podNodes] {
				pod := n.AddPod(fmt.Sprintf("%s-%s", a.name, n.Name()))
				if port != 0 {
					pod.Serve(port)
				}
				pods[a] = append(pods[a], pod)
			}
		}
		var eps []netlab.Endpoint
		for _, p := range pods[a] {
			eps = append(eps, netlab.Endpoint{Pod: p, State: netlab.EndpointReady})
		}
		if err := l.cluster.SetEndpoints(ctx, svc.Namespace, svc.Name, eps...); err != nil {
			return err
		}
	}
	return nil
}

// tcpTargetPort returns the first TCP target port of the Services selecting app in
// namespace, or 0.
func tcpTargetPort(svcs []corev1.Service, namespace, app string) int {
	for _, s := range svcs {
		if s.Namespace != namespace || s.Spec.Selector["app"] != app {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Protocol == corev1.ProtocolTCP && p.TargetPort.IntValue() != 0 {
				return p.TargetPort.IntValue()
			}
		}
	}
	return 0
}

// services returns the Services from examples/ (every Service but default/kubernetes),
// sorted by namespace and name.
func (l *lab) services(ctx context.Context) ([]corev1.Service, error) {
	list, err := l.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Services: %w", err)
	}
	var out []corev1.Service
	for _, s := range list.Items {
		if s.Namespace == "default" && s.Name == "kubernetes" {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b corev1.Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out, nil
}

// serviceAddrs returns the addresses Herald gave svc: its load-balancer ingress, or
// for other Services its spec.externalIPs.
func serviceAddrs(svc corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a)
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		for _, s := range svc.Spec.ExternalIPs {
			if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// routed reports whether addr is in the lab's routed (BGP) pools.
func routed(addr netip.Addr) bool {
	return netlab.RoutedPoolV4.Contains(addr) || netlab.RoutedPoolV6.Contains(addr)
}

// report waits until the Services have addresses and the layer-2 ones are announced
// (bounded), connects from the client to each, and renders the report.
func (l *lab) report(ctx context.Context) (string, error) {
	progress("waiting for addresses and announcements")
	var svcs []corev1.Service
	var statuses []v1alpha1.SpeakerStatus
	_ = netlab.Poll(ctx, 30*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		var err error
		if svcs, err = l.services(ctx); err != nil {
			return err
		}
		st, err := l.herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		statuses = st.Items
		for _, s := range svcs {
			addrs := serviceAddrs(s)
			if len(addrs) == 0 {
				return fmt.Errorf("%s/%s has no address yet", s.Namespace, s.Name)
			}
			ann := Announcements(statuses, s.Namespace+"/"+s.Name, nil)
			for _, a := range addrs {
				if !routed(a) && len(ann[a]) == 0 {
					return fmt.Errorf("%s of %s/%s is not announced yet", a, s.Namespace, s.Name)
				}
			}
		}
		return nil
	})
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var rows []ServiceRow
	for _, s := range svcs {
		key := s.Namespace + "/" + s.Name
		row := ServiceRow{Service: key, Addresses: serviceAddrs(s)}
		var bgpAddrs []netip.Addr
		for _, a := range row.Addresses {
			if routed(a) {
				bgpAddrs = append(bgpAddrs, a)
			}
		}
		row.Announcers = Announcements(statuses, key, bgpAddrs)
		if len(row.Addresses) == 0 {
			row.Note = l.lastWarning(ctx, s)
		}
		for _, a := range bgpAddrs {
			if len(row.Announcers[a]) == 0 {
				row.Note = "BGP address: no node advertises it; see kubectl get speakerstatuses"
				if !anyBGPSession(statuses) {
					row.Note = "BGP address: no speaker reports a BGP session, so no node advertises it; see kubectl get speakerstatuses and the router's log in " + statePath("logs")
				}
				break
			}
		}
		if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			row.Note = strings.TrimPrefix(row.Note+"; externalTrafficPolicy Local: only nodes with a ready pod may announce", "; ")
		}
		for _, a := range row.Addresses {
			for _, p := range s.Spec.Ports {
				if p.Protocol != corev1.ProtocolTCP {
					continue
				}
				row.Probes = append(row.Probes, l.probe(ctx, netip.AddrPortFrom(a, uint16(p.Port))))
			}
		}
		rows = append(rows, row)
	}
	return l.render(ctx, rows), nil
}

// anyBGPSession reports whether any speaker reports a BGP session.
func anyBGPSession(statuses []v1alpha1.SpeakerStatus) bool {
	return slices.ContainsFunc(statuses, func(st v1alpha1.SpeakerStatus) bool { return len(st.Status.BGPSessions) > 0 })
}

// probe connects from the client to target, trying a few times, and says which pod
// answered.
func (l *lab) probe(ctx context.Context, target netip.AddrPort) Probe {
	var last error
	for range 3 {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		reply, err := l.cluster.Client.ConnectPod(cctx, target)
		cancel()
		if err == nil {
			return Probe{Target: target, Pod: reply.Pod}
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	msg := last.Error()
	if errors.Is(last, context.DeadlineExceeded) {
		msg = "timed out"
	}
	return Probe{Target: target, Err: msg}
}

// lastWarning returns the message of the Service's latest Warning event, if any.
func (l *lab) lastWarning(ctx context.Context, svc corev1.Service) string {
	evs, err := l.kube.CoreV1().Events(svc.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + svc.Name,
	})
	if err != nil {
		return ""
	}
	var msg string
	var at time.Time
	for _, e := range evs.Items {
		t := e.LastTimestamp.Time
		if t.IsZero() {
			t = e.EventTime.Time
		}
		if e.Type == corev1.EventTypeWarning && !t.Before(at) {
			msg, at = e.Reason+": "+e.Message, t
		}
	}
	return msg
}

// render writes the report: the Services table, the BGP sessions at the router, and
// how to use and remove the lab.
func (l *lab) render(ctx context.Context, rows []ServiceRow) string {
	var b strings.Builder
	c := l.cluster
	fmt.Fprintf(&b, "\nHerald lab is up: control plane, %s (speaker + kube-proxy each; pods on %s), controller, router, client.\n\n",
		strings.Join(c.NodeNames(), ", "), strings.Join(c.NodeNames()[:podNodes], ", "))
	b.WriteString(FormatReport(rows))
	b.WriteString("\n" + l.routerNote + "\n")
	if c.Router.Daemons() != nil {
		if ns, err := c.Router.Neighbors(ctx); err == nil {
			if len(ns) == 0 {
				b.WriteString("router: no BGP session (no speaker has dialled it)\n")
			}
			for _, n := range ns {
				bfd := ""
				if n.BFDStatus != "" {
					bfd = ", BFD " + n.BFDStatus
				}
				fmt.Fprintf(&b, "router: BGP session with %s (AS %d): %s%s\n", n.Address, n.RemoteAS, n.State, bfd)
			}
		}
	}
	fmt.Fprintf(&b, `
Play with it:
  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get svc -A; kubectl get ippools; kubectl get speakerstatuses
  ip netns exec %s-client curl -s telnet://<address>:<port>   (the client's namespace)
Logs: %s
Remove it: sudo make lab-down
`, l.cp.Kubeconfig, l.cp.Binaries.Kubectl, c.Lab.Prefix(), statePath("net"))
	return b.String()
}
