// Command measure-scale measures what each speaker costs the API server and
// its peers as the cluster grows (issue 18): it runs N hollow nodes, each the
// real herald-speaker binary with its own API connection, membership and
// status writes, all in one network namespace (each node an address on one
// bridge without ports, so announcements go nowhere), with the real herald-controller,
// and reports per node:
//
//   - membership convergence: from starting every speaker to every speaker
//     counting N live members;
//   - watch events the API server sent (apiserver_watch_events_total, by
//     kind, over all watchers: the speakers and the one controller) and the
//     speakers' status writes and events, per node and second: at rest, on a
//     change of 10 Services, and on a node's death;
//   - failure detection: from SIGKILL of one speaker to every other speaker
//     counting N-1 live members.
//
// Run as root from e2e/, for example:
//
//	go run ./cmd/measure-scale -nodes 10,30,100
//
// A cost per node that stays flat as N grows is linear in the cluster; one
// that grows with N is what must not be there at 1,000 nodes.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

const (
	metricsPort = 7473
	services    = 10
	// lan is the hollow nodes' network: node i has lan's address i.
	lanBits = 24
)

var (
	lan  = netip.MustParsePrefix("198.51.100.0/24")
	pool = netip.MustParsePrefix("198.51.100.192/27")
)

func main() {
	nodes := flag.String("nodes", "10,30,100", "comma-separated cluster sizes to measure, each in a fresh lab (at most 150)")
	rest := flag.Duration("rest", 60*time.Second, "how long the cluster is watched at rest")
	window := flag.Duration("window", 20*time.Second, "how long the costs of a change are counted")
	dir := flag.String("dir", "", "directory for logs (default a temporary one)")
	convergeLimit := flag.Duration("converge-limit", 10*time.Minute, "how long the speakers may take to count every member before the size is given up")
	cpuProfile := flag.Bool("cpu-profile", false, "run the speakers with --profiling and save a CPU profile of the first one over the rest window (cpu-N.pprof in the log directory)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dir == "" {
		d, err := os.MkdirTemp("", "measure-scale-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	var sizes []int
	for _, f := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 150 {
			fmt.Fprintf(os.Stderr, "measure-scale: bad -nodes entry %q (2 to 150)\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("measure-scale: started %s, load average %s; logs in %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(strings.Fields(string(load))[:3], " "), *dir)

	var results []result
	for _, n := range sizes {
		r, err := measure(ctx, n, *rest, *window, *convergeLimit, *cpuProfile, filepath.Join(*dir, fmt.Sprintf("n%d", n)))
		if err != nil {
			fmt.Fprintf(os.Stderr, "measure-scale: %d nodes: %v\n", n, err)
			if len(results) > 0 {
				printResults(results) // the sizes measured before
			}
			os.Exit(1)
		}
		results = append(results, r)
	}
	printResults(results)
}

// result is one cluster size's figures.
type result struct {
	nodes               int
	converge, detect    time.Duration
	rest, change, death phase
}

// phase is what a window cost: API server watch events by kind, and the
// speakers' status writes and events, over its duration.
type phase struct {
	d       time.Duration
	watch   map[string]float64
	writes  float64 // SpeakerStatus writes, all speakers
	events  float64 // Events, all speakers
	cpu     float64 // CPU seconds the speakers used (process_cpu_seconds_total)
	members float64 // speakers measured (N, or N-1 after a death)
}

func (p phase) watchTotal() float64 {
	var s float64
	for _, v := range p.watch {
		s += v
	}
	return s
}

// perNodeSecond divides a cluster-wide count by the speakers and the window.
func (p phase) perNodeSecond(v float64) float64 {
	return v / p.members / p.d.Seconds()
}

func measure(ctx context.Context, n int, rest, window, convergeLimit time.Duration, profile bool, dir string) (result, error) {
	res := result{nodes: n}
	sess, err := netlab.NewSession(ctx, "measure-scale", dir)
	if err != nil {
		return res, err
	}
	defer sess.Close()
	speakerlab.Require(sess)
	speakerBin := netlab.BuildGo(sess, speakerlab.SpeakerPackage)
	controllerBin := netlab.BuildGo(sess, productlab.ControllerPackage)

	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		return res, fmt.Errorf("start control plane: %w", err)
	}
	sess.Cleanup(func() { _ = cp.Stop() })
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	herald := heraldclient.NewForConfigOrDie(cp.Config())

	lab := netlab.New(sess, netlab.Options{Dir: dir})
	h := lab.AddHost("hollow")
	h.MustRun("ip", "link", "add", "lan0", "type", "bridge") // no ports: frames go nowhere
	h.MustRun("ip", "link", "set", "lan0", "up")
	addrs := make([]netip.Addr, n)
	a := lan.Addr()
	for i := range n {
		a = a.Next()
		addrs[i] = a
		h.AddAddr("lan0", netip.PrefixFrom(a, lanBits))
	}
	if err := speakerlab.ServeAPI(sess, h, "127.0.0.1:6443", strings.TrimPrefix(cp.URL, "https://")); err != nil {
		return res, err
	}
	kc := cp.Config()
	kc.Host = "https://127.0.0.1:6443"
	kubeconfig := filepath.Join(dir, "hollow.kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, kc); err != nil {
		return res, err
	}

	for i, addr := range addrs {
		if err := writeNode(ctx, kube, nodeName(i), addr); err != nil {
			return res, err
		}
	}
	if _, err := herald.HeraldV1alpha1().IPPools().Create(ctx, &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []string{pool.String()}},
	}, metav1.CreateOptions{}); err != nil {
		return res, fmt.Errorf("create IPPool: %w", err)
	}
	if _, err := herald.HeraldV1alpha1().L2Advertisements().Create(ctx, &v1alpha1.L2Advertisement{
		ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Spec:       v1alpha1.L2AdvertisementSpec{IPPools: []string{"scale"}},
	}, metav1.CreateOptions{}); err != nil {
		return res, fmt.Errorf("create L2Advertisement: %w", err)
	}
	h.StartProcess(netlab.ProcessSpec{Name: "controller", Args: []string{controllerBin,
		"--kubeconfig=" + kubeconfig, "--leader-elect=false", "--metrics-bind-address=127.0.0.1:7472", "--log-format=text"}})

	// The speakers, then membership convergence.
	start := time.Now()
	procs := make([]*netlab.Process, n)
	for i, addr := range addrs {
		args := []string{speakerBin,
			"--node-name=" + nodeName(i),
			"--kubeconfig=" + kubeconfig,
			"--metrics-address=" + netip.AddrPortFrom(addr, metricsPort).String(),
			"--memberlist-bind-address=" + addr.String(),
			"--memberlist-advertise-address=" + addr.String(),
			"--namespace=herald-system",
			"--log-format=text",
		}
		if profile {
			args = append(args, "--profiling")
		}
		procs[i] = h.StartProcess(netlab.ProcessSpec{Name: nodeName(i), Args: args})
	}
	m := &metrics{h: h, addrs: addrs}
	if err := m.waitMembers(ctx, addrs, n, convergeLimit); err != nil {
		return res, fmt.Errorf("membership: %w", err)
	}
	res.converge = time.Since(start)
	fmt.Printf("%d nodes: every speaker counts %d live members %v after the start\n", n, n, res.converge.Round(time.Millisecond))
	time.Sleep(10 * time.Second) // start-up writes settle

	snap := func(members []netip.Addr) (snapshot, error) { return m.snapshot(ctx, cp, members) }
	diff := func(a, b snapshot, members []netip.Addr) phase {
		p := phase{d: b.at.Sub(a.at), watch: map[string]float64{}, members: float64(len(members))}
		for k, v := range b.watch {
			p.watch[k] = v - a.watch[k]
		}
		p.writes, p.events, p.cpu = b.writes-a.writes, b.events-a.events, b.cpu-a.cpu
		return p
	}

	// At rest.
	s0, err := snap(addrs)
	if err != nil {
		return res, err
	}
	if profile {
		path := filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", n))
		if err := m.cpuProfile(ctx, addrs[0], rest, path); err != nil {
			return res, err
		}
		fmt.Printf("%d nodes: CPU profile of %s at rest in %s\n", n, nodeName(0), path)
	} else {
		sleep(ctx, rest)
	}
	s1, err := snap(addrs)
	if err != nil {
		return res, err
	}
	res.rest = diff(s0, s1, addrs)

	// A change of 10 Services: created with two endpoints each, allocated,
	// announced.
	for i := range services {
		if err := createService(ctx, kube, fmt.Sprintf("scale-%02d", i), nodeName(i%n), nodeName((i+1)%n)); err != nil {
			return res, err
		}
	}
	sleep(ctx, window)
	s2, err := snap(addrs)
	if err != nil {
		return res, err
	}
	res.change = diff(s1, s2, addrs)

	// A node's death: the last speaker SIGKILLed. The killed speaker's
	// counters go with it, so the survivors' own are read at once and the
	// phase's writes, events and CPU are theirs from then on.
	_ = procs[n-1].Kill()
	killed := time.Now()
	alive := addrs[:n-1]
	s2alive, err := m.speakerTotals(ctx, alive)
	if err != nil {
		return res, err
	}
	if err := m.waitMembers(ctx, alive, n-1, 2*time.Minute); err != nil {
		return res, fmt.Errorf("failure detection: %w", err)
	}
	res.detect = time.Since(killed)
	fmt.Printf("%d nodes: every other speaker counts %d live members %v after the SIGKILL\n", n, n-1, res.detect.Round(time.Millisecond))
	sleep(ctx, window-time.Since(killed))
	s3, err := snap(alive)
	if err != nil {
		return res, err
	}
	res.death = diff(s2, s3, alive)
	res.death.writes, res.death.events, res.death.cpu = s3.writes-s2alive.writes, s3.events-s2alive.events, s3.cpu-s2alive.cpu
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func nodeName(i int) string { return fmt.Sprintf("hollow-%03d", i+1) }

// writeNode creates a Node with addr as its InternalIP.
func writeNode(ctx context.Context, kube kubernetes.Interface, name string, addr netip.Addr) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	created, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create Node %s: %w", name, err)
	}
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr.String()}}
	if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("write status of Node %s: %w", name, err)
	}
	return nil
}

// createService creates a LoadBalancer Service with a ready endpoint on each
// of the nodes.
func createService(ctx context.Context, kube kubernetes.Interface, name string, nodes ...string) error {
	no := false
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Service %s: %w", name, err)
	}
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, node := range nodes {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("203.0.113.%d", 10+i)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &node,
		})
	}
	if _, err := kube.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create EndpointSlice %s: %w", name, err)
	}
	return nil
}

// metrics reads the hollow speakers' metrics and the API server's.
type metrics struct {
	h     *netlab.Host
	addrs []netip.Addr
}

// snapshot is the counters at one moment.
type snapshot struct {
	at             time.Time
	watch          map[string]float64 // apiserver_watch_events_total by resource
	writes, events float64            // the speakers' status writes and events
	cpu            float64            // the speakers' CPU seconds
}

func (m *metrics) snapshot(ctx context.Context, cp *controlplane.ControlPlane, members []netip.Addr) (snapshot, error) {
	s, err := m.speakerTotals(ctx, members)
	if err != nil {
		return s, err
	}
	body, err := kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return s, fmt.Errorf("API server metrics: %w", err)
	}
	s.watch = map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "apiserver_watch_events_total{") {
			continue
		}
		v, labels, ok := parseSample(line)
		if !ok {
			continue
		}
		s.watch[labels["resource"]] += v
	}
	return s, nil
}

// speakerTotals sums the speakers' status writes and events.
func (m *metrics) speakerTotals(ctx context.Context, members []netip.Addr) (snapshot, error) {
	s := snapshot{at: time.Now()}
	for _, a := range members {
		samples, err := m.read(ctx, a)
		if err != nil {
			return s, err
		}
		s.writes += sum(samples, "herald_speaker_status_writes_total")
		s.events += sum(samples, "herald_speaker_events_total")
		s.cpu += sum(samples, "process_cpu_seconds_total")
	}
	return s, nil
}

// waitMembers waits until every speaker at members counts want live members.
func (m *metrics) waitMembers(ctx context.Context, members []netip.Addr, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	pending := slices.Clone(members)
	for len(pending) > 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d speakers do not count %d live members after %v (first: %v)", len(pending), want, limit, pending[0])
		}
		var next []netip.Addr
		for i, a := range pending {
			if time.Now().After(deadline) || ctx.Err() != nil {
				// Starved speakers answer slowly: do not read the rest.
				next = append(next, pending[i:]...)
				break
			}
			samples, err := m.read(ctx, a)
			if err != nil || sumWhere(samples, "herald_speaker_members", "state", "alive") != float64(want) {
				next = append(next, a)
			}
		}
		pending = next
		if len(pending) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// cpuProfile saves the speaker at a's CPU profile over d to path.
func (m *metrics) cpuProfile(ctx context.Context, a netip.Addr, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", netip.AddrPortFrom(a, metricsPort), int(d.Seconds()))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := m.h.HTTPClient(d + 30*time.Second).Do(req)
	if err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CPU profile: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	return os.WriteFile(path, body, 0o644)
}

func (m *metrics) read(ctx context.Context, a netip.Addr) ([]sample, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+netip.AddrPortFrom(a, metricsPort).String()+"/metrics", nil)
	resp, err := m.h.HTTPClient(5 * time.Second).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "herald_speaker_") && !strings.HasPrefix(line, "process_cpu_seconds_total ") {
			continue
		}
		v, labels, ok := parseSample(line)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		out = append(out, sample{name: name, labels: labels, value: v})
	}
	return out, sc.Err()
}

func sum(samples []sample, name string) float64 {
	var s float64
	for _, x := range samples {
		if x.name == name {
			s += x.value
		}
	}
	return s
}

func sumWhere(samples []sample, name, label, value string) float64 {
	var s float64
	for _, x := range samples {
		if x.name == name && x.labels[label] == value {
			s += x.value
		}
	}
	return s
}

// parseSample parses `name{a="b",c="d"} 12` (labels optional).
func parseSample(line string) (float64, map[string]string, bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return 0, nil, false
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		return 0, nil, false
	}
	labels := map[string]string{}
	if open := strings.IndexByte(line, '{'); open >= 0 {
		if close := strings.LastIndexByte(line[:i], '}'); close > open {
			for _, kv := range strings.Split(line[open+1:close], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if ok {
					labels[k] = strings.Trim(v, `"`)
				}
			}
		}
	}
	return v, labels, true
}

func printResults(rs []result) {
	fmt.Println()
	fmt.Println("| nodes | membership convergence | failure detection (SIGKILL to every survivor's count) |")
	fmt.Println("|---|---|---|")
	for _, r := range rs {
		fmt.Printf("| %d | %v | %v |\n", r.nodes, r.converge.Round(time.Millisecond), r.detect.Round(time.Millisecond))
	}
	fmt.Println()
	fmt.Println("Per node and second (cluster-wide counts divided by the speakers and the window):")
	fmt.Println()
	fmt.Println("| nodes | phase | watch events received (all kinds) | top resources | status writes | events written | speaker CPU (ms) |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rs {
		for _, p := range []struct {
			name string
			ph   phase
		}{{"at rest", r.rest}, {fmt.Sprintf("%d Services created", services), r.change}, {"a node's death", r.death}} {
			fmt.Printf("| %d | %s (%v) | %.3f | %s | %.4f | %.4f | %.1f |\n", r.nodes, p.name, p.ph.d.Round(time.Second),
				p.ph.perNodeSecond(p.ph.watchTotal()), topKinds(p.ph), p.ph.perNodeSecond(p.ph.writes), p.ph.perNodeSecond(p.ph.events),
				1000*p.ph.perNodeSecond(p.ph.cpu))
		}
	}
}

// topKinds names the kinds with the most watch events in p, per node and second.
func topKinds(p phase) string {
	type kv struct {
		k string
		v float64
	}
	var kvs []kv
	for k, v := range p.watch {
		if v > 0 {
			kvs = append(kvs, kv{k, v})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if a.v != b.v {
			if a.v > b.v {
				return -1
			}
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for _, x := range kvs[:min(4, len(kvs))] {
		parts = append(parts, fmt.Sprintf("%s %.3f", x.k, p.perNodeSecond(x.v)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
