package plugin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// metallbConfig is a MetalLB configuration with a layer-2 pool, a BGP pool
// (with a community alias and a BFD profile) and one setting Herald cannot
// carry (the peer's VRF).
const metallbConfig = `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: metallb-system}
spec:
  addresses: [198.51.100.0/28]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: metallb-system}
spec:
  addresses: ["198.51.100.16-198.51.100.31", "2001:db8:1::/120"]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [l2-pool]
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
  - {name: edge, value: "65000:100"}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec:
  ipAddressPools: [bgp-pool]
  communities: [edge]
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  peerAddress: 203.0.113.1
  myASN: 64512
  peerASN: 64513
  bfdProfile: fast
  vrf: red
`

// metallbService is a Service as MetalLB left it: its annotations and the
// address MetalLB wrote in its status ("" for a pending one).
type metallbService struct {
	namespace, name string
	port            int32
	protocol        corev1.Protocol
	annotations     map[string]string
	address         string
}

var metallbServices = []metallbService{
	{"shop", "web", 80, corev1.ProtocolTCP, map[string]string{"metallb.io/ip-allocated-from-pool": "l2-pool"}, "198.51.100.3"},
	{"shop", "requested", 443, corev1.ProtocolTCP, map[string]string{"metallb.universe.tf/loadBalancerIPs": "198.51.100.20", "metallb.io/address-pool": "bgp-pool"}, "198.51.100.20"},
	{"shop", "dns-tcp", 53, corev1.ProtocolTCP, map[string]string{"metallb.io/allow-shared-ip": "dns"}, "198.51.100.5"},
	{"infra", "dns-udp", 53, corev1.ProtocolUDP, map[string]string{"metallb.io/allow-shared-ip": "dns"}, "198.51.100.5"},
	{"shop", "pending", 8080, corev1.ProtocolTCP, nil, ""},
}

// TestMigrateMetalLB migrates a MetalLB configuration served by MetalLB's own
// CRDs in a real API server: a missing CRD, a dropped setting and an address
// two pools claim each change nothing; then --apply writes Herald's
// resources and annotations, and Herald's real controller, started
// afterwards, adopts every address without changing one.
func TestMigrateMetalLB(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{})
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	herald := heraldclient.NewForConfigOrDie(cp.Config())
	p := newPlugin(t, cp.Config())
	ctx := t.Context()

	t.Run("MetalLB's samples convert to objects Herald's CRDs accept", func(t *testing.T) {
		root, err := controlplane.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		samples, err := filepath.Glob(filepath.Join(root, "cmd/kubectl-herald/internal/migrate/testdata/metallb-configsamples/*.yaml"))
		if err != nil || len(samples) < 15 {
			t.Fatalf("MetalLB's samples: %v, %d files", err, len(samples))
		}
		for _, sample := range samples {
			stdout, stderr, code := p.run(t, "migrate", "metallb", "--offline", "-o", "yaml", "-f", sample)
			if code != 0 {
				t.Errorf("%s: exit %d: %s", filepath.Base(sample), code, stderr)
				continue
			}
			cmd := cp.Kubectl(ctx, "apply", "--server-side", "--dry-run=server", "-f", "-")
			cmd.Stdin = strings.NewReader(stdout)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: the API server refuses the migrated objects: %v\n%s\n%s", filepath.Base(sample), err, out, stdout)
			}
		}
		assertNothingWritten(t, herald)
	})

	t.Run("without MetalLB's CRDs", func(t *testing.T) {
		_, stderr, code := p.run(t, "migrate", "metallb")
		if code != 1 || !strings.Contains(stderr, "MetalLB's CRDs (API group metallb.io) are not installed in this cluster") {
			t.Errorf("exit %d, stderr %q: want 1 and a message naming the missing CRDs", code, stderr)
		}
		assertNothingWritten(t, herald)
	})

	crds, err := controlplane.ReadCRDs("testdata/metallb-crds")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.InstallCRDs(ctx, cp.Config(), crds); err != nil {
		t.Fatalf("install MetalLB's CRDs: %v", err)
	}
	for _, ns := range []string{"metallb-system", "shop", "infra", "herald-system"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubectlApply(t, cp, metallbConfig)
	writeMetalLBStatuses(t, kube)

	t.Run("plan", func(t *testing.T) {
		stdout, stderr, code := p.run(t, "migrate", "metallb")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{
			"IPPool bgp-pool: 198.51.100.16-198.51.100.31, 2001:db8:1::/120",
			"BGPPeer router: 203.0.113.1 AS 64513 (my AS 64512)",
			"BGPPeer/metallb-system/router spec.vrf = red: Herald's speakers peer from the default VRF only",
			"Nothing applied (plan only)",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("the plan lacks %q:\n%s", want, stdout)
			}
		}
		for _, s := range metallbServices {
			if s.address != "" && !containsLine(stdout, s.namespace+"/"+s.name, s.address, s.address) {
				t.Errorf("the plan does not show %s/%s keeping %s:\n%s", s.namespace, s.name, s.address, stdout)
			}
		}
		assertNothingWritten(t, herald)
	})

	t.Run("a dropped setting is not applied without --drop-unsupported", func(t *testing.T) {
		_, stderr, code := p.run(t, "migrate", "metallb", "--apply")
		if code != 1 || !strings.Contains(stderr, "nothing applied: the plan drops 1 setting(s)") {
			t.Errorf("exit %d, stderr %q: want 1 and the dropped setting named", code, stderr)
		}
		assertNothingWritten(t, herald)
		assertAnnotations(t, kube, "shop", "requested", map[string]string{})
	})

	t.Run("an address two MetalLB pools claim", func(t *testing.T) {
		kubectlApply(t, cp, "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: overlap, namespace: metallb-system}\nspec: {addresses: [198.51.100.8/29]}\n")
		stdout, stderr, code := p.run(t, "migrate", "metallb", "--apply", "--drop-unsupported")
		if code != 1 || !strings.Contains(stdout, "addresses 198.51.100.8-198.51.100.15 are claimed by two MetalLB pools, l2-pool and overlap") {
			t.Errorf("exit %d, stderr %q: want 1 and the overlap named:\n%s", code, stderr, stdout)
		}
		assertNothingWritten(t, herald)
		if out, err := cp.Kubectl(ctx, "delete", "ipaddresspools.metallb.io", "-n", "metallb-system", "overlap").CombinedOutput(); err != nil {
			t.Fatalf("kubectl delete: %v\n%s", err, out)
		}
	})

	t.Run("apply, then Herald adopts every address", func(t *testing.T) {
		migrateAndHandOver(t, cp, kube, herald, p)
	})

	// With Herald in charge, plan a pool change and show the status.
	t.Run("plan a pool shrunk under a Service", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "pool.yaml")
		pool := "apiVersion: herald.dev/v1alpha1\nkind: IPPool\nmetadata: {name: bgp-pool}\nspec: {addresses: [198.51.100.16-198.51.100.19], autoAssign: false}\n"
		if err := os.WriteFile(file, []byte(pool), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := p.run(t, "plan", "-f", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"IPPool bgp-pool (changed)", "Service shop/requested would keep 198.51.100.20 outside IPPool bgp-pool"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("the plan lacks %q:\n%s", want, stdout)
			}
		}
		got, err := herald.HeraldV1alpha1().IPPools().Get(ctx, "bgp-pool", metav1.GetOptions{})
		if err != nil || len(got.Spec.Addresses) != 2 {
			t.Errorf("plan changed IPPool bgp-pool: %v, %v", err, got.Spec.Addresses)
		}
	})
	t.Run("status", func(t *testing.T) {
		netlab.Eventually(t, 30*time.Second, func(context.Context) error {
			stdout, stderr, code := p.run(t, "status")
			if code != 0 {
				return fmt.Errorf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{"l2-pool   198.51.100.0/28", "Services of type LoadBalancer without an address: 0.", "(no SpeakerStatus: no speaker has run)"} {
				if !strings.Contains(stdout, want) {
					return fmt.Errorf("status lacks %q:\n%s", want, stdout)
				}
			}
			return nil
		})
	})
}

// migrateAndHandOver applies the migration, checks what it wrote, then
// starts Herald's controller and waits until it has adopted every address.
// Here MetalLB never ran: TestMigrateRealMetalLB runs its real daemons and
// stops them between the two.
func migrateAndHandOver(t *testing.T, cp *controlplane.ControlPlane, kube kubernetes.Interface, herald heraldclient.Interface, p *plugin) {
	ctx := t.Context()
	stdout, stderr, code := p.run(t, "migrate", "metallb", "--apply", "--drop-unsupported")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	pool, err := herald.HeraldV1alpha1().IPPools().Get(ctx, "bgp-pool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pool.Spec.Addresses, " "); got != "198.51.100.16-198.51.100.31 2001:db8:1::/120" || pool.Spec.AutoAssign == nil || *pool.Spec.AutoAssign {
		t.Errorf("IPPool bgp-pool: addresses %q, autoAssign %v", got, pool.Spec.AutoAssign)
	}
	adv, err := herald.HeraldV1alpha1().BGPAdvertisements().Get(ctx, "bgp", metav1.GetOptions{})
	if err != nil || strings.Join(adv.Spec.Communities, ",") != "65000:100" {
		t.Errorf("BGPAdvertisement bgp: %v, communities %v", err, adv.Spec.Communities)
	}
	peer, err := herald.HeraldV1alpha1().BGPPeers().Get(ctx, "router", metav1.GetOptions{})
	if err != nil || peer.Spec.BFD == nil || peer.Spec.BFD.MinRx.Duration != 100*time.Millisecond {
		t.Errorf("BGPPeer router: %v, bfd %+v", err, peer.Spec.BFD)
	}
	if _, err := herald.HeraldV1alpha1().L2Advertisements().Get(ctx, "l2", metav1.GetOptions{}); err != nil {
		t.Errorf("L2Advertisement l2: %v", err)
	}
	assertAnnotations(t, kube, "shop", "requested", map[string]string{"herald.dev/addresses": "198.51.100.20", "herald.dev/pool": "bgp-pool"})
	assertAnnotations(t, kube, "shop", "dns-tcp", map[string]string{"herald.dev/sharing-key": "dns", "herald.dev/sharing-cross-namespace": "infra"})
	assertAnnotations(t, kube, "infra", "dns-udp", map[string]string{"herald.dev/sharing-key": "dns", "herald.dev/sharing-cross-namespace": "shop"})
	assertAddresses(t, kube)

	// The hand-over: MetalLB is stopped (here it never ran), Herald starts.
	startController(t, cp)
	netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		for _, s := range metallbServices {
			svc, err := kube.CoreV1().Services(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !apimeta.IsStatusConditionTrue(svc.Status.Conditions, "herald.dev/AddressAllocated") {
				return fmt.Errorf("Service %s/%s: no True AddressAllocated condition yet: %v", s.namespace, s.name, svc.Status.Conditions)
			}
			if s.address == "" {
				continue
			}
			if _, err := herald.HeraldV1alpha1().AddressClaims().Get(ctx, s.address, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("AddressClaim %s: %w", s.address, err)
			}
		}
		return nil
	})
	assertAddresses(t, kube)
}

// writeMetalLBStatuses creates the Services and writes the addresses MetalLB gave them.
func writeMetalLBStatuses(t *testing.T, kube kubernetes.Interface) {
	ctx := t.Context()
	for _, s := range metallbServices {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name, Annotations: s.annotations},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": s.name},
				Ports: []corev1.ServicePort{{Port: s.port, Protocol: s.protocol, TargetPort: intstr.FromInt32(s.port)}}},
		}
		created, err := kube.CoreV1().Services(s.namespace).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.address == "" {
			continue
		}
		created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: s.address}}
		if _, err := kube.CoreV1().Services(s.namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// assertAddresses checks that every Service still holds what MetalLB gave it.
func assertAddresses(t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	for _, s := range metallbServices {
		svc, err := kube.CoreV1().Services(s.namespace).Get(t.Context(), s.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			got = append(got, in.IP)
		}
		if s.address != "" && strings.Join(got, ",") != s.address {
			t.Errorf("Service %s/%s holds %v, want %s (as MetalLB left it)", s.namespace, s.name, got, s.address)
		}
	}
}

func assertNothingWritten(t *testing.T, herald heraldclient.Interface) {
	t.Helper()
	pools, err := herald.HeraldV1alpha1().IPPools().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	peers, err := herald.HeraldV1alpha1().BGPPeers().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pools.Items)+len(peers.Items) > 0 {
		t.Errorf("%d IPPools and %d BGPPeers were written, want none", len(pools.Items), len(peers.Items))
	}
}

// assertAnnotations checks the herald.dev/ annotations of a Service.
func assertAnnotations(t *testing.T, kube kubernetes.Interface, ns, name string, want map[string]string) {
	t.Helper()
	svc, err := kube.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range svc.Annotations {
		if strings.HasPrefix(k, "herald.dev/") {
			got[k] = v
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Service %s/%s: herald.dev annotations %v, want %v", ns, name, got, want)
	}
}

// containsLine reports whether one line of s contains every word.
func containsLine(s string, words ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}

func kubectlApply(t *testing.T, cp *controlplane.ControlPlane, manifests string) {
	t.Helper()
	cmd := cp.Kubectl(t.Context(), "apply", "--server-side", "-f", "-")
	cmd.Stdin = strings.NewReader(manifests)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// startController runs Herald's controller against cp until the test ends.
func startController(t *testing.T, cp *controlplane.ControlPlane) {
	t.Helper()
	bin := netlab.BuildGo(t, "github.com/herald-dev/herald/cmd/herald-controller")
	kubeconfig := filepath.Join(t.TempDir(), "controller-kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, cp.Config()); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), "controller.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--kubeconfig="+kubeconfig, "--namespace=herald-system", "--metrics-bind-address=", "--leader-elect=false", "--log-format=text")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logs.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("controller logs:\n%s", b)
		}
	})
}

// TestMigrateWithoutHeraldCRDs: --apply into a cluster without Herald's
// CRDs says what to install and changes nothing.
func TestMigrateWithoutHeraldCRDs(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{SkipCRDs: true})
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	p := newPlugin(t, cp.Config())
	crds, err := controlplane.ReadCRDs("testdata/metallb-crds")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.InstallCRDs(t.Context(), cp.Config(), crds); err != nil {
		t.Fatalf("install MetalLB's CRDs: %v", err)
	}
	for _, ns := range []string{"metallb-system", "shop"} {
		if _, err := kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubectlApply(t, cp, "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: l2-pool, namespace: metallb-system}\nspec: {addresses: [198.51.100.0/28]}\n")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{"metallb.io/allow-shared-ip": "k"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := kube.CoreV1().Services("shop").Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := p.run(t, "migrate", "metallb", "--apply")
	if code != 1 || !strings.Contains(stderr, "nothing applied: the API server does not serve Herald's ippools (herald.dev/v1alpha1): install Herald's CRDs first") {
		t.Errorf("exit %d, stderr %q: want 1 and the missing CRDs named", code, stderr)
	}
	assertAnnotations(t, kube, "shop", "web", map[string]string{})
	_, stderr, code = p.run(t, "status")
	if code != 1 || !strings.Contains(stderr, "Herald's CRDs are not installed") {
		t.Errorf("status: exit %d, stderr %q: want 1 and the missing CRDs named", code, stderr)
	}
}
