package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// Objects of the controller test.
const (
	lbService       = "allocated"
	extService      = "external"
	extPool         = "external-pool"
	controllerIdent = "deploy-test-controller"
	// memberlistSecret is the name deploy/controller/deployment.yaml passes
	// as --memberlist-secret-name.
	memberlistSecret = "herald-memberlist"
)

// The pools' addresses (fixturePool is 203.0.113.0/28).
var (
	fixturePoolPrefix = netip.MustParsePrefix("203.0.113.0/28")
	extPoolPrefix     = netip.MustParsePrefix("203.0.113.16/29")
)

// lockedBuffer collects the controller's log for a failure message.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testControllerUnderRBAC runs the real controller in this process with the identity of
// its service account (impersonated, so the apiserver applies exactly the RBAC that
// deploy/ grants), with leader election as the Deployment configures it, and checks that
// it does its job: it takes the Lease, allocates a load-balancer address and writes it
// into the Service's status, allocates an external IP into spec.externalIPs, protects the
// pool with its finalizer, counts the pool's addresses in its status, and records events.
// Any permission the manifests lack shows up here as a controller that never gets there.
func testControllerUnderRBAC(t *testing.T, cp *controlplane.ControlPlane) {
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	adminHerald := versioned.NewForConfigOrDie(cp.Config())

	// The RBAC cases left a Lease of that name held by someone else; start afresh.
	if err := admin.CoordinationV1().Leases(namespace).Delete(ctx, controllerLease, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	// They also left a Ready SpeakerStatus: with it, a missing memberlist
	// Secret is not a first install, and the controller would report it
	// instead of creating it (TestMemberlistSecret in e2e/controller).
	if err := adminHerald.HeraldV1alpha1().SpeakerStatuses().Delete(ctx, speakerNode, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := adminHerald.HeraldV1alpha1().IPPools().Create(ctx, &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: extPool},
		Spec: v1alpha1.IPPoolSpec{
			Addresses:        []string{extPoolPrefix.String()},
			AutoAssign:       ptr.To(false),
			AllowExternalIPs: &v1alpha1.ExternalIPAllowance{Namespaces: []string{appNamespace}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := cp.ImpersonateServiceAccount(namespace, controllerAccount)
	cfg.WarningHandler = rest.NoWarnings{}
	var logs lockedBuffer
	c, err := controller.New(controller.Config{
		RESTConfig:           cfg,
		Namespace:            namespace,
		MemberlistSecretName: memberlistSecret,
		LeaderElection: controller.LeaderElection{
			Enabled:        true,
			LeaseName:      controllerLease,
			LeaseNamespace: namespace,
			Identity:       controllerIdent,
		},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the controller did not stop within 30s of its context's end")
		}
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
	})

	services := admin.CoreV1().Services(appNamespace)
	if _, err := services.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: lbService},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": lbService},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := services.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        extService,
			Annotations: map[string]string{"herald.dev/allocate-external-ip": extPool},
		},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": extService},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	const timeout = time.Minute
	// Ready means the informer caches synced (every list and watch was allowed) and, as
	// leader, the existing allocations were imported. Nothing below can happen before.
	if !t.Run("syncs its caches and becomes ready", func(t *testing.T) { eventually(t, timeout, c.Ready) }) {
		t.Fatal("the controller never became ready under its RBAC: a list or watch it makes is " +
			"forbidden (client-go's reflector logs which one on standard error)")
	}
	t.Run("takes the Lease", func(t *testing.T) {
		eventually(t, timeout, func() error {
			lease, err := admin.CoordinationV1().Leases(namespace).Get(ctx, controllerLease, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != controllerIdent {
				return fmt.Errorf("lease holder is %q, want %q", h, controllerIdent)
			}
			return nil
		})
	})
	t.Run("creates the speakers' memberlist Secret", func(t *testing.T) {
		eventually(t, timeout, func() error {
			sec, err := admin.CoreV1().Secrets(namespace).Get(ctx, memberlistSecret, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(sec.Data[controller.MemberlistSecretKey]) == 0 {
				return fmt.Errorf("secret %s has no key %q: %v", memberlistSecret, controller.MemberlistSecretKey, sec.Data)
			}
			return nil
		})
	})
	t.Run("writes a pool address into the Service's status", func(t *testing.T) {
		eventually(t, timeout, func() error {
			svc, err := services.Get(ctx, lbService, metav1.GetOptions{})
			if err != nil {
				return err
			}
			var got []netip.Addr
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if a, err := netip.ParseAddr(in.IP); err == nil {
					got = append(got, a)
				}
			}
			if len(got) != 1 || !fixturePoolPrefix.Contains(got[0]) {
				return fmt.Errorf("status.loadBalancer.ingress is %v, want one address of %s", svc.Status.LoadBalancer.Ingress, fixturePoolPrefix)
			}
			return nil
		})
	})
	t.Run("allocates an external IP into spec.externalIPs", func(t *testing.T) {
		eventually(t, timeout, func() error {
			svc, err := services.Get(ctx, extService, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(svc.Spec.ExternalIPs) != 1 {
				return fmt.Errorf("spec.externalIPs is %v, want one address of %s", svc.Spec.ExternalIPs, extPoolPrefix)
			}
			if a, err := netip.ParseAddr(svc.Spec.ExternalIPs[0]); err != nil || !extPoolPrefix.Contains(a) {
				return fmt.Errorf("spec.externalIPs is %v, want one address of %s", svc.Spec.ExternalIPs, extPoolPrefix)
			}
			return nil
		})
	})
	t.Run("protects the pool and counts its addresses", func(t *testing.T) {
		eventually(t, timeout, func() error {
			pool, err := adminHerald.HeraldV1alpha1().IPPools().Get(ctx, fixturePool, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !slices.Contains(pool.Finalizers, controller.PoolFinalizer) {
				return fmt.Errorf("finalizers are %v, want %s", pool.Finalizers, controller.PoolFinalizer)
			}
			if pool.Status.IPv4 == nil || pool.Status.IPv4.Total != "16" || pool.Status.IPv4.Used == "0" {
				return fmt.Errorf("status.ipv4 is %+v, want 16 addresses with some used", pool.Status.IPv4)
			}
			return nil
		})
	})
	t.Run("records an event on the Service", func(t *testing.T) {
		eventually(t, timeout, func() error {
			events, err := admin.CoreV1().Events(appNamespace).List(ctx, metav1.ListOptions{
				FieldSelector: "involvedObject.name=" + lbService + ",reason=" + controller.ReasonAllocated,
			})
			if err != nil {
				return err
			}
			if len(events.Items) == 0 {
				return errors.New("no Allocated event on the Service yet")
			}
			return nil
		})
	})
}

// eventually calls check until it returns nil, failing t with the last error after timeout.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = check()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("not within %s: %v", timeout, last)
	}
}
