package suite

import (
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(0, "a Service answers through layer 2", testSmoke) }

// testSmoke is the product's promise in one scenario: a pool, an L2Advertisement, a
// Service; the Service gets an address and the client reaches a pod through it.
func testSmoke(t *testing.T, l *productlab.Lab) {
	l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: smoke}
spec:
  addresses: ["198.51.100.130/32"]
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: smoke}
spec:
  ipPools: [smoke]
---
apiVersion: v1
kind: Service
metadata: {name: smoke, namespace: default}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`)
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--wait=false", "service/smoke", "-n", "default", "l2advertisement/smoke", "ippool/smoke"); err != nil {
			t.Logf("clean up: %v\n%s", err, out)
		}
	})
	addrs := l.WaitAddresses("default", "smoke", 1, 30*time.Second)
	if want := "198.51.100.130"; addrs[0].String() != want {
		t.Fatalf("address %v, want %s", addrs[0], want)
	}
	l.Backend("default", "smoke", productlab.WebPort, l.WebPods()...)
	reply := l.WaitConnect(addrs[0], 80, 30*time.Second, nil)
	t.Logf("the client reached pod %s through %v", reply.Pod, addrs[0])
}
