package controller

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// manyServices is how many Services the restart test addresses.
const manyServices = 500

// TestRestartAndLeadership runs two herald-controller replicas, each as
// its own apiserver user with the deployment's RBAC, addresses 500 Services, then moves leadership
// twice: the leader steps down on SIGTERM (and comes back as a standby),
// then the new leader is killed. The apiserver's audit log shows that only
// the leader writes; after each change no Service changed at all (same
// address, same resourceVersion), and new Services are still served.
func TestRestartAndLeadership(t *testing.T) {
	opts, auditLog := auditOptions(t)
	// A /24 of cluster IPs, so that half of the Services can be IPv4.
	opts.ServiceClusterIPRanges = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:ffff:ffff::/112")}
	e := newEnvWith(t, opts)
	e.grantControllerRBAC(t, "alice", "bob")
	bin := buildController(t)
	const ns = "many"
	e.namespace(t, ns, nil)
	e.createPool(t, "v4", []string{"203.0.113.0/24"})
	e.createPool(t, "v6", []string{"2001:db8:50::/112"})

	alice := startReplica(t, e.cp, bin, "alice")
	e.waitLeader(t, "alice")
	bob := startReplica(t, e.cp, bin, "bob")
	waitReady(t, alice)
	waitReady(t, bob)
	if v, err := bob.metric("herald_controller_leader"); err != nil || v != 0 {
		t.Errorf("standby bob: herald_controller_leader = %v, %v; want 0", v, err)
	}
	if v, err := alice.metric("herald_controller_leader"); err != nil || v != 1 {
		t.Errorf("leader alice: herald_controller_leader = %v, %v; want 1", v, err)
	}

	start := time.Now()
	e.createMany(t, ns, manyServices)
	before := e.waitAllAddressed(t, ns, manyServices)
	t.Logf("%d Services addressed in %v", manyServices, time.Since(start).Round(time.Millisecond))
	assertUnique(t, before)
	if _, body, err := alice.get("/metrics"); err != nil || !strings.Contains(body, `herald_controller_pool_addresses{family="ipv4",pool="v4",state="used"} 250`) {
		t.Errorf("leader's /metrics lacks the pool usage (err %v)", err)
	}
	onlyLeaderWrote(t, auditWrites(t, auditLog), "alice", "bob")

	// The leader steps down on SIGTERM; the standby takes over. Writes are
	// attributed from the moment the old leader has exited.
	t0 := time.Now()
	alice.stop(t)
	mark := len(auditWrites(t, auditLog))
	e.waitLeader(t, "bob")
	waitReady(t, bob)
	t.Logf("bob took over %v after alice got SIGTERM", time.Since(t0).Round(time.Millisecond))
	alice = startReplica(t, e.cp, bin, "alice") // back, as a standby
	waitReady(t, alice)
	e.createService(t, ns, "after-handover")
	e.waitAnyIngress(t, ns, "after-handover", 1)
	e.assertUnchanged(t, ns, before)
	onlyLeaderWrote(t, auditWrites(t, auditLog)[mark:], "bob", "alice")

	// The leader dies; the Lease expires and the standby takes over.
	t0 = time.Now()
	bob.kill(t)
	mark = len(auditWrites(t, auditLog))
	e.waitLeader(t, "alice")
	waitReady(t, alice)
	t.Logf("alice took over %v after bob was killed", time.Since(t0).Round(time.Millisecond))
	e.createService(t, ns, "after-crash")
	e.waitAnyIngress(t, ns, "after-crash", 1)
	e.assertUnchanged(t, ns, before)
	onlyLeaderWrote(t, auditWrites(t, auditLog)[mark:], "alice", "bob")
	got := e.addressed(t, ns)
	assertUnique(t, got)
}

// createMany creates n LoadBalancer Services, half IPv4, half IPv6.
func (e *env) createMany(t *testing.T, ns string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fam := corev1.IPv4Protocol
			if i%2 == 1 {
				fam = corev1.IPv6Protocol
			}
			svc := newService(ns, fmt.Sprintf("svc-%03d", i), dualStack(corev1.IPFamilyPolicySingleStack, fam))
			if _, err := e.kube.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create service: %v", err)
	}
}

// serviceState is what must not change about a Service.
type serviceState struct {
	ingress         string
	resourceVersion string
}

func (e *env) addressed(t *testing.T, ns string) map[string]serviceState {
	t.Helper()
	list, err := e.kube.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]serviceState{}
	for _, s := range list.Items {
		if ips := ingressIPs(&s); len(ips) > 0 {
			out[s.Name] = serviceState{strings.Join(ips, ","), s.ResourceVersion}
		}
	}
	return out
}

func (e *env) waitAllAddressed(t *testing.T, ns string, n int) map[string]serviceState {
	t.Helper()
	var got map[string]serviceState
	eventually(t, fmt.Sprintf("%d Services addressed", n), func() (bool, string) {
		got = e.addressed(t, ns)
		return len(got) == n, fmt.Sprintf("%d addressed", len(got))
	})
	return got
}

// assertUnchanged checks that every Service of before kept its address and
// was not written at all.
func (e *env) assertUnchanged(t *testing.T, ns string, before map[string]serviceState) {
	t.Helper()
	now := e.addressed(t, ns)
	changed := 0
	for name, b := range before {
		if n := now[name]; n != b {
			if changed < 5 {
				t.Errorf("service %s changed: %+v -> %+v", name, b, n)
			}
			changed++
		}
	}
	if changed > 0 {
		t.Errorf("%d of %d Services changed", changed, len(before))
	}
}

func assertUnique(t *testing.T, states map[string]serviceState) {
	t.Helper()
	seen := map[string]string{}
	for name, s := range states {
		if other, dup := seen[s.ingress]; dup {
			t.Errorf("%s and %s both have %s", name, other, s.ingress)
		}
		seen[s.ingress] = name
	}
}

// waitLeader waits until the controller Lease names identity.
func (e *env) waitLeader(t *testing.T, identity string) {
	t.Helper()
	eventually(t, "leader "+identity, func() (bool, string) {
		l, err := e.kube.CoordinationV1().Leases("herald-system").Get(context.Background(), "herald-controller", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		return holder == identity, "holder " + holder
	})
}

func waitReady(t *testing.T, r *replica) {
	t.Helper()
	eventually(t, "replica "+r.name+" ready", func() (bool, string) {
		code, body, err := r.get("/readyz")
		if err != nil {
			return false, err.Error()
		}
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
}

// onlyLeaderWrote checks that, among writes, the standby wrote nothing but
// its attempts on the Lease, the leader wrote Service status, and RBAC
// forbade nothing.
func onlyLeaderWrote(t *testing.T, writes []auditWrite, leader, standby string) {
	t.Helper()
	leaderStatus := 0
	byResource := map[string]int{}
	for _, w := range writes {
		if (w.User == leader || w.User == standby) && w.Code == 403 {
			t.Errorf("the deployment's RBAC forbids a write: %s", w)
		}
		switch w.User {
		case standby:
			if w.Resource != "leases" {
				t.Errorf("standby %s wrote: %s", standby, w)
			}
		case leader:
			byResource[strings.TrimSuffix(w.Resource+"/"+w.Subresource, "/")]++
			if w.Resource == "services" && w.Subresource == "status" {
				leaderStatus++
			}
		}
	}
	t.Logf("%d writes; leader %s wrote %v", len(writes), leader, byResource)
	if leaderStatus == 0 {
		t.Errorf("leader %s wrote no Service status", leader)
	}
}
