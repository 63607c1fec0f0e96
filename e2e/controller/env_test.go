package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// waitTimeout bounds every wait for the controller to act. It is generous
// because the machine is shared; the tests assert outcomes, not timings.
const waitTimeout = 30 * time.Second

// env is one control plane with clients, shared by a test's subtests.
type env struct {
	cp     *controlplane.ControlPlane
	kube   kubernetes.Interface
	herald versioned.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, controlplane.Options{})
}

func newEnvWith(t *testing.T, opts controlplane.Options) *env {
	t.Helper()
	cp := controlplane.StartForTest(t, opts)
	cfg := cp.Config()
	cfg.WarningHandler = rest.NoWarnings{} // spec.externalIPs is deprecated, and the tests know
	e := &env{cp: cp, kube: kubernetes.NewForConfigOrDie(cfg), herald: versioned.NewForConfigOrDie(cfg)}
	e.namespace(t, "herald-system", nil)
	return e
}

// namespace creates a namespace (once) with labels.
func (e *env) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// running is a controller run in-process by a test.
type running struct {
	ctrl   *controller.Controller
	cancel context.CancelFunc
	done   chan error
}

// stop stops the controller and waits for Run to return.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup, which waits for Run's result too
		return err
	case <-time.After(waitTimeout):
		t.Fatal("controller did not stop")
		return nil
	}
}

// startController runs controller.Run in a goroutine until the test ends
// (or stop is called), and waits until it is ready.
func (e *env) startController(t *testing.T, edit func(*controller.Config)) *running {
	t.Helper()
	cfg := controller.Config{
		RESTConfig: e.cp.Config(),
		Namespace:  "herald-system",
		Logger:     testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := controller.New(cfg)
	if err != nil {
		t.Fatalf("controller.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{ctrl: c, cancel: cancel, done: make(chan error, 1)}
	var once sync.Once
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { once.Do(func() { cancel(); <-r.done }) })
	if !cfg.LeaderElection.Enabled {
		eventually(t, "controller ready", func() (bool, string) {
			err := c.Ready()
			return err == nil && c.Leading(), fmt.Sprint(err)
		})
	}
	return r
}

// testLogger sends the controller's logs to the test log at debug level
// when HERALD_TEST_DEBUG is set, and warnings only otherwise.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("HERALD_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls cond until it reports true, and fails t with the last
// description it gave otherwise.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		ok, desc := cond()
		last = desc
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached within %s; last: %s", what, waitTimeout, last)
	}
}

// --- IPPools ---

type poolOpt func(*v1alpha1.IPPool)

func noAutoAssign(p *v1alpha1.IPPool) { p.Spec.AutoAssign = ptr.To(false) }

func forNamespaces(ns ...string) poolOpt {
	return func(p *v1alpha1.IPPool) { p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{Namespaces: ns} }
}

func externalIPsFor(ns ...string) poolOpt {
	return func(p *v1alpha1.IPPool) { p.Spec.AllowExternalIPs = &v1alpha1.ExternalIPAllowance{Namespaces: ns} }
}

func (e *env) createPool(t *testing.T, name string, addresses []string, opts ...poolOpt) *v1alpha1.IPPool {
	t.Helper()
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{Addresses: addresses}}
	for _, o := range opts {
		o(p)
	}
	got, err := e.herald.HeraldV1alpha1().IPPools().Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ippool %s: %v", name, err)
	}
	return got
}

func (e *env) updatePool(t *testing.T, name string, edit func(*v1alpha1.IPPool)) {
	t.Helper()
	err := retryConflict(func() error {
		p, err := e.herald.HeraldV1alpha1().IPPools().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(p)
		_, err = e.herald.HeraldV1alpha1().IPPools().Update(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update ippool %s: %v", name, err)
	}
}

func (e *env) getPool(t *testing.T, name string) *v1alpha1.IPPool {
	t.Helper()
	p, err := e.herald.HeraldV1alpha1().IPPools().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ippool %s: %v", name, err)
	}
	return p
}

// waitPoolCondition waits until the pool's condition has status and reason.
func (e *env) waitPoolCondition(t *testing.T, name, condType string, status metav1.ConditionStatus, reason string) *v1alpha1.IPPool {
	t.Helper()
	var pool *v1alpha1.IPPool
	eventually(t, fmt.Sprintf("ippool %s condition %s=%s/%s", name, condType, status, reason), func() (bool, string) {
		p, err := e.herald.HeraldV1alpha1().IPPools().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pool = p
		c := meta.FindStatusCondition(p.Status.Conditions, condType)
		if c == nil {
			return false, fmt.Sprintf("no condition; status %+v", p.Status)
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	})
	return pool
}

// --- Services ---

type svcOpt func(*corev1.Service)

func annotate(kv ...string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func clusterIP(s *corev1.Service) {
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.AllocateLoadBalancerNodePorts = nil
}

func withClass(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }

func withLBIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } }

func withExternalIPs(ips ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.ExternalIPs = ips }
}

func withPorts(ports ...int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Protocol: corev1.ProtocolTCP, Port: p})
		}
	}
}

func dualStack(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &policy
		s.Spec.IPFamilies = fams
	}
}

// newService returns a LoadBalancer Service without node ports.
func newService(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (e *env) createService(t *testing.T, ns, name string, opts ...svcOpt) *corev1.Service {
	t.Helper()
	s, err := e.kube.CoreV1().Services(ns).Create(context.Background(), newService(ns, name, opts...), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
	return s
}

func (e *env) updateService(t *testing.T, ns, name string, edit func(*corev1.Service)) {
	t.Helper()
	err := retryConflict(func() error {
		s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(s)
		_, err = e.kube.CoreV1().Services(ns).Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update service %s/%s: %v", ns, name, err)
	}
}

func (e *env) deleteService(t *testing.T, ns, name string) {
	t.Helper()
	if err := e.kube.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service %s/%s: %v", ns, name, err)
	}
}

func (e *env) getService(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service %s/%s: %v", ns, name, err)
	}
	return s
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, ing := range s.Status.LoadBalancer.Ingress {
		out = append(out, ing.IP)
	}
	return out
}

// waitIngress waits until the Service's ingress is exactly want (nil: empty).
func (e *env) waitIngress(t *testing.T, ns, name string, want ...string) *corev1.Service {
	t.Helper()
	var svc *corev1.Service
	eventually(t, fmt.Sprintf("service %s/%s ingress %v", ns, name, want), func() (bool, string) {
		s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		svc = s
		got := ingressIPs(s)
		return slices.Equal(got, want), fmt.Sprintf("ingress %v, conditions %s", got, describeConditions(s.Status.Conditions))
	})
	return svc
}

// waitAnyIngress waits until the Service has n ingress addresses and returns them.
func (e *env) waitAnyIngress(t *testing.T, ns, name string, n int) []string {
	t.Helper()
	var got []string
	eventually(t, fmt.Sprintf("service %s/%s has %d ingress addresses", ns, name, n), func() (bool, string) {
		s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got = ingressIPs(s)
		return len(got) == n, fmt.Sprintf("ingress %v, conditions %s", got, describeConditions(s.Status.Conditions))
	})
	return got
}

// waitCondition waits until the Service's condition has status and reason,
// and returns it.
func (e *env) waitCondition(t *testing.T, ns, name, condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var cond metav1.Condition
	eventually(t, fmt.Sprintf("service %s/%s condition %s=%s/%s", ns, name, condType, status, reason), func() (bool, string) {
		s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(s.Status.Conditions, condType)
		if c == nil {
			return false, "no condition: " + describeConditions(s.Status.Conditions)
		}
		cond = *c
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	})
	return cond
}

func describeConditions(cs []metav1.Condition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s/%s (%s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// serviceEvents lists the Events about a Service, oldest first.
func (e *env) serviceEvents(t *testing.T, ns, name string) []corev1.Event {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": "Service", "involvedObject.name": name}.AsSelector().String()
	list, err := e.kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Event) int { return a.FirstTimestamp.Compare(b.FirstTimestamp.Time) })
	return list.Items
}

// waitEvent waits for an Event of type and reason about the Service whose
// message contains every one of contains, and returns it.
func (e *env) waitEvent(t *testing.T, ns, name, eventType, reason string, contains ...string) corev1.Event {
	t.Helper()
	var found corev1.Event
	eventually(t, fmt.Sprintf("%s event %s on %s/%s containing %q", eventType, reason, ns, name, contains), func() (bool, string) {
		evs := e.serviceEvents(t, ns, name)
		var seen []string
		for _, ev := range evs {
			seen = append(seen, ev.Type+"/"+ev.Reason+": "+ev.Message)
			if ev.Type != eventType || ev.Reason != reason {
				continue
			}
			ok := true
			for _, c := range contains {
				ok = ok && strings.Contains(ev.Message, c)
			}
			if ok {
				found = ev
				return true, ""
			}
		}
		return false, fmt.Sprintf("events %q", seen)
	})
	return found
}

func retryConflict(fn func() error) error {
	var err error
	for range 20 {
		if err = fn(); !apierrors.IsConflict(err) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

var errStop = errors.New("stop")
