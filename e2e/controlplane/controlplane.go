package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
)

const (
	fieldManager = "herald-e2e"
	pollInterval = 20 * time.Millisecond
	// AdminUser is the identity of Config(): a member of system:masters.
	AdminUser = "admin"
)

// DefaultServiceClusterIPRanges are the Service ranges of a control plane started without
// Options.ServiceClusterIPRanges: one per family, so dual-stack Services work. They sit at
// the top of 198.51.100.0/24 and far up 2001:db8::/32 so they do not collide with lab hosts
// numbered from the bottom of those ranges.
var DefaultServiceClusterIPRanges = []netip.Prefix{
	netip.MustParsePrefix("198.51.100.192/26"),
	netip.MustParsePrefix("2001:db8:ffff:ffff::/112"),
}

// DefaultUsers are the ordinary users of a control plane started without Options.Users.
// They belong to no group but system:authenticated, so RBAC grants them nothing.
var DefaultUsers = []User{{Name: "alice"}, {Name: "bob"}, {Name: "carol"}}

// User is an identity in the static token file.
type User struct {
	// Name is the user name the apiserver authenticates the user's token as.
	Name string
	// Groups are the user's groups besides system:authenticated.
	Groups []string
}

// Options configures Start. The zero value starts a loopback control plane in a fresh
// temporary directory, with DefaultUsers, DefaultServiceClusterIPRanges and the CRDs of
// deploy/crds.
type Options struct {
	// Dir, when set, is a directory kept across runs (etcd's data survives a restart);
	// otherwise a fresh temporary directory is made and Stop removes it.
	Dir string
	// BinDir overrides where the binaries are found (see BinDir).
	BinDir string

	// BindAddress is the address kube-apiserver listens on; default 127.0.0.1. Set it to
	// an address that processes in network namespaces can reach, or to 0.0.0.0 or :: for
	// every address.
	BindAddress netip.Addr
	// AdvertiseAddress is the address clients are given (Config, the kubeconfig, and the
	// endpoints of the default/kubernetes Service); default BindAddress, or 127.0.0.1
	// when BindAddress is unspecified.
	AdvertiseAddress netip.Addr
	// Wrap, when set, rewrites the command line of etcd and kube-apiserver before they
	// start, for example to prepend "ip netns exec NAME" and run them in a network
	// namespace. Both then share that namespace's loopback, which must be up.
	Wrap func(cmd []string) []string

	// ServiceClusterIPRanges are the Service ClusterIP ranges, at most one per family;
	// default DefaultServiceClusterIPRanges.
	ServiceClusterIPRanges []netip.Prefix
	// Users are the ordinary users of the token file besides AdminUser; default
	// DefaultUsers.
	Users []User

	// SkipCRDs starts without installing Herald's CRDs.
	SkipCRDs bool
	// CRDDir is where the CRD manifests are read from; default deploy/crds of the
	// repository (see DefaultCRDDir).
	CRDDir string

	// ExtraAPIServerArgs are appended to kube-apiserver's flags; a later flag wins.
	ExtraAPIServerArgs []string
	// Timeout bounds how long Start waits for readiness; default one minute.
	Timeout time.Duration
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Dir holds the certificates, keys, token file, kubeconfig, etcd's data and the logs
	// (etcd.log, kube-apiserver.log).
	Dir string
	// Binaries are the programs it runs; tests use Binaries.Kubectl and KubeProxy too.
	Binaries Binaries
	// URL is the apiserver's address for clients, https://AdvertiseAddress:port.
	URL string
	// EtcdURL is etcd's client URL.
	EtcdURL string
	// Kubeconfig is the path of a kubeconfig file for AdminUser.
	Kubeconfig string
	// ServiceClusterIPRanges are the Service ClusterIP ranges the apiserver allocates from,
	// the primary one (of AdvertiseAddress's family) first.
	ServiceClusterIPRanges []netip.Prefix
	// CRDs are the names of the CustomResourceDefinitions installed.
	CRDs []string
	// ReadyAfter is how long Start took from its call until /readyz answered ok and the
	// CRDs were Established.
	ReadyAfter time.Duration

	pki        *pki
	etcd       *process
	apiserver  *process
	apiArgv    []string // kube-apiserver's command line and environment, for RestartAPIServer
	apiEnv     []string
	wrap       func([]string) []string
	removeDir  bool
	stopGrace  time.Duration
	stopped    bool
	kubectlDir string
}

// Start starts etcd and kube-apiserver as opts says, waits until the apiserver's /readyz
// answers ok, installs Herald's CRDs and waits until they are Established. On error it
// stops whatever it started. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	start := time.Now()
	bins, err := FindBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var crds []*apiextensionsv1.CustomResourceDefinition
	if !opts.SkipCRDs {
		dir := opts.CRDDir
		if dir == "" {
			if dir, err = DefaultCRDDir(); err != nil {
				return nil, err
			}
		}
		if crds, err = ReadCRDs(dir); err != nil {
			return nil, err
		}
	}

	cp := &ControlPlane{Binaries: bins, ServiceClusterIPRanges: slices.Clone(opts.ServiceClusterIPRanges)}
	if len(cp.ServiceClusterIPRanges) == 0 {
		cp.ServiceClusterIPRanges = slices.Clone(DefaultServiceClusterIPRanges)
	}
	if opts.Dir != "" {
		cp.Dir, err = filepath.Abs(opts.Dir)
		if err == nil {
			err = os.MkdirAll(cp.Dir, 0o755)
		}
		if err != nil {
			return nil, fmt.Errorf("controlplane: make directory: %w", err)
		}
		// A kept directory is kept for its data: shut etcd down cleanly.
		cp.stopGrace = 10 * time.Second
	} else {
		if cp.Dir, err = makeTempDir(); err != nil {
			return nil, err
		}
		cp.removeDir = true
	}
	ready := false
	defer func() {
		if !ready {
			_ = cp.Stop() // the error that got us here matters more than Stop's
		}
	}()

	bind, advertise := addresses(opts)
	// The apiserver requires the primary (first) range to be of the advertised address's
	// family: put that family first.
	slices.SortStableFunc(cp.ServiceClusterIPRanges, func(a, b netip.Prefix) int {
		return cmpBool(b.Addr().Is4() == advertise.Is4(), a.Addr().Is4() == advertise.Is4())
	})
	users := opts.Users
	if users == nil {
		users = DefaultUsers
	}
	allUsers := append([]User{{Name: AdminUser, Groups: []string{"system:masters"}}}, users...)

	hosts := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), advertise}
	if !bind.IsUnspecified() {
		hosts = append(hosts, bind)
	}
	for _, p := range cp.ServiceClusterIPRanges {
		// The apiserver's own Service takes the first address of each range.
		hosts = append(hosts, p.Masked().Addr().Next())
	}
	dnsNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if cp.pki, err = writePKI(cp.Dir, hosts, dnsNames, allUsers); err != nil {
		return nil, err
	}

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	cp.EtcdURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	if cp.etcd, err = startProcess("etcd", cp.etcdArgs(ports[1]), nil, opts.Wrap, cp.Dir, filepath.Join(cp.Dir, "etcd.log")); err != nil {
		return nil, err
	}
	// Start-up allocates heavily (OpenAPI documents, watch caches): garbage collection
	// took over a tenth of it in a profile. Collecting less often costs some hundred
	// megabytes of memory.
	apiEnv := []string{"GOGC=400"}
	apiArgs := append(cp.apiserverArgs(bind, advertise, ports[2]), opts.ExtraAPIServerArgs...)
	cp.apiArgv, cp.apiEnv, cp.wrap = apiArgs, apiEnv, opts.Wrap
	if cp.apiserver, err = cp.startAPIServer(); err != nil {
		return nil, err
	}

	cp.URL = "https://" + net.JoinHostPort(advertise.String(), strconv.Itoa(ports[2]))
	cp.Kubeconfig = filepath.Join(cp.Dir, "kubeconfig")
	cp.kubectlDir = filepath.Join(cp.Dir, "kubectl-cache")
	if err := WriteKubeconfig(cp.Kubeconfig, cp.Config()); err != nil {
		return nil, err
	}
	if cp.CRDs, err = cp.waitReadyWithCRDs(ctx, crds); err != nil {
		return nil, err
	}
	cp.ReadyAfter = time.Since(start)
	ready = true
	return cp, nil
}

func (cp *ControlPlane) startAPIServer() (*process, error) {
	return startProcess("kube-apiserver", cp.apiArgv, cp.apiEnv, cp.wrap, cp.Dir, filepath.Join(cp.Dir, "kube-apiserver.log"))
}

// RestartAPIServer stops kube-apiserver (SIGTERM and up to grace to exit; a
// grace of zero is SIGKILL), starts it again on the same address, port and
// data, and waits until /readyz answers ok or ctx ends. Clients keep their
// configuration; etcd keeps running. It must not run concurrently with Stop.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context, grace time.Duration) error {
	if cp.stopped {
		return errors.New("controlplane: restart kube-apiserver: the control plane is stopped")
	}
	if err := cp.apiserver.stop(grace); err != nil {
		return err
	}
	p, err := cp.startAPIServer()
	if err != nil {
		return err
	}
	cp.apiserver = p
	return cp.waitReady(ctx, func() {})
}

// addresses returns the address the apiserver listens on and the one clients use.
func addresses(opts Options) (bind, advertise netip.Addr) {
	bind = opts.BindAddress
	if !bind.IsValid() {
		bind = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	advertise = opts.AdvertiseAddress
	if !advertise.IsValid() {
		advertise = bind
		if bind.IsUnspecified() {
			advertise = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	return bind, advertise
}

// etcdArgs is etcd's command line: one member, clients on EtcdURL, peers on peerPort.
func (cp *ControlPlane) etcdArgs(peerPort int) []string {
	peerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))
	args := []string{
		cp.Binaries.Etcd,
		"--name=herald",
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + cp.EtcdURL,
		"--advertise-client-urls=" + cp.EtcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=herald=" + peerURL,
		"--log-level=warn",
	}
	if cp.removeDir {
		// The data is thrown away with the directory: durability buys nothing.
		args = append(args, "--unsafe-no-fsync")
	}
	return args
}

// apiserverArgs is kube-apiserver's command line.
func (cp *ControlPlane) apiserverArgs(bind, advertise netip.Addr, port int) []string {
	ranges := make([]string, len(cp.ServiceClusterIPRanges))
	for i, p := range cp.ServiceClusterIPRanges {
		ranges[i] = p.Masked().String()
	}
	args := []string{
		cp.Binaries.KubeAPIServer,
		"--etcd-servers=" + cp.EtcdURL,
		"--bind-address=" + bind.String(),
		"--secure-port=" + strconv.Itoa(port),
		"--advertise-address=" + advertise.String(),
		"--tls-cert-file=" + cp.pki.servingCert,
		"--tls-private-key-file=" + cp.pki.servingKey,
		"--token-auth-file=" + cp.pki.tokenFile,
		"--service-account-issuer=" + cp.pki.issuer,
		"--service-account-key-file=" + cp.pki.saPublicKey,
		"--service-account-signing-key-file=" + cp.pki.saSigningKey,
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=" + strings.Join(ranges, ","),
		"--allow-privileged=true",
		"--anonymous-auth=false",
		"--profiling=false",
		// API Priority and Fairness protects a shared apiserver from noisy clients; a
		// test's private apiserver has none, and its bootstrap objects and per-request
		// queueing cost start-up time.
		"--enable-priority-and-fairness=false",
		"--v=1",
	}
	if advertise.IsLoopback() {
		// The default/kubernetes Service cannot point at a loopback address.
		args = append(args, "--endpoint-reconciler-type=none")
	}
	return args
}

// waitReadyWithCRDs waits until /readyz answers ok and crds are installed and
// Established. It installs them as soon as the apiserver serves, while its own bootstrap
// (RBAC roles, system namespaces) still holds /readyz back, so the two overlap.
func (cp *ControlPlane) waitReadyWithCRDs(ctx context.Context, crds []*apiextensionsv1.CustomResourceDefinition) ([]string, error) {
	type installed struct {
		names []string
		err   error
	}
	done := make(chan installed, 1)
	onServing := func() {
		if len(crds) == 0 {
			done <- installed{}
			return
		}
		go func() {
			names, err := installCRDsWhenServing(ctx, cp.Config(), crds)
			done <- installed{names, err}
		}()
	}
	if err := cp.waitReady(ctx, onServing); err != nil {
		return nil, err
	}
	result := <-done
	return result.names, result.err
}

// waitReady polls /readyz until it answers ok, ctx ends, or a process exits. It calls
// onServing once, at the first answer of any kind.
func (cp *ControlPlane) waitReady(ctx context.Context, onServing func()) error {
	cfg := cp.Config()
	cfg.Timeout = time.Second
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("controlplane: HTTP client: %w", err)
	}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last string
	serving := false
	for {
		for _, p := range []*process{cp.etcd, cp.apiserver} {
			if p.exited() {
				return fmt.Errorf("controlplane: %s exited before the apiserver was ready (%v); its log ends:\n%s",
					p.name, p.waitErr, p.logTail(30))
			}
		}
		var answered bool
		answered, last = probeReadyz(ctx, client, cp.URL, cp.pki.tokensByUser[AdminUser])
		if answered && !serving {
			serving = true
			onServing()
		}
		if answered && last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controlplane: wait for kube-apiserver /readyz: %w (last answer: %s); its log ends:\n%s",
				ctx.Err(), last, cp.apiserver.logTail(30))
		case <-tick.C:
		}
	}
}

// probeReadyz asks /readyz. It reports whether the apiserver answered at all, and what
// was wrong: "" when it answered 200.
func probeReadyz(ctx context.Context, client *http.Client, url, token string) (answered bool, problem string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return true, resp.Status
}

// Stop stops kube-apiserver and etcd (each whole process group) and, unless Options.Dir
// was set, removes the directory. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	if cp.stopped {
		return nil
	}
	cp.stopped = true
	var errs []error
	for _, p := range []*process{cp.apiserver, cp.etcd} {
		if p != nil {
			errs = append(errs, p.stop(cp.stopGrace))
		}
	}
	if cp.removeDir {
		if err := os.RemoveAll(cp.Dir); err != nil {
			errs = append(errs, fmt.Errorf("controlplane: remove directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// freePorts returns n distinct TCP ports that were free on every address when asked.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			return nil, fmt.Errorf("controlplane: find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
