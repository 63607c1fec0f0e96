package pods

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
)

// endpointSliceController is the managed-by label of the EndpointSlices
// kube-controller-manager's EndpointSlice controller writes.
const endpointSliceController = "endpointslice-controller.k8s.io"

// TestPods installs deploy/default, unchanged, on a cluster whose node runs a real
// kubelet with containerd and runc: the speaker DaemonSet and the controller Deployment
// become Ready as real pods of the image `make images` builds; a Service of a real
// Deployment gets an address of the pool, its EndpointSlice is the EndpointSlice
// controller's, and the client on the LAN reaches a pod through it over layer 2.
func TestPods(t *testing.T) {
	start := time.Now()
	l := New(t, 1)
	t.Logf("cluster with %d kubelet node(s) ready after %v", len(l.Nodes), time.Since(start).Round(time.Second))

	rendered := l.ApplyManifests()
	if !strings.Contains(rendered, "image: "+HeraldImage+"\n") {
		t.Fatalf("the rendered manifests do not name %s, the image the lab imported", HeraldImage)
	}
	waitHeraldReady(t, l)
	t.Logf("herald-speaker and herald-controller ready after %v", time.Since(start).Round(time.Second))

	if _, err := l.Kubectl(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: pods}
spec:
  addresses: ["198.51.100.130/32"]
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: pods}
spec:
  ipPools: [pods]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: `+WebImage+`
        args: [-name, $(POD_NAME), -listen, ":8080"]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports: [{containerPort: 8080}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v", err)
	}

	var addr netip.Addr
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		svc, err := l.Kube.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			return fmt.Errorf("service web has no address yet")
		}
		addr, err = netip.ParseAddr(svc.Status.LoadBalancer.Ingress[0].IP)
		return err
	})
	if want := netip.MustParseAddr("198.51.100.130"); addr != want {
		t.Fatalf("service web got %v, want %v (the pool's only address)", addr, want)
	}

	// The Service's endpoints: the EndpointSlice controller's slice, listing the
	// Deployment's pods, ready, at the addresses their kubelet reported.
	var pods []string
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		var err error
		pods, err = readyEndpoints(ctx, l, "default", "web")
		if err == nil && len(pods) != 2 {
			err = fmt.Errorf("ready endpoints %v, want the Deployment's 2 pods", pods)
		}
		return err
	})
	t.Logf("the EndpointSlice controller lists pods %v", pods)

	var reply netlab.PodReply
	netlab.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		var err error
		reply, err = l.Cluster.Client.ConnectPod(ctx, netip.AddrPortFrom(addr, 80))
		return err
	})
	if !slices.Contains(pods, reply.Pod) {
		t.Fatalf("the client reached %q, not one of the Service's pods %v", reply.Pod, pods)
	}
	t.Logf("the client reached pod %s through %v after %v", reply.Pod, addr, time.Since(start).Round(time.Second))
}

// waitHeraldReady waits until the speaker DaemonSet has a ready pod on every node and
// both controller replicas are ready, as the API reports them (their kubelets' probes).
func waitHeraldReady(t *testing.T, l *Lab) {
	t.Helper()
	netlab.Eventually(t, 4*time.Minute, func(ctx context.Context) error {
		ds, err := l.Kube.AppsV1().DaemonSets("herald-system").Get(ctx, "herald-speaker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ds.Status.DesiredNumberScheduled != int32(len(l.Nodes)) || ds.Status.NumberReady != ds.Status.DesiredNumberScheduled {
			return fmt.Errorf("daemonset herald-speaker: %d of %d ready, %d nodes%s", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled, len(l.Nodes), podStates(ctx, l))
		}
		dep, err := l.Kube.AppsV1().Deployments("herald-system").Get(ctx, "herald-controller", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if want := *dep.Spec.Replicas; dep.Status.ReadyReplicas != want || dep.Status.UpdatedReplicas != want {
			return fmt.Errorf("deployment herald-controller: %d of %d ready%s", dep.Status.ReadyReplicas, want, podStates(ctx, l))
		}
		return nil
	})
}

// podStates describes herald-system's pods for a message.
func podStates(ctx context.Context, l *Lab) string {
	pods, err := l.Kube.CoreV1().Pods("herald-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return ": " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "\n  pod %s on %q: %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			switch {
			case c.State.Waiting != nil:
				fmt.Fprintf(&b, ", %s waiting: %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
			case c.State.Terminated != nil:
				fmt.Fprintf(&b, ", %s terminated: %s %s", c.Name, c.State.Terminated.Reason, c.State.Terminated.Message)
			default:
				fmt.Fprintf(&b, ", %s running, ready %v (restarts %d)", c.Name, c.Ready, c.RestartCount)
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				fmt.Fprintf(&b, ", %s: %s", c.Type, c.Message)
			}
		}
	}
	return b.String()
}

// readyEndpoints returns the pods the Service's EndpointSlices list as ready, and fails
// unless every slice is the EndpointSlice controller's and every endpoint is a running
// pod of the Service at its pod's address.
func readyEndpoints(ctx context.Context, l *Lab, namespace, service string) ([]string, error) {
	list, err := l.Kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("service %s/%s has no EndpointSlice yet", namespace, service)
	}
	var ready []string
	for _, s := range list.Items {
		if m := s.Labels[discoveryv1.LabelManagedBy]; m != endpointSliceController {
			return nil, fmt.Errorf("EndpointSlice %s is managed by %q, want %q", s.Name, m, endpointSliceController)
		}
		for _, e := range s.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
				return nil, fmt.Errorf("EndpointSlice %s: endpoint %v names no pod", s.Name, e.Addresses)
			}
			pod, err := l.Kube.CoreV1().Pods(namespace).Get(ctx, e.TargetRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			var podIPs []string
			for _, ip := range pod.Status.PodIPs {
				podIPs = append(podIPs, ip.IP)
			}
			for _, a := range e.Addresses {
				if !slices.Contains(podIPs, a) {
					return nil, fmt.Errorf("EndpointSlice %s: address %s is not one of pod %s's %v", s.Name, a, pod.Name, podIPs)
				}
			}
			if e.Conditions.Ready != nil && *e.Conditions.Ready && pod.Status.Phase == corev1.PodRunning {
				ready = append(ready, pod.Name)
			}
		}
	}
	return ready, nil
}
