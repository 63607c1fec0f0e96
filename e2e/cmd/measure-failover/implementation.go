package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/herald-dev/herald/e2e/metallb"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// implementation is what differs between the speakers this command
// measures: how each counts the addresses it announces, and what else it
// exposes. Everything else (the lab, the Services, the endpoints, the
// addresses in status.loadBalancer.ingress, the probes) is the same.
type implementation struct {
	name string
	// announced and announcedLabels select the samples, summed, that count
	// one speaker's announcements of the memory run's IPv6 Services.
	announced       string
	announcedLabels []string
	// reconcile: the speaker exports herald_speaker_reconcile_duration_seconds.
	reconcile bool
	// reactionPause is the pause after each reaction trial.
	reactionPause time.Duration
}

var herald = implementation{
	name:            "Herald",
	announced:       "herald_speaker_announced_addresses",
	announcedLabels: []string{`protocol="ndp"`},
	reconcile:       true,
	reactionPause:   400 * time.Millisecond, // let the bursts end
}

// metalLB is MetalLB's speaker. Its metallb_speaker_announced gauge has one
// sample per announced address, set once the address is handed to its ARP
// and NDP responders. After a reaction trial it waits 6 s: MetalLB sends
// gratuitous packets for 5 s after it gains an address, and when it gains
// one again within those 5 s its first packet waits for the next tick of
// its 1.1 s timer (spamLoop in internal/layer2/announcer.go), so trials
// 400 ms apart would time that timer rather than the reaction.
var metalLB = implementation{
	name:            "MetalLB " + metallb.Version,
	announced:       "metallb_speaker_announced",
	announcedLabels: []string{`protocol="layer2"`, `service="` + speakerlab.Namespace + `/mem-`},
	reactionPause:   6 * time.Second,
}

// metalLBSpeaker returns speakerlab's Options.Speaker for MetalLB's speaker:
// serving /metrics and Go's profiles on speakerlab.MetricsAddr, without
// memberlist (see metallb.Binaries.SpeakerArgs).
func metalLBSpeaker(mlb metallb.Binaries) func(n *speakerlab.Node, kubeconfig string) netlab.ProcessSpec {
	host, port, _ := net.SplitHostPort(speakerlab.MetricsAddr)
	p, _ := strconv.Atoi(port)
	return func(n *speakerlab.Node, kubeconfig string) netlab.ProcessSpec {
		return netlab.ProcessSpec{Name: "metallb-speaker", Env: []string{"KUBECONFIG=" + kubeconfig},
			Args: mlb.SpeakerArgs(n.Name, host, p, "--enable-pprof")}
	}
}

// setUpMetalLB gives MetalLB what speakerlab gives Herald: its CRDs, the
// lab's layer-2 pools (netlab.L2PoolV4 and L2PoolV6) as one IPAddressPool
// with an L2Advertisement for every node, and a Pod object per speaker;
// then it starts the speakers and waits until each serves /metrics.
// MetalLB's controller does not run: the Services' addresses are written by
// the lab, as for Herald.
func (m *measurement) setUpMetalLB(ctx context.Context, mlb metallb.Binaries) {
	l := m.lab
	widened, err := metallb.InstallCRDs(ctx, l.CP.Config(), mlb.CRDDir)
	for _, path := range widened {
		fmt.Printf("MetalLB %s's CRD: %s installed as int64 (format int32 with a maximum beyond it, which this kube-apiserver refuses)\n", metallb.Version, path)
	}
	if err != nil {
		m.fatal("%v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metallb.Namespace}}
	if _, err := l.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		m.fatal("create namespace %s: %v", metallb.Namespace, err)
	}
	if err := metallb.CreateSpeakerPods(ctx, l.Kube, l.NodeNames()...); err != nil {
		m.fatal("%v", err)
	}
	dyn, err := dynamic.NewForConfig(l.CP.Config())
	if err != nil {
		m.fatal("%v", err)
	}
	objects := []struct {
		resource string
		obj      map[string]any
	}{
		{"ipaddresspools", map[string]any{"kind": "IPAddressPool", "metadata": map[string]any{"name": speakerlab.PoolName},
			"spec": map[string]any{"addresses": []any{netlab.L2PoolV4.String(), netlab.L2PoolV6.String()}}}},
		{"l2advertisements", map[string]any{"kind": "L2Advertisement", "metadata": map[string]any{"name": "lan"},
			"spec": map[string]any{"ipAddressPools": []any{speakerlab.PoolName}}}},
	}
	for _, o := range objects {
		u := &unstructured.Unstructured{Object: o.obj}
		u.SetAPIVersion("metallb.io/v1beta1")
		u.SetNamespace(metallb.Namespace)
		gvr := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: o.resource}
		if _, err := dyn.Resource(gvr).Namespace(metallb.Namespace).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			m.fatal("create MetalLB %s: %v", u.GetKind(), err)
		}
	}
	for _, n := range l.Nodes {
		l.StartSpeaker(n)
	}
	for _, n := range l.Nodes {
		m.waitMetrics(ctx, n)
	}
}

// waitMetrics waits until n's speaker serves /metrics (MetalLB's speaker
// has no /readyz).
func (m *measurement) waitMetrics(ctx context.Context, n *speakerlab.Node) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := m.lab.Metric(ctx, n, "go_goroutines")
		if err == nil {
			return
		}
		if time.Now().After(deadline) || n.Speaker == nil || n.Speaker.Exited() {
			m.fatal("speaker on %s: no metrics after 60s: %v\n%s", n.Name, err, m.lab.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errorLines returns how many lines of log are at level error (MetalLB's
// JSON logs, Herald's text logs) and the first of them.
func errorLines(log string) (int, string) {
	count, first := 0, ""
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, "level=ERROR") {
			if count == 0 {
				first = line
			}
			count++
		}
	}
	return count, first
}
