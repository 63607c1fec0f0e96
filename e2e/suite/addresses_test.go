package suite

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(30, "addresses", testAddresses) }

// The addresses group owns 198.51.100.144/28: each scenario has its own pool,
// served only to Services that name it (autoAssign: false), except the pools
// of the pool-selection scenario, which is about automatic choice.
const (
	addrNS     = "addresses"
	addrTeamNS = "addresses-team"
	// addrGroupLabel marks the group's pools; the group's L2Advertisement
	// selects them by it, so that a deleted pool leaves it valid.
	addrGroupLabel = "e2e.herald.dev/group"
)

// patience is how long the scenarios wait for the product to act: generous,
// because other labs share the machine's two cores.
const patience = 60 * time.Second

// testService is a Service the suite's address scenarios apply with kubectl.
type testService struct {
	Namespace, Name string
	// Type is LoadBalancer when empty.
	Type string
	// Ports are TCP ports, each targeting productlab.WebPort; [80] when empty.
	Ports []int
	// Annotations are written as they are (quoted).
	Annotations map[string]string
	// Spec holds extra lines of spec, in YAML ("loadBalancerIP: 198.51.100.1").
	Spec []string
}

// YAML writes the Service as a manifest.
func (s testService) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\n", s.Name, s.Namespace)
	if len(s.Annotations) > 0 {
		b.WriteString("  annotations:\n")
		for _, k := range slices.Sorted(maps.Keys(s.Annotations)) {
			fmt.Fprintf(&b, "    %s: %s\n", k, strconv.Quote(s.Annotations[k]))
		}
	}
	typ := cmp.Or(s.Type, "LoadBalancer")
	fmt.Fprintf(&b, "spec:\n  type: %s\n", typ)
	if typ == "LoadBalancer" {
		b.WriteString("  allocateLoadBalancerNodePorts: false\n")
	}
	b.WriteString("  selector: {app: web}\n  ports:\n")
	ports := s.Ports
	if len(ports) == 0 {
		ports = []int{80}
	}
	for _, p := range ports {
		fmt.Fprintf(&b, "  - {name: tcp-%d, port: %d, targetPort: %d}\n", p, p, productlab.WebPort)
	}
	for _, line := range s.Spec {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}

// pinned returns the annotations that pin a Service to pool.
func pinned(pool string) map[string]string {
	return map[string]string{"herald.dev/pool": pool}
}

// removeAtEnd deletes, when t ends, the Services named by services first
// ("namespace/name", or "namespace/*" for every Service there), so that the
// controller frees the pools, then the cluster-scoped objects ("ippool/x",
// "l2advertisement/y"), waiting until the controller has let the pools go.
func removeAtEnd(t *testing.T, l *productlab.Lab, services []string, objects ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, s := range services {
			ns, name, _ := strings.Cut(s, "/")
			args := []string{"delete", "-n", ns, "--ignore-not-found", "--timeout=50s", "service/" + name}
			if name == "*" {
				args = []string{"delete", "-n", ns, "--ignore-not-found", "--timeout=50s", "services", "--all"}
			}
			if out, err := l.Kubectl(args...); err != nil {
				t.Errorf("clean up the Services %s: %v\n%s", s, err, out)
			}
		}
		if len(objects) == 0 {
			return
		}
		if out, err := l.Kubectl(append([]string{"delete", "--ignore-not-found", "--timeout=50s"}, objects...)...); err != nil {
			t.Errorf("clean up %v: %v\n%s", objects, err, out)
		}
	})
}

// serviceState is what a user sees of a Service that must not change.
type serviceState struct {
	ingress         []netip.Addr
	resourceVersion string
}

// getService reads a Service, failing t on error.
func getService(t *testing.T, l *productlab.Lab, ns, name string) *corev1.Service {
	t.Helper()
	s, err := l.Kube.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service %s/%s: %v", ns, name, err)
	}
	return s
}

// waitAllocated waits until the Service holds exactly want (any single address
// when want is empty) with a True AddressAllocated condition whose message names
// pool, and returns what it holds.
func waitAllocated(t *testing.T, l *productlab.Lab, ns, name, pool string, want ...netip.Addr) serviceState {
	t.Helper()
	var st serviceState
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		s, err := l.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got := config.LoadBalancerAddresses(s)
		c := apimeta.FindStatusCondition(s.Status.Conditions, config.ConditionAddressAllocated)
		okAddrs := (len(want) == 0 && len(got) == 1) || (len(want) > 0 && slices.Equal(got, want))
		if !okAddrs || c == nil || c.Status != metav1.ConditionTrue || c.Reason != controller.ReasonAllocated {
			return fmt.Errorf("service %s/%s: ingress %v (want %v), %s", ns, name, got, want, productlab.DescribeConditions(s.Status.Conditions))
		}
		if wantMsg := config.GrantSentence(config.VerbAllocated, got, pool); !strings.HasPrefix(c.Message, wantMsg) {
			return fmt.Errorf("service %s/%s: condition message %q does not start with %q", ns, name, c.Message, wantMsg)
		}
		st = serviceState{got, s.ResourceVersion}
		return nil
	})
	return st
}

// assertUnchanged fails t when a Service of before holds other addresses or was
// written at all (another resourceVersion) since.
func assertUnchanged(t *testing.T, l *productlab.Lab, ns string, before map[string]serviceState, when string) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(before)) {
		s := getService(t, l, ns, name)
		got := config.LoadBalancerAddresses(s)
		if !slices.Equal(got, before[name].ingress) {
			t.Errorf("%s: service %s/%s moved from %v to %v", when, ns, name, before[name].ingress, got)
		}
		if s.ResourceVersion != before[name].resourceVersion {
			t.Errorf("%s: service %s/%s was rewritten: resourceVersion %s, was %s; %s", when, ns, name,
				s.ResourceVersion, before[name].resourceVersion, productlab.DescribeConditions(s.Status.Conditions))
		}
	}
}

// reach waits until the client reaches one of the web pods through addr:port.
func reach(t *testing.T, l *productlab.Lab, addr netip.Addr, port int) netlab.PodReply {
	t.Helper()
	r := l.WaitConnect(addr, port, patience, nil)
	if !strings.HasPrefix(r.Pod, "web-") {
		t.Fatalf("%v:%d answered by pod %s, want one of the web pods", addr, port, r.Pod)
	}
	return r
}

func testAddresses(t *testing.T, l *productlab.Lab) {
	l.CreateNamespace(addrNS, nil)
	l.CreateNamespace(addrTeamNS, nil)
	web := l.WebPods()
	l.Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: addresses}
spec:
  ipPoolSelector:
    matchLabels: {%s: addresses}
`, addrGroupLabel))
	removeAtEnd(t, l, []string{addrNS + "/*", addrTeamNS + "/*"}, "l2advertisement/addresses")
	pool := func(t *testing.T, name string, spec string, addrs ...string) {
		t.Helper()
		l.For(t).Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata:
  name: %s
  labels: {%s: addresses}
spec:
  addresses: [%s]
%s`, name, addrGroupLabel, strings.Join(addrs, ", "), spec))
		removeAtEnd(t, l, []string{addrNS + "/*", addrTeamNS + "/*"}, "ippool/"+name)
	}
	apply := func(t *testing.T, svcs ...testService) {
		t.Helper()
		var docs []string
		for _, s := range svcs {
			docs = append(docs, s.YAML())
		}
		l.For(t).Apply(strings.Join(docs, "---\n"))
	}

	t.Run("kept across leader changes and a restart of both replicas", func(t *testing.T) {
		l := l.For(t)
		const poolName = "addresses-stable"
		pool(t, poolName, "  autoAssign: false\n", "198.51.100.144/30")
		// Whatever happens, both replicas run again when the scenario ends.
		t.Cleanup(func() {
			if err := l.RestoreControllers(patience); err != nil {
				t.Error(err)
			}
		})
		apply(t, testService{Namespace: addrNS, Name: "stable-a", Annotations: pinned(poolName)},
			testService{Namespace: addrNS, Name: "stable-b", Annotations: pinned(poolName)})
		before := map[string]serviceState{}
		for _, name := range []string{"stable-a", "stable-b"} {
			l.Backend(addrNS, name, productlab.WebPort, web...)
			before[name] = waitAllocated(t, l, addrNS, name, poolName)
		}
		a := before["stable-a"].ingress[0]
		reach(t, l, a, 80)
		// The client keeps connecting to stable-a throughout: the speakers
		// announce without the controller, so nothing here may interrupt it.
		probe := l.Probe(a, 80, 200*time.Millisecond, 3*time.Second)
		stopped := false
		t.Cleanup(func() {
			if !stopped {
				probe.Stop()
			}
		})

		// newService checks that the acting leader serves a new Service, then
		// deletes it (the pool has room for one more).
		newService := func(t *testing.T, l *productlab.Lab, name string) {
			t.Helper()
			apply(t, testService{Namespace: addrNS, Name: name, Annotations: pinned(poolName)})
			st := waitAllocated(t, l, addrNS, name, poolName)
			if slices.ContainsFunc(before["stable-a"].ingress, func(x netip.Addr) bool { return x == st.ingress[0] }) ||
				slices.ContainsFunc(before["stable-b"].ingress, func(x netip.Addr) bool { return x == st.ingress[0] }) {
				t.Fatalf("new service %s got %v, an address in use", name, st.ingress)
			}
			if out, err := l.Kubectl("delete", "-n", addrNS, "service/"+name); err != nil {
				t.Fatalf("delete service %s: %v\n%s", name, err, out)
			}
		}

		leader := l.WaitLeader(-1, patience)
		standby := 1 - leader
		if v, err := l.ControllerMetric(t.Context(), standby, "herald_controller_leader"); err != nil || v != 0 {
			t.Errorf("standby replica %d: herald_controller_leader %v (%v), want 0", standby, v, err)
		}
		t.Logf("replica %d leads", leader)

		t.Run("the leader stops gracefully", func(t *testing.T) {
			l := l.For(t)
			l.StopController(leader, true)
			next := l.WaitLeader(leader, patience)
			t.Logf("replica %d took over from replica %d", next, leader)
			l.StartController(leader)
			l.WaitControllerReady(leader)
			assertUnchanged(t, l, addrNS, before, "after the graceful handover")
			newService(t, l, "after-handover")
			leader = next
		})
		t.Run("the leader is killed", func(t *testing.T) {
			l := l.For(t)
			l.StopController(leader, false)
			next := l.WaitLeader(leader, patience)
			t.Logf("replica %d took over from killed replica %d", next, leader)
			l.StartController(leader)
			l.WaitControllerReady(leader)
			assertUnchanged(t, l, addrNS, before, "after the leader was killed")
			newService(t, l, "after-kill")
			leader = next
		})
		t.Run("both replicas restart", func(t *testing.T) {
			l := l.For(t)
			l.StopController(0, true)
			l.StopController(1, true)
			l.StartController(0)
			l.StartController(1)
			next := l.WaitLeader(-1, patience)
			t.Logf("replica %d leads after the restart", next)
			assertUnchanged(t, l, addrNS, before, "after both replicas restarted")
			newService(t, l, "after-restart")
		})

		stopped = true
		attempts := probe.Stop()
		if failed := productlab.Failed(attempts); len(failed) > 0 {
			logFailedConnections(t, l, a, failed)
			t.Errorf("%d of %d client connections to %v failed while the controllers changed; first: %v at %v",
				len(failed), len(attempts), a, failed[0].Err, failed[0].Start.Format(time.StampMilli))
		} else {
			t.Logf("all %d client connections to %v reached a pod while the controllers changed", len(attempts), a)
		}
		if len(attempts) == 0 {
			t.Errorf("the client made no connection")
		}
		assertUnchanged(t, l, addrNS, before, "at the end")
	})

	t.Run("two Services share an address", func(t *testing.T) {
		l := l.For(t)
		const poolName = "addresses-shared"
		// One address: both Services can only have it by sharing it.
		pool(t, poolName, "  autoAssign: false\n", "198.51.100.148/32")
		shared := netip.MustParseAddr("198.51.100.148")
		key := map[string]string{"herald.dev/pool": poolName, "herald.dev/sharing-key": "web"}
		apply(t, testService{Namespace: addrNS, Name: "share-80", Ports: []int{80}, Annotations: key},
			testService{Namespace: addrNS, Name: "share-8081", Ports: []int{8081}, Annotations: key})
		for _, name := range []string{"share-80", "share-8081"} {
			l.Backend(addrNS, name, productlab.WebPort, web...)
			waitAllocated(t, l, addrNS, name, poolName, shared)
		}
		r80 := reach(t, l, shared, 80)
		r8081 := reach(t, l, shared, 8081)
		t.Logf("the client reached %s through %v:80 and %s through %v:8081", r80.Pod, shared, r8081.Pod, shared)

		// A third Service asking for the address with the key but a port already
		// taken is refused, and told why; the sharers keep the address.
		clash := maps.Clone(key)
		clash["herald.dev/addresses"] = shared.String()
		apply(t, testService{Namespace: addrNS, Name: "share-clash", Ports: []int{80}, Annotations: clash})
		l.WaitServiceCondition(addrNS, "share-clash", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonSharingRefused, patience)
		l.WaitServiceEvent(addrNS, "share-clash", corev1.EventTypeWarning, controller.ReasonSharingRefused, patience, "TCP/80")
		if got := config.LoadBalancerAddresses(getService(t, l, addrNS, "share-clash")); len(got) != 0 {
			t.Errorf("share-clash got %v although its port clashes", got)
		}
		for _, name := range []string{"share-80", "share-8081"} {
			if got := config.LoadBalancerAddresses(getService(t, l, addrNS, name)); !slices.Equal(got, []netip.Addr{shared}) {
				t.Errorf("%s holds %v after the clash, want %v", name, got, shared)
			}
		}
	})

	t.Run("pool selection by namespace and priority", func(t *testing.T) {
		l := l.For(t)
		// By name, addresses-any would come first; its priority puts it after
		// addresses-team, which only Services in addresses-team may use.
		pool(t, "addresses-team", fmt.Sprintf("  serviceAllocation:\n    namespaces: [%s]\n    priority: 10\n", addrTeamNS), "198.51.100.149/32")
		pool(t, "addresses-any", "  serviceAllocation:\n    priority: 20\n", "198.51.100.150/31")
		l.WaitPoolCondition("addresses-team", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, patience)
		l.WaitPoolCondition("addresses-any", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, patience)

		// Another namespace's Service cannot have the team's free address.
		apply(t, testService{Namespace: addrNS, Name: "outsider"})
		outsider := waitAllocated(t, l, addrNS, "outsider", "addresses-any")
		// The team's Service takes the team's pool, the lower priority.
		apply(t, testService{Namespace: addrTeamNS, Name: "team-1"})
		waitAllocated(t, l, addrTeamNS, "team-1", "addresses-team", netip.MustParseAddr("198.51.100.149"))
		// The team's pool full, the next team Service falls back to the other.
		apply(t, testService{Namespace: addrTeamNS, Name: "team-2"})
		team2 := waitAllocated(t, l, addrTeamNS, "team-2", "addresses-any")
		if team2.ingress[0] == outsider.ingress[0] {
			t.Errorf("team-2 and outsider both hold %v", team2.ingress)
		}
		l.Backend(addrTeamNS, "team-1", productlab.WebPort, web...)
		reach(t, l, netip.MustParseAddr("198.51.100.149"), 80)
	})

	// The requested-address and loadBalancerClass scenarios share a pool.
	const requestedPool = "addresses-requested"
	pool(t, requestedPool, "  autoAssign: false\n", "198.51.100.152/30")
	t.Run("a requested address", func(t *testing.T) {
		l := l.For(t)
		byAnnotation, byField := netip.MustParseAddr("198.51.100.154"), netip.MustParseAddr("198.51.100.153")
		apply(t, testService{Namespace: addrNS, Name: "requested-annotation",
			Annotations: map[string]string{"herald.dev/addresses": byAnnotation.String()}},
			testService{Namespace: addrNS, Name: "requested-field", Spec: []string{"loadBalancerIP: " + byField.String()}})
		for name, want := range map[string]netip.Addr{"requested-annotation": byAnnotation, "requested-field": byField} {
			l.Backend(addrNS, name, productlab.WebPort, web...)
			waitAllocated(t, l, addrNS, name, requestedPool, want)
			node := l.WaitAnnouncer(want, patience, nil)
			r := reach(t, l, want, 80)
			t.Logf("%s: %v announced by %s, the client reached %s", name, want, node, r.Pod)
		}
	})

	t.Run("loadBalancerClass", func(t *testing.T) {
		l := l.For(t)
		// Both ask for the same address; the classed Service first. Herald's
		// controller serves Services without a class only, so the classless one
		// gets the address, which it could not if the classed one held it.
		addr := netip.MustParseAddr("198.51.100.155")
		want := map[string]string{"herald.dev/addresses": addr.String()}
		apply(t, testService{Namespace: addrNS, Name: "classed", Annotations: want,
			Spec: []string{"loadBalancerClass: example.com/another-lb"}})
		classedRV := getService(t, l, addrNS, "classed").ResourceVersion
		apply(t, testService{Namespace: addrNS, Name: "classless", Annotations: want})
		l.Backend(addrNS, "classless", productlab.WebPort, web...)
		waitAllocated(t, l, addrNS, "classless", requestedPool, addr)
		reach(t, l, addr, 80)
		// The classed Service is left alone: no address, no condition, no event,
		// no write at all; and no speaker announces for it.
		// (Checked for a few seconds more, in case the controller were slow.)
		for end := time.Now().Add(3 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			s := getService(t, l, addrNS, "classed")
			evs, err := l.EventsAbout(t.Context(), addrNS, "Service", "classed")
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Status.LoadBalancer.Ingress) > 0 || len(s.Status.Conditions) > 0 || len(evs) > 0 || s.ResourceVersion != classedRV {
				t.Fatalf("the classed Service was touched: ingress %v, %s, events: %s, resourceVersion %s (was %s)",
					config.LoadBalancerAddresses(s), productlab.DescribeConditions(s.Status.Conditions),
					productlab.DescribeEvents(evs), s.ResourceVersion, classedRV)
			}
			if time.Now().After(end) {
				break
			}
		}
		if got, err := l.StatusAnnouncers(t.Context(), addr, addrNS, "classed"); err != nil || len(got) > 0 {
			t.Errorf("SpeakerStatuses list %v for the classed Service (%v), want none", got, err)
		}
	})

	t.Run("an exhausted pool, then capacity added", func(t *testing.T) {
		l := l.For(t)
		const poolName = "addresses-small"
		pool(t, poolName, "  autoAssign: false\n", "198.51.100.156/32")
		apply(t, testService{Namespace: addrNS, Name: "small-1", Annotations: pinned(poolName)})
		first := waitAllocated(t, l, addrNS, "small-1", poolName, netip.MustParseAddr("198.51.100.156"))
		apply(t, testService{Namespace: addrNS, Name: "small-2", Annotations: pinned(poolName)})
		_, c := l.WaitServiceCondition(addrNS, "small-2", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonPoolExhausted, patience)
		if !strings.Contains(c.Message, `"`+poolName+`"`) {
			t.Errorf("PoolExhausted condition %q does not name the pool", c.Message)
		}
		l.WaitServiceEvent(addrNS, "small-2", corev1.EventTypeWarning, controller.ReasonPoolExhausted, patience, `"`+poolName+`"`)
		if got := config.LoadBalancerAddresses(getService(t, l, addrNS, "small-2")); len(got) != 0 {
			t.Fatalf("small-2 got %v from an exhausted pool", got)
		}
		waitPoolCounts(t, l, poolName, v1alpha1.AddressCounts{Total: "1", Used: "1", Free: "0"})

		// The pool grows: the waiting Service gets the new address, the other
		// stays where it is, untouched.
		pool(t, poolName, "  autoAssign: false\n", "198.51.100.156/31")
		waitAllocated(t, l, addrNS, "small-2", poolName, netip.MustParseAddr("198.51.100.157"))
		l.WaitServiceEvent(addrNS, "small-2", corev1.EventTypeNormal, controller.ReasonAllocated, patience, "198.51.100.157")
		waitPoolCounts(t, l, poolName, v1alpha1.AddressCounts{Total: "2", Used: "2", Free: "0"})
		assertUnchanged(t, l, addrNS, map[string]serviceState{"small-1": first}, "after the pool grew")
		l.Backend(addrNS, "small-2", productlab.WebPort, web...)
		reach(t, l, netip.MustParseAddr("198.51.100.157"), 80)
	})

	t.Run("pool deletion waits until the pool is free", func(t *testing.T) {
		l := l.For(t)
		const poolName = "addresses-doomed"
		pool(t, poolName, "  autoAssign: false\n", "198.51.100.158/31")
		apply(t, testService{Namespace: addrNS, Name: "doomed-holder", Annotations: pinned(poolName)})
		l.Backend(addrNS, "doomed-holder", productlab.WebPort, web...)
		held := waitAllocated(t, l, addrNS, "doomed-holder", poolName)
		reach(t, l, held.ingress[0], 80)

		if out, err := l.Kubectl("delete", "ippool", poolName, "--wait=false"); err != nil {
			t.Fatalf("delete ippool: %v\n%s", err, out)
		}
		p := l.WaitPoolCondition(poolName, v1alpha1.ConditionDeletionBlocked, metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse, patience)
		if msg := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionDeletionBlocked).Message; !strings.Contains(msg, addrNS+"/doomed-holder") {
			t.Errorf("DeletionBlocked message %q does not name the Service holding the pool", msg)
		}
		if p.DeletionTimestamp == nil || !slices.Contains(p.Finalizers, controller.PoolFinalizer) {
			t.Errorf("pool being deleted: deletionTimestamp %v, finalizers %v; want %s", p.DeletionTimestamp, p.Finalizers, controller.PoolFinalizer)
		}
		// A pool being deleted hands out nothing new; its Service keeps its
		// address and stays reachable.
		apply(t, testService{Namespace: addrNS, Name: "doomed-late", Annotations: pinned(poolName)})
		l.WaitServiceCondition(addrNS, "doomed-late", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonPoolNotAllowed, patience)
		assertUnchanged(t, l, addrNS, map[string]serviceState{"doomed-holder": held}, "while its pool is deleted")
		reach(t, l, held.ingress[0], 80)

		// The last holder gone, the pool goes.
		if out, err := l.Kubectl("delete", "-n", addrNS, "service/doomed-holder"); err != nil {
			t.Fatalf("delete service: %v\n%s", err, out)
		}
		l.WaitPoolGone(poolName, patience)
		l.WaitServiceCondition(addrNS, "doomed-late", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonPoolNotFound, patience)
	})
}

// waitPoolCounts waits until the IPPool's IPv4 counts are want.
func waitPoolCounts(t *testing.T, l *productlab.Lab, name string, want v1alpha1.AddressCounts) {
	t.Helper()
	productlab.WaitFor(t, patience, func(ctx context.Context) error {
		p, err := l.Herald.HeraldV1alpha1().IPPools().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.IPv4 == nil || *p.Status.IPv4 != want {
			return fmt.Errorf("ippool %s: ipv4 counts %+v, want %+v", name, p.Status.IPv4, want)
		}
		return nil
	})
}
