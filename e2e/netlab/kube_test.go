package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// newKubeCluster starts a control plane and a two-node cluster with kube-proxy.
func newKubeCluster(t *testing.T) *Cluster {
	RequireRoot(t)
	// Herald's CRDs: SetLoadBalancerIngress writes AddressClaims.
	cp := controlplane.StartForTest(t, controlplane.Options{})
	return NewCluster(t, ClusterOptions{Nodes: 2, RESTConfig: cp.Config(), KubeProxy: cp.Binaries.KubeProxy})
}

// createService creates a dual-stack Service of type LoadBalancer without a selector
// (SetEndpoints writes its slices), port 80 to the pods' PodServerPort.
func createService(t *testing.T, c *Cluster, name string, policy corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: policy,
			IPFamilyPolicy:        ptr(corev1.IPFamilyPolicyPreferDualStack),
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				TargetPort: intstr.FromInt32(PodServerPort)}},
		},
	}
	svc, err := c.Kube.CoreV1().Services("default").Create(t.Context(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// healthz asks kube-proxy's health check on node for the Service and returns the
// status code and the localEndpoints count.
func healthz(ctx context.Context, from *Host, node *Node, port int32) (int, int, error) {
	code, body, err := from.HTTPGet(ctx, fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(node.Addr4(), uint16(port))))
	if err != nil {
		return 0, 0, err
	}
	var h struct {
		LocalEndpoints int `json:"localEndpoints"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		return code, 0, fmt.Errorf("health check body %q: %w", body, err)
	}
	return code, h.LocalEndpoints, nil
}

func TestKubeProxyHealthCheckFollowsEndpoints(t *testing.T) {
	c := newKubeCluster(t)
	node1, node2 := c.Node(1), c.Node(2)
	pod := node1.AddPod("web-1")
	pod.Serve(0)
	svc := createService(t, c, "web", corev1.ServiceExternalTrafficPolicyLocal)
	hc := svc.Spec.HealthCheckNodePort
	if hc == 0 {
		t.Fatalf("the apiserver gave no healthCheckNodePort: %+v", svc.Spec)
	}
	if err := c.SetEndpoints(t.Context(), "default", "web", Endpoint{Pod: pod, State: EndpointReady}); err != nil {
		t.Fatal(err)
	}
	want := func(node *Node, wantCode, wantLocal int) {
		t.Helper()
		Eventually(t, 15*time.Second, func(ctx context.Context) error {
			code, local, err := healthz(ctx, c.Client, node, hc)
			if err != nil {
				return err
			}
			if code != wantCode || local != wantLocal {
				return fmt.Errorf("health check of %s = %d with %d local endpoints, want %d with %d", node.Name(), code, local, wantCode, wantLocal)
			}
			return nil
		})
	}
	want(node1, http.StatusOK, 1)
	want(node2, http.StatusServiceUnavailable, 0)

	// The node's only endpoint terminates (still serving): kube-proxy says 503.
	if err := c.SetEndpoints(t.Context(), "default", "web", Endpoint{Pod: pod, State: EndpointTerminatingServing}); err != nil {
		t.Fatal(err)
	}
	want(node1, http.StatusServiceUnavailable, 0)

	// The node health port answers too.
	code, body, err := c.Client.HTTPGet(t.Context(), fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(node1.Addr4(), KubeProxyHealthPort)))
	if err != nil || code != http.StatusOK {
		t.Errorf("node health port of node1 = %d %q, %v; want 200", code, body, err)
	}
}

func TestNodePortReachesPod(t *testing.T) {
	c := newKubeCluster(t)
	node1, node2 := c.Node(1), c.Node(2)
	pod := node1.AddPod("web-1")
	pod.Serve(0)
	svc := createService(t, c, "web", corev1.ServiceExternalTrafficPolicyCluster)
	nodePort := uint16(svc.Spec.Ports[0].NodePort)
	if err := c.SetEndpoints(t.Context(), "default", "web", Endpoint{Pod: pod, State: EndpointReady}); err != nil {
		t.Fatal(err)
	}
	// Through the pod's own node and through the other node (kube-proxy forwards over
	// the pod network and masquerades), over IPv4 and IPv6.
	for _, dst := range []netip.Addr{node1.Addr4(), node2.Addr4(), node1.Addr6(), node2.Addr6()} {
		var reply PodReply
		Eventually(t, 15*time.Second, func(ctx context.Context) error {
			var err error
			reply, err = c.Client.ConnectPod(ctx, netip.AddrPortFrom(dst, nodePort))
			return err
		})
		if reply.Pod != "web-1" {
			t.Errorf("NodePort %s:%d answered by %q, want web-1", dst, nodePort, reply.Pod)
		}
	}

	// A load-balancer address in status reaches the pod too, once routed to a node.
	lb := netip.MustParseAddr("203.0.113.140")
	if err := c.SetLoadBalancerIngress(t.Context(), "default", "web", "netlab", lb); err != nil {
		t.Fatal(err)
	}
	c.Client.AddRoute(netip.PrefixFrom(lb, 32), node2.Addr4(), "")
	Eventually(t, 15*time.Second, func(ctx context.Context) error {
		reply, err := c.Client.ConnectPod(ctx, netip.AddrPortFrom(lb, 80))
		if err != nil {
			return err
		}
		if reply.Pod != "web-1" {
			return fmt.Errorf("load balancer %s answered by %q", lb, reply.Pod)
		}
		return nil
	})
}

func TestClientReachesPodThroughRouter(t *testing.T) {
	RequireCommands(t, BGPDPath, ZebraPath, BFDDPath, "vtysh")
	c := newKubeCluster(t)
	node1 := c.Node(1)
	pod := node1.AddPod("web-1")
	pod.Serve(0)
	createService(t, c, "web", corev1.ServiceExternalTrafficPolicyLocal)
	if err := c.SetEndpoints(t.Context(), "default", "web", Endpoint{Pod: pod, State: EndpointReady}); err != nil {
		t.Fatal(err)
	}
	lb := netip.MustParseAddr("203.0.113.141")
	if err := c.SetLoadBalancerIngress(t.Context(), "default", "web", "netlab", lb); err != nil {
		t.Fatal(err)
	}
	// The router installs what it learns (zebra), node1 advertises the address, the
	// client routes the pool via the router: client, router, node1, kube-proxy, pod.
	c.Router.StartBGP(BGPConfig{ASN: 64512, InstallRoutes: true, Neighbors: []BGPNeighborConfig{
		{Address: node1.Addr4(), ASN: 64513},
	}})
	node1.Start("bgppeer", BuildGo(t, BGPPeerPackage), "-asn", "64513", "-router-id", node1.Addr4().String(),
		"-peer", c.Router.Addr4().String()+",64512", "-nexthop4", node1.Addr4().String(),
		"-nexthop6", node1.Addr6().String(), "-prefix", netip.PrefixFrom(lb, 32).String())
	var reply PodReply
	Eventually(t, 30*time.Second, func(ctx context.Context) error {
		var err error
		reply, err = c.Client.ConnectPod(ctx, netip.AddrPortFrom(lb, 80))
		return err
	})
	// Local traffic policy: the pod sees the client's own address.
	want := PodReply{Pod: "web-1", Client: netip.AddrPortFrom(c.Client.Addr4(), reply.Client.Port())}
	if reply != want {
		t.Errorf("reply through the router = %+v, want %+v", reply, want)
	}
}
