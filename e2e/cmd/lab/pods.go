package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/pods"
)

// PodsDir holds the pods lab (make lab-pods): its pid file and, in lab/, the images,
// the control plane's data and logs, each node's runtime directories and logs (lab/
// is removed on exit unless bring-up failed). Not under /run: each node's kubelet
// runs under a tmpfs over /run.
const PodsDir = "/var/tmp/herald-lab-pods"

// podsCommands are what the pods lab runs besides requiredCommands, with their Debian
// packages.
var podsCommands = map[string]string{
	"/usr/sbin/runc": "runc",
	"nsenter":        "util-linux",
	"mount":          "mount",
}

// podsLab runs the pods lab in the foreground (make lab-pods): Herald as real pods of
// deploy/default on nodes running containerd and a kubelet (e2e/pods), the demo
// Service reached from the client, a report; then it waits for SIGINT or SIGTERM and
// removes everything.
func podsLab(args []string) error {
	fs := flag.NewFlagSet("lab pods", flag.ContinueOnError)
	nodes := fs.Int("nodes", 1, "nodes, each running containerd and a kubelet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes < 1 || fs.NArg() > 0 {
		return errors.New("usage: lab pods [-nodes N]   (N >= 1)")
	}
	start := time.Now()
	p := preflight(inspectMachine())
	pidPath := filepath.Join(PodsDir, "lab.pid")
	if b, err := os.ReadFile(pidPath); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && alive(pid) {
			p.Problems = append(p.Problems, fmt.Sprintf("a pods lab is already running (pid %d); stop it with Ctrl-C or kill -INT %d", pid, pid))
		}
	}
	if len(p.Problems) > 0 {
		for _, problem := range p.Problems {
			fmt.Fprintln(os.Stderr, "lab: "+problem)
		}
		return errors.New("refusing to start the pods lab: nothing was changed")
	}
	for cmd, pkg := range podsCommands {
		if len(netlab.MissingCommands(cmd)) > 0 && !strings.Contains(" "+strings.Join(p.Packages, " ")+" ", " "+pkg+" ") {
			p.Packages = append(p.Packages, pkg)
		}
	}
	// The pods lab's binaries too: build.sh builds them all, and what is built is cached.
	p.BuildBinaries = p.BuildBinaries || len(pods.MissingBinaries()) > 0
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := prepare(root, p, "etcd, kube-apiserver, kube-proxy, kubectl, the kubelet, kube-controller-manager, kube-scheduler, containerd and the CNI plugins"); err != nil {
		return err
	}
	if missing := pods.MissingBinaries(); len(missing) > 0 {
		return fmt.Errorf("still not built: %s", strings.Join(missing, ", "))
	}

	dir := filepath.Join(PodsDir, "lab")
	if err := os.RemoveAll(dir); err != nil { // a fresh cluster every time
		return err
	}
	if err := os.MkdirAll(PodsDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidPath)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sess, err := netlab.NewSession(ctx, "lab-pods", dir)
	if err != nil {
		return err
	}
	// Registered first, so they run last. Fatalf exits without running deferred
	// functions. The directory (images, the nodes' content stores: hundreds of MB)
	// is removed unless bring-up failed, when its logs say why.
	sess.Cleanup(func() { _ = os.Remove(pidPath) })
	sess.Cleanup(func() {
		if sess.Failed() {
			progress("bring-up failed: logs left in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	defer sess.Close()

	progress("building the images; starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler; "+
		"building the network (router, control-plane host, client, %d node(s) with kube-proxy, containerd and a kubelet)", *nodes)
	l := pods.New(sess, *nodes)
	progress("%d node(s) Ready after %v; applying deploy/default", len(l.Nodes), time.Since(start).Round(time.Second))
	l.ApplyManifests()
	l.WaitHeraldReady()
	progress("herald-speaker and herald-controller Ready after %v; applying the demo (IPPool, L2Advertisement, Deployment and Service %s)",
		time.Since(start).Round(time.Second), pods.DemoService)
	l.ApplyDemo()
	addr := l.ServiceAddress("default", pods.DemoService)
	l.WaitReadyEndpoints("default", pods.DemoService, 2)
	reply := l.ConnectFromClient(netip.AddrPortFrom(addr, 80))

	report, err := podsReport(ctx, l, addr, reply)
	if err != nil {
		return err
	}
	fmt.Print(report)
	progress("up after %v; Ctrl-C (SIGINT) or SIGTERM stops it and removes everything", time.Since(start).Round(time.Second))
	<-ctx.Done()
	progress("stopping")
	sess.Close()
	progress("stopped")
	return nil
}

// podsReport describes the running pods lab.
func podsReport(ctx context.Context, l *pods.Lab, addr netip.Addr, reply netlab.PodReply) (string, error) {
	var b strings.Builder
	b.WriteString("\nHerald pods lab " + l.Cluster.Lab.Prefix() + "\n\nNodes:\n")
	list, err := l.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, n := range list.Items {
		var addrs []string
		for _, a := range n.Status.Addresses {
			addrs = append(addrs, a.Address)
		}
		fmt.Fprintf(&b, "  %s  kubelet %s  %s  %s\n", n.Name, n.Status.NodeInfo.KubeletVersion, n.Status.NodeInfo.ContainerRuntimeVersion, strings.Join(addrs, " "))
	}
	out, err := l.Kubectl("", "get", "pods", "-n", "herald-system", "-o", "wide")
	if err != nil {
		return "", err
	}
	b.WriteString("\nHerald (kubectl get pods -n herald-system -o wide):\n" + indent(out))
	fmt.Fprintf(&b, "\nService default/%s: %v; the client (%s) reached pod %s on %v port 80\n",
		pods.DemoService, addr, l.Cluster.Client.Name(), reply.Pod, addr)
	fmt.Fprintf(&b, `
Use it:
  export KUBECONFIG=%s
  %s get pods -A -o wide
Logs: %s (controlplane/, node*/containerd.log, net/ with the kubelet's; removed on exit)
`, l.CP.Kubeconfig, l.CP.Binaries.Kubectl, l.Dir)
	return b.String(), nil
}

// indent indents every line of s by two spaces.
func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}
