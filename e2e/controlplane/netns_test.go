package controlplane_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// TestInNetworkNamespace runs etcd and kube-apiserver inside a network namespace through
// Options.Wrap, with the apiserver bound to a non-loopback IPv6 address of that namespace
// that the host reaches over a veth pair: the set-up the network lab uses.
func TestInNetworkNamespace(t *testing.T) {
	controlplane.RequireBinaries(t, "")
	requireNetAdmin(t)

	// Names and addresses are unique per run, so concurrent runs do not collide.
	pid := os.Getpid()
	ns := fmt.Sprintf("hcp-%d", pid)
	hostLink, nsLink := fmt.Sprintf("hcp%dh", pid), fmt.Sprintf("hcp%dn", pid)
	prefix := netip.PrefixFrom(netip.AddrFrom16([16]byte{
		0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xfe, 0x00,
		byte(pid >> 24), byte(pid >> 16), byte(pid >> 8), byte(pid), 0, 0, 0, 0,
	}), 126)
	hostAddr := prefix.Addr().Next()
	apiAddr := hostAddr.Next()

	// Deleting the namespace deletes the veth pair with it. Registered first, it runs
	// after the control plane's own cleanup has stopped the processes inside.
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v\n%s", ns, err, out)
		}
	})
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	run(t, "ip", "link", "add", hostLink, "type", "veth", "peer", "name", nsLink, "netns", ns)
	run(t, "ip", "addr", "add", netip.PrefixFrom(hostAddr, prefix.Bits()).String(), "dev", hostLink, "nodad")
	run(t, "ip", "-n", ns, "addr", "add", netip.PrefixFrom(apiAddr, prefix.Bits()).String(), "dev", nsLink, "nodad")
	run(t, "ip", "link", "set", hostLink, "up")
	run(t, "ip", "-n", ns, "link", "set", nsLink, "up")

	cp := controlplane.StartForTest(t, controlplane.Options{
		SkipCRDs:    true,
		BindAddress: apiAddr,
		Wrap: func(cmd []string) []string {
			return append([]string{"ip", "netns", "exec", ns}, cmd...)
		},
	})
	if want := "https://[" + apiAddr.String() + "]:"; !strings.HasPrefix(cp.URL, want) {
		t.Errorf("URL %s, want it to start with %s", cp.URL, want)
	}
	// The apiserver advertises a routable address, so it publishes itself as the
	// endpoint of the default/kubernetes Service (its reconciler runs after /readyz).
	client := kubernetes.NewForConfigOrDie(cp.Config())
	var endpoints []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		slices, err := client.DiscoveryV1().EndpointSlices("default").List(t.Context(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
		if err != nil {
			t.Fatal(err)
		}
		endpoints = endpoints[:0]
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				endpoints = append(endpoints, e.Addresses...)
			}
		}
		if len(endpoints) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(endpoints) != 1 || endpoints[0] != apiAddr.String() {
		t.Errorf("default/kubernetes endpoints %v, want [%s]", endpoints, apiAddr)
	}
	// The host's clients reached it over the veth: it runs in the namespace.
	if out, err := exec.Command("ip", "netns", "identify", fmt.Sprint(cp.PIDs()[1])).Output(); err != nil || strings.TrimSpace(string(out)) != ns {
		t.Errorf("kube-apiserver runs in network namespace %q (%v), want %q", strings.TrimSpace(string(out)), err, ns)
	}
}

// requireNetAdmin skips the test, or fails it under CI=true, unless it runs as root with
// the ip command.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	var missing string
	if _, err := exec.LookPath("ip"); err != nil {
		missing = "the ip command (Debian package iproute2; make deps)"
	} else if os.Geteuid() != 0 {
		missing = "root, to make network namespaces"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing %s", missing)
	}
	t.Skipf("missing %s", missing)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
