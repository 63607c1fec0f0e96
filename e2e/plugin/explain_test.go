package plugin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// TestExplain runs the whole product in the lab and checks, by its output
// text, that kubectl herald explain names the main reasons a Service is
// pending or a node does not announce it, and who announces it now; and
// that kubectl herald status shows the pools and speakers.
func TestExplain(t *testing.T) {
	l := productlab.New(t, productlab.Options{})
	p := newPlugin(t, l.CP.Config())
	node1, node2, node3 := l.Cluster.Node(1), l.Cluster.Node(2), l.Cluster.Node(3)
	web := l.WebPods() // on node1 and node2

	l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: explain}
spec: {addresses: ["198.51.100.140-198.51.100.142"], autoAssign: false}
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: explain}
spec: {ipPools: [explain]}
---
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: explain-tiny}
spec: {addresses: ["198.51.100.143/32"], autoAssign: false}
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: explain-tiny}
spec:
  ipPools: [explain-tiny]
  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: ` + node1.Name() + `}}]
---
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: explain-silent}
spec: {addresses: ["198.51.100.144/32"], autoAssign: false}
`)

	t.Run("announced at layer 2, and why not the excluded node", func(t *testing.T) {
		service(t, l, "explain-cluster", "explain", "Cluster")
		l.Backend("default", "explain-cluster", productlab.WebPort, web...)
		addr := l.WaitAddresses("default", "explain-cluster", 1, 30*time.Second)[0]
		label(t, l, node3.Name(), "node.kubernetes.io/exclude-from-external-load-balancers=")
		waitExplain(t, p, "explain-cluster",
			fmt.Sprintf("Address %s, from IPPool explain (AddressClaim %s).", addr, addr),
			"Layer 2 (ARP/NDP), by L2Advertisement explain:",
			"Announced now by: node", // which node is the ranking's choice
			node3.Name()+" may not: it carries the label node.kubernetes.io/exclude-from-external-load-balancers",
			"Nodes labelled node.kubernetes.io/exclude-from-external-load-balancers never announce: "+node3.Name(),
		)
	})

	t.Run("Local: nodes without a ready endpoint", func(t *testing.T) {
		service(t, l, "explain-local", "explain", "Local")
		l.Backend("default", "explain-local", productlab.WebPort, web[0]) // node1 only
		l.WaitAddresses("default", "explain-local", 1, 30*time.Second)
		waitExplain(t, p, "explain-local",
			"Announced now by: "+node1.Name()+" on ",
			"May announce: "+node1.Name()+" (in takeover order",
			node2.Name()+" may not: externalTrafficPolicy is Local and no ready endpoint of the Service runs on it",
		)
	})

	t.Run("a node whose speaker stopped", func(t *testing.T) {
		service(t, l, "explain-stopped", "explain", "Cluster")
		l.Backend("default", "explain-stopped", productlab.WebPort, web...)
		l.WaitAddresses("default", "explain-stopped", 1, 30*time.Second)
		l.StopSpeaker(node2)
		t.Cleanup(func() {
			l.StartSpeaker(node2)
			l.WaitSpeakerReady(node2)
		})
		waitExplain(t, p, "explain-stopped",
			node2.Name()+" may not: its speaker is not running (SpeakerStatus "+node2.Name()+": Stopped",
			"Nodes without a running speaker: "+node2.Name(),
		)
	})

	t.Run("an advertisement's node selector, then a full pool", func(t *testing.T) {
		service(t, l, "explain-selected", "explain-tiny", "Cluster")
		l.Backend("default", "explain-selected", productlab.WebPort, web...)
		l.WaitAddresses("default", "explain-selected", 1, 30*time.Second)
		waitExplain(t, p, "explain-selected",
			"Announced now by: "+node1.Name(),
			node2.Name()+" may not: no L2Advertisement of IPPool explain-tiny selects it",
		)
		service(t, l, "explain-full", "explain-tiny", "Cluster") // explain-selected holds its only address
		waitExplain(t, p, "explain-full", "No address (pending).", "Why: PoolExhausted:", "Event PoolExhausted", "explain-tiny (by name only, IPv4 1 of 1 used)")
	})

	t.Run("pending: the pool does not exist", func(t *testing.T) {
		service(t, l, "explain-nopool", "no-such-pool", "Cluster")
		waitExplain(t, p, "explain-nopool", "Why: PoolNotFound:", "Create that IPPool, or correct the herald.dev/pool annotation.")
	})

	t.Run("allocated but announced by nobody", func(t *testing.T) {
		service(t, l, "explain-silent", "explain-silent", "Cluster")
		l.Backend("default", "explain-silent", productlab.WebPort, web...)
		l.WaitAddresses("default", "explain-silent", 1, 30*time.Second)
		waitExplain(t, p, "explain-silent", "Nobody may announce it: no L2Advertisement or BGPAdvertisement of IPPool explain-silent selects any node.")
	})

	t.Run("no endpoint", func(t *testing.T) {
		service(t, l, "explain-empty", "explain", "Cluster")
		l.WaitAddresses("default", "explain-empty", 1, 30*time.Second)
		waitExplain(t, p, "explain-empty", "Nobody may announce it: the Service has no ready (or serving) endpoint on any node.", "Announced now by: nobody.")
	})

	t.Run("status", func(t *testing.T) {
		service(t, l, "explain-status", "no-such-pool", "Cluster")
		netlab.Eventually(t, 30*time.Second, func(context.Context) error {
			stdout, stderr, code := p.run(t, "status")
			if code != 0 {
				return fmt.Errorf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{"explain-tiny    198.51.100.143/32", "node1    True", "Service default/explain-status: PoolNotFound", "Services of type LoadBalancer without an address: 1."} {
				if !strings.Contains(stdout, want) {
					return fmt.Errorf("status lacks %q:\n%s", want, stdout)
				}
			}
			return nil
		})
	})

	t.Run("kube-proxy in IPVS mode without strictARP", func(t *testing.T) {
		service(t, l, "explain-ipvs", "explain", "Cluster")
		l.Backend("default", "explain-ipvs", productlab.WebPort, web...)
		l.WaitAddresses("default", "explain-ipvs", 1, 30*time.Second)
		// What explain reads is the ConfigMap kubeadm writes; the lab's
		// kube-proxy runs from flags, so the test writes one.
		l.Apply(`
apiVersion: v1
kind: ConfigMap
metadata: {name: kube-proxy, namespace: kube-system}
data:
  config.conf: |
    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    mode: ipvs
    ipvs: {strictARP: false}
`)
		t.Cleanup(func() {
			if out, err := l.Kubectl("delete", "-n", "kube-system", "configmap/kube-proxy"); err != nil {
				t.Errorf("clean up: %v\n%s", err, out)
			}
		})
		waitExplain(t, p, "explain-ipvs", "PROBLEM: kube-proxy runs in IPVS mode without strictARP")
	})

	t.Run("a Service that does not exist", func(t *testing.T) {
		_, stderr, code := p.run(t, "explain", "svc", "nothing-here", "-n", "default")
		if code != 1 || !strings.Contains(stderr, "Service default/nothing-here does not exist") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// service creates a Service of type LoadBalancer in default, from pool, and
// deletes it when t ends.
func service(t *testing.T, l *productlab.Lab, name, pool, policy string) {
	t.Helper()
	l.Apply(fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default, annotations: {herald.dev/pool: %s}}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  externalTrafficPolicy: %s
  ports: [{name: http, port: 80, targetPort: %d}]
`, name, pool, policy, productlab.WebPort))
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--ignore-not-found", "--timeout=60s", "-n", "default", "service/"+name); err != nil {
			t.Errorf("clean up service %s: %v\n%s", name, err, out)
		}
	})
}

// label sets a label on a node until t ends.
func label(t *testing.T, l *productlab.Lab, node, kv string) {
	t.Helper()
	if out, err := l.Kubectl("label", "--overwrite", "node", node, kv); err != nil {
		t.Fatalf("kubectl label: %v\n%s", err, out)
	}
	key := strings.SplitN(kv, "=", 2)[0]
	t.Cleanup(func() {
		if out, err := l.Kubectl("label", "node", node, key+"-"); err != nil {
			t.Errorf("kubectl label: %v\n%s", err, out)
		}
	})
}

// waitExplain runs explain on default/name until its output has every
// wanted text (the speakers and controller act within seconds).
func waitExplain(t *testing.T, p *plugin, name string, want ...string) {
	t.Helper()
	netlab.Eventually(t, 30*time.Second, func(context.Context) error {
		stdout, stderr, code := p.run(t, "explain", "svc", name, "-n", "default")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stdout, w) {
				return fmt.Errorf("the explanation lacks %q:\n%s", w, stdout)
			}
		}
		return nil
	})
}
