package suite

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(35, "address claims", testClaims) }

// The address-claims group owns 198.51.100.176/29.
const claimsNS = "claims"

// testClaims checks on the wire that the AddressClaim, not the pools' current
// ranges, decides how an address is announced (issue 11, second case): an
// edit that leaves an address outside its pool keeps it announced by the same
// node, and so does the range moving to another pool that no advertisement
// announces.
func testClaims(t *testing.T, l *productlab.Lab) {
	l.CreateNamespace(claimsNS, nil)
	web := l.WebPods()
	addr := netip.MustParseAddr("198.51.100.177")
	l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: claims-edit}
spec:
  addresses: ["198.51.100.176/30"]
  autoAssign: false
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: claims-edit}
spec:
  ipPools: [claims-edit]
`)
	removeAtEnd(t, l, []string{claimsNS + "/*"}, "l2advertisement/claims-edit", "ippool/claims-edit", "ippool/claims-other")
	l.Apply(testService{Namespace: claimsNS, Name: "kept", Annotations: map[string]string{
		"herald.dev/pool": "claims-edit", "herald.dev/addresses": addr.String()}}.YAML())
	l.Backend(claimsNS, "kept", productlab.WebPort, web...)
	before := waitAllocated(t, l, claimsNS, "kept", "claims-edit", addr)
	svc := getService(t, l, claimsNS, "kept")
	waitClaim(t, l, addr, "claims-edit", string(svc.UID))
	reach(t, l, addr, 80)
	owner := l.WaitAnnouncer(addr, patience, nil)
	t.Logf("%s announces %s", owner, addr)

	// The client connects throughout: neither edit may interrupt it.
	probe := l.Probe(addr, 80, 100*time.Millisecond, 2*time.Second)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			probe.Stop()
		}
	})

	t.Run("an edit leaves the address outside its pool", func(t *testing.T) {
		l := l.For(t)
		l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: claims-edit}
spec:
  addresses: ["198.51.100.180/30"]
  autoAssign: false
`)
		waitOutside(t, l, "claims-edit", addr)
		// Speakers must still announce it with the claim's pool's
		// advertisement, from the same node.
		// Give the speakers time to react to the edit (they do within a
		// second): a wrong reaction would withdraw the address by now.
		time.Sleep(3 * time.Second)
		if got := l.WaitAnnouncer(addr, patience, nil); got != owner {
			t.Errorf("after the edit %s answers for %s, want %s as before", got, addr, owner)
		}
		reach(t, l, addr, 80)
		assertUnchanged(t, l, claimsNS, map[string]serviceState{"kept": before}, "after the pool edit")
		waitClaim(t, l, addr, "claims-edit", string(svc.UID))
	})

	t.Run("the range moves to another pool that no advertisement announces", func(t *testing.T) {
		l := l.For(t)
		l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: claims-other}
spec:
  addresses: ["198.51.100.176/30"]
  autoAssign: false
`)
		time.Sleep(3 * time.Second)
		if got := l.WaitAnnouncer(addr, patience, nil); got != owner {
			t.Errorf("after the range moved %s answers for %s, want %s as before", got, addr, owner)
		}
		reach(t, l, addr, 80)
		waitClaim(t, l, addr, "claims-edit", string(svc.UID))
	})

	stopped = true
	attempts := probe.Stop()
	if failed := productlab.Failed(attempts); len(failed) > 0 {
		logFailedConnections(t, l, addr, failed)
		t.Errorf("%d of %d client connections to %v failed during the pool edits; first: %v at %v",
			len(failed), len(attempts), addr, failed[0].Err, failed[0].Start.Format(time.StampMilli))
	} else if len(attempts) == 0 {
		t.Error("the client made no connection")
	} else {
		t.Logf("all %d client connections to %v reached a pod during the pool edits", len(attempts), addr)
	}
}

// waitClaim waits until the AddressClaim of addr names pool and lists exactly
// the Service with UID uid.
func waitClaim(t *testing.T, l *productlab.Lab, addr netip.Addr, pool, uid string) {
	t.Helper()
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		c, err := l.Herald.HeraldV1alpha1().AddressClaims().Get(ctx, config.ClaimName(addr), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Spec.Pool != pool || len(c.Spec.Holders) != 1 || c.Spec.Holders[0].UID != uid {
			return fmt.Errorf("claim of %s: pool %q, holders %+v; want pool %q and the Service %s", addr, c.Spec.Pool, c.Spec.Holders, pool, uid)
		}
		return nil
	})
}

// waitOutside waits until pool reports addr as held outside it.
func waitOutside(t *testing.T, l *productlab.Lab, pool string, addr netip.Addr) {
	t.Helper()
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		p, err := l.Herald.HeraldV1alpha1().IPPools().Get(ctx, pool, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1alpha1.ConditionAddressesOutsidePool && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, addr.String()) {
				return nil
			}
		}
		return fmt.Errorf("pool %s does not report %s outside it: %s", pool, addr, productlab.DescribeConditions(p.Status.Conditions))
	})
}
