package cloudprovider

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	cloud "k8s.io/cloud-provider"
	servicecontroller "k8s.io/cloud-provider/controllers/service"
	"k8s.io/component-base/featuregate"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/controller/cloudprovider"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/ipam"
)

const (
	appNamespace = "apps"
	// cleanupFinalizer is the upstream service controller's finalizer.
	cleanupFinalizer = "service.kubernetes.io/load-balancer-cleanup"
	// ownClass is the loadBalancerClass herald-controller serves in the last
	// subtest, next to the upstream controller.
	ownClass = "herald.dev/own"
	// waitTimeout bounds every wait; generous because the machine is shared.
	waitTimeout = 30 * time.Second
)

var (
	firstAddr    = netip.MustParseAddr("203.0.113.10")
	grownAddr    = netip.MustParseAddr("203.0.113.11")
	reservedAddr = netip.MustParseAddr("203.0.113.20")
)

// TestUpstreamServiceController runs the upstream service controller, as a
// cloud-controller-manager does, with Herald's provider taken from the
// cloud-provider registry and configured by a cloud-config that names a
// kubeconfig. A Service gets an address in its status, recorded in the
// address's AddressClaim, and releases both on deletion to a Service waiting
// in a one-address pool; a waiting Service is served when the pool grows; a
// restart of the provider imports the claims and moves nothing; and a
// Service with a loadBalancerClass, which the upstream controller skips, is
// served by herald-controller.
func TestUpstreamServiceController(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{})
	cfg := cp.Config()
	cfg.WarningHandler = rest.NoWarnings{}
	e := &env{kube: kubernetes.NewForConfigOrDie(cfg), herald: versioned.NewForConfigOrDie(cfg), cp: cp}
	e.namespace(t, appNamespace)
	e.namespace(t, "herald-system")
	e.createPool(t, "one", []string{firstAddr.String() + "/32"}, true)
	e.createPool(t, "reserved", []string{reservedAddr.String() + "/32"}, false)

	cloudprovider.Register()
	run := e.startUpstream(t)
	t.Cleanup(func() { run.stop(t) })

	t.Run("a Service gets the pool's address", func(t *testing.T) {
		e.createService(t, "first")
		svc := e.waitIngress(t, "first", firstAddr)
		if !slices.Contains(svc.Finalizers, cleanupFinalizer) {
			t.Errorf("finalizers %v lack the upstream controller's %s", svc.Finalizers, cleanupFinalizer)
		}
		if got := held(run.provider, "first"); !slices.Equal(got, []netip.Addr{firstAddr}) {
			t.Errorf("the provider's core holds %v for first, want %s", got, firstAddr)
		}
		// The claim was made before the provider returned the status.
		e.checkClaim(t, firstAddr, "one", svc)
	})

	t.Run("a second Service waits: the pool is exhausted", func(t *testing.T) {
		e.createService(t, "second")
		e.waitEvent(t, "second", "SyncLoadBalancerFailed", controller.ReasonPoolExhausted)
		if svc := e.getService(t, "second"); len(svc.Status.LoadBalancer.Ingress) > 0 {
			t.Errorf("second got %v from an exhausted pool", svc.Status.LoadBalancer.Ingress)
		}
	})

	t.Run("deleting the first releases its address to the second", func(t *testing.T) {
		if err := e.kube.CoreV1().Services(appNamespace).Delete(t.Context(), "first", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "first is deleted (the upstream controller removed its finalizer)", func() (bool, string) {
			_, err := e.kube.CoreV1().Services(appNamespace).Get(t.Context(), "first", metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
		if got := held(run.provider, "first"); len(got) > 0 {
			t.Errorf("the provider's core still holds %v for the deleted first", got)
		}
		e.checkClaim(t, firstAddr, "one", e.waitIngress(t, "second", firstAddr))
	})

	t.Run("a waiting Service is served when its pool grows", func(t *testing.T) {
		e.createService(t, "third")
		e.waitEvent(t, "third", "SyncLoadBalancerFailed", controller.ReasonPoolExhausted)
		e.updatePool(t, "one", func(p *v1alpha1.IPPool) { p.Spec.Addresses = append(p.Spec.Addresses, grownAddr.String()+"/32") })
		e.checkClaim(t, grownAddr, "one", e.waitIngress(t, "third", grownAddr))
	})

	t.Run("a restart of the provider moves nothing: it imports the claims", func(t *testing.T) {
		before := map[string]string{}
		for _, name := range []string{"second", "third"} {
			before[name] = e.getService(t, name).ResourceVersion
		}
		claimsBefore := e.claimVersions(t)
		run.stop(t)
		run = e.startUpstream(t) // stopped by the test's cleanup
		eventually(t, "the new provider is ready", func() (bool, string) {
			err := run.provider.Ready()
			return err == nil, fmt.Sprint(err)
		})
		for name, addr := range map[string]netip.Addr{"second": firstAddr, "third": grownAddr} {
			if got := held(run.provider, name); !slices.Equal(got, []netip.Addr{addr}) {
				t.Errorf("after the restart the core holds %v for %s, want %s", got, name, addr)
			}
		}
		// A new Service finds the pool exhausted: nobody's address was free
		// to take. Once its failure is recorded, the upstream controller has
		// synced the Services it found at start.
		e.createService(t, "fourth")
		e.waitEvent(t, "fourth", "SyncLoadBalancerFailed", controller.ReasonPoolExhausted)
		for name, rv := range before {
			if now := e.getService(t, name); now.ResourceVersion != rv {
				t.Errorf("%s was rewritten after the restart: resourceVersion %s -> %s, status %+v", name, rv, now.ResourceVersion, now.Status.LoadBalancer)
			}
		}
		if diff := cmp.Diff(claimsBefore, e.claimVersions(t)); diff != "" {
			t.Errorf("the AddressClaims changed over the restart (-before +after):\n%s", diff)
		}
	})

	t.Run("a Service of a class is left to herald-controller", func(t *testing.T) {
		e.createService(t, "classed", func(s *corev1.Service) {
			s.Spec.LoadBalancerClass = ptr.To(ownClass)
			s.Annotations = map[string]string{config.AnnotationPool: "reserved"}
		})
		// A class-less Service created after it: once the upstream
		// controller reports on it, it has seen the classed one too.
		e.createService(t, "marker")
		e.waitEvent(t, "marker", "SyncLoadBalancerFailed", controller.ReasonPoolExhausted)
		svc := e.getService(t, "classed")
		if len(svc.Status.LoadBalancer.Ingress) > 0 || slices.Contains(svc.Finalizers, cleanupFinalizer) {
			t.Errorf("the upstream controller handled a Service of a class: status %+v, finalizers %v", svc.Status.LoadBalancer, svc.Finalizers)
		}

		c, err := controller.New(controller.Config{
			RESTConfig: cfg, Namespace: "herald-system", LoadBalancerClass: ownClass, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		svc = e.waitIngress(t, "classed", reservedAddr)
		cond := meta.FindStatusCondition(svc.Status.Conditions, config.ConditionAddressAllocated)
		if cond == nil || cond.Reason != controller.ReasonAllocated {
			t.Errorf("herald-controller's condition on classed: %+v", cond)
		}
		if got := held(run.provider, "classed"); len(got) > 0 {
			t.Errorf("the provider's core holds %v for a Service of a class", got)
		}
		e.checkClaim(t, reservedAddr, "reserved", svc)
	})
}

// checkClaim checks that the AddressClaim of addr records pool and exactly
// svc, as a load-balancer holder.
func (e *env) checkClaim(t *testing.T, addr netip.Addr, pool string, svc *corev1.Service) {
	t.Helper()
	claim, err := e.herald.HeraldV1alpha1().AddressClaims().Get(t.Context(), config.ClaimName(addr), metav1.GetOptions{})
	if err != nil {
		t.Errorf("the AddressClaim of %s: %v", addr, err)
		return
	}
	want := v1alpha1.AddressClaimSpec{Address: addr.String(), Family: "IPv4", Pool: pool, HolderCount: 1,
		Holders: []v1alpha1.AddressHolder{{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: v1alpha1.HolderLoadBalancer}}}
	if diff := cmp.Diff(want, claim.Spec, cmpopts.IgnoreFields(v1alpha1.AddressHolder{}, "Ports", "SharingKey", "BackendKey")); diff != "" {
		t.Errorf("the AddressClaim of %s (-want +got):\n%s", addr, diff)
	}
}

// claimVersions returns the resourceVersion of every AddressClaim, by name.
func (e *env) claimVersions(t *testing.T) map[string]string {
	t.Helper()
	list, err := e.herald.HeraldV1alpha1().AddressClaims().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list.Items {
		out[c.Name] = c.ResourceVersion
	}
	return out
}

// TestMain routes klog, which the upstream controller and client-go log
// through, into one slog logger on stderr: errors only, everything with
// HERALD_TEST_DEBUG set. It is set once for the process, since klog's logger
// cannot be swapped safely while goroutines of a test that ended still log.
func TestMain(m *testing.M) {
	level := slog.LevelError
	if os.Getenv("HERALD_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	os.Exit(m.Run())
}

// upstream is the provider and the upstream service controller, running.
type upstream struct {
	provider *cloudprovider.Provider
	factory  informers.SharedInformerFactory
	stopCh   chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
}

// startUpstream gets Herald's provider from the cloud-provider registry with
// a cloud-config naming the admin kubeconfig, initializes it, and runs the
// upstream service controller with it, as a cloud-controller-manager with
// --cloud-provider=herald would, until stop is called.
func (e *env) startUpstream(t *testing.T) *upstream {
	t.Helper()
	cloudConfig := fmt.Sprintf("kubeconfig: %s\nwaitingRetry: 1s\n", e.cp.Kubeconfig)
	iface, err := cloud.GetCloudProvider(cloudprovider.ProviderName, strings.NewReader(cloudConfig))
	if err != nil {
		t.Fatalf("GetCloudProvider(%q): %v", cloudprovider.ProviderName, err)
	}
	p, ok := iface.(*cloudprovider.Provider)
	if !ok {
		t.Fatalf("the registry returned %T for %q", iface, cloudprovider.ProviderName)
	}
	factory := informers.NewSharedInformerFactory(e.kube, 0)
	sc, err := servicecontroller.New(p, e.kube, factory.Core().V1().Services(), factory.Core().V1().Nodes(),
		"herald-e2e", featuregate.NewFeatureGate())
	if err != nil {
		t.Fatalf("service controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &upstream{provider: p, factory: factory, stopCh: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	p.Initialize(nil, u.stopCh)
	factory.Start(ctx.Done())
	go func() {
		defer close(u.done)
		sc.Run(ctx, 2, controllersmetrics.NewControllerManagerMetrics("herald-e2e"))
	}()
	return u
}

// stop stops the upstream controller and the provider; stopping twice is
// harmless. It may run in a cleanup, so it never calls t.Fatal.
func (u *upstream) stop(t *testing.T) {
	t.Helper()
	select {
	case <-u.stopCh:
		return
	default:
	}
	u.cancel()
	select {
	case <-u.done:
	case <-time.After(waitTimeout):
		t.Error("the upstream service controller did not stop")
	}
	close(u.stopCh)
	u.factory.Shutdown()
}

// held returns what the provider's core holds for a Service in appNamespace.
func held(p *cloudprovider.Provider, name string) []netip.Addr {
	res, _ := p.Core().Held(appNamespace, name, ipam.LoadBalancer)
	return res.Addresses
}

// env is the control plane and its clients.
type env struct {
	cp     *controlplane.ControlPlane
	kube   kubernetes.Interface
	herald versioned.Interface
}

func (e *env) namespace(t *testing.T, name string) {
	t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func (e *env) createPool(t *testing.T, name string, addresses []string, autoAssign bool) {
	t.Helper()
	_, err := e.herald.HeraldV1alpha1().IPPools().Create(t.Context(), &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.IPPoolSpec{Addresses: addresses, AutoAssign: ptr.To(autoAssign)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ippool %s: %v", name, err)
	}
}

func (e *env) updatePool(t *testing.T, name string, edit func(*v1alpha1.IPPool)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := e.herald.HeraldV1alpha1().IPPools().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		edit(p)
		_, err = e.herald.HeraldV1alpha1().IPPools().Update(ctx, p, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("update ippool %s: %v", name, err)
	}
}

// createService creates a LoadBalancer Service without node ports in
// appNamespace.
func (e *env) createService(t *testing.T, name string, opts ...func(*corev1.Service)) {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name},
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
	if _, err := e.kube.CoreV1().Services(appNamespace).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

func (e *env) getService(t *testing.T, name string) *corev1.Service {
	t.Helper()
	s, err := e.kube.CoreV1().Services(appNamespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service %s: %v", name, err)
	}
	return s
}

// waitIngress waits until the Service's status lists exactly addr.
func (e *env) waitIngress(t *testing.T, name string, addr netip.Addr) *corev1.Service {
	t.Helper()
	var svc *corev1.Service
	eventually(t, fmt.Sprintf("service %s has ingress %s", name, addr), func() (bool, string) {
		s, err := e.kube.CoreV1().Services(appNamespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		svc = s
		ing := s.Status.LoadBalancer.Ingress
		return len(ing) == 1 && ing[0].IP == addr.String(), fmt.Sprintf("%+v", ing)
	})
	return svc
}

// waitEvent waits for an Event on the Service with reason and a message
// containing text.
func (e *env) waitEvent(t *testing.T, name, reason, text string) {
	t.Helper()
	sel := fields.AndSelectors(fields.OneTermEqualSelector("involvedObject.name", name),
		fields.OneTermEqualSelector("reason", reason)).String()
	eventually(t, fmt.Sprintf("event %s on %s mentioning %q", reason, name, text), func() (bool, string) {
		evs, err := e.kube.CoreV1().Events(appNamespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, err.Error()
		}
		var msgs []string
		for _, ev := range evs.Items {
			if strings.Contains(ev.Message, text) {
				return true, ev.Message
			}
			msgs = append(msgs, ev.Message)
		}
		return false, fmt.Sprintf("%q", msgs)
	})
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

// testLogger sends logs to the test log: debug with HERALD_TEST_DEBUG set,
// warnings otherwise.
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
