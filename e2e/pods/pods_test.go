package pods

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

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
	l.WaitHeraldReady()
	t.Logf("herald-speaker and herald-controller ready after %v", time.Since(start).Round(time.Second))

	l.ApplyDemo()
	addr := l.ServiceAddress("default", DemoService)
	if addr != DemoAddress {
		t.Fatalf("service web got %v, want %v (the pool's only address)", addr, DemoAddress)
	}

	// The Service's endpoints: the EndpointSlice controller's slice, listing the
	// Deployment's pods, ready, at the addresses their kubelet reported.
	pods := l.WaitReadyEndpoints("default", DemoService, 2)
	t.Logf("the EndpointSlice controller lists pods %v", pods)

	reply := l.ConnectFromClient(netip.AddrPortFrom(addr, 80))
	if !slices.Contains(pods, reply.Pod) {
		t.Fatalf("the client reached %q, not one of the Service's pods %v", reply.Pod, pods)
	}
	t.Logf("the client reached pod %s through %v after %v", reply.Pod, addr, time.Since(start).Round(time.Second))
}
