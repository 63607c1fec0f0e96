package deploy

import (
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/e2e/cloudprovider/ccmlab"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// ccmService is the Service the cloud-controller-manager test creates.
const ccmService = "ccm-allocated"

// testCloudControllerManagerUnderRBAC runs the herald-cloud-controller-manager binary with
// the flags deploy/overlays/cloud-controller-manager gives it and a kubeconfig that
// impersonates its service account, so the apiserver applies exactly the RBAC the overlay
// grants (applied by testApply), to the manager, to Herald's provider inside it and to its
// HTTPS endpoint's delegated authentication and authorization. It checks that the manager
// takes its Lease, serves /healthz to anyone and /metrics only to an allowed client, gives a
// Service without a class an address of a pool, recorded first in the address's
// AddressClaim, and lets the Service go when it is deleted (the upstream controller removes
// its finalizer), with the claim. Any permission the overlay lacks shows
// up as a manager that never gets there.
func testCloudControllerManagerUnderRBAC(t *testing.T, cp *controlplane.ControlPlane) {
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	adminHerald := versioned.NewForConfigOrDie(cp.Config())
	objs := render(t, cp.Binaries.Kubectl, filepath.Join(deployDir(t), "overlays/cloud-controller-manager"))
	var deployArgs []string
	for _, a := range args(t, find(t, objs, "Deployment", ccmWorkload)) {
		deployArgs = append(deployArgs, strings.ReplaceAll(a, "$(POD_NAMESPACE)", namespace))
	}
	// The RBAC cases left a Lease of that name held by someone else; start afresh.
	if err := admin.CoordinationV1().Leases(namespace).Delete(ctx, ccmLease, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, cp.ImpersonateServiceAccount(namespace, ccmAccount)); err != nil {
		t.Fatal(err)
	}
	m := ccmlab.Start(t, ccmlab.Options{
		Kubeconfig:  kubeconfig,
		CloudConfig: find(t, objs, "ConfigMap", "herald-cloud-config").Object["data"].(map[string]any)["cloud-config.yaml"].(string),
		Args:        deployArgs,
	})

	const timeout = time.Minute
	running := func() error {
		select {
		case <-m.Done():
			return fmt.Errorf("the manager exited: %v", m.Err())
		default:
			return nil
		}
	}
	if !t.Run("takes its Lease", func(t *testing.T) {
		eventually(t, timeout, func() error {
			if err := running(); err != nil {
				return err
			}
			lease, err := admin.CoordinationV1().Leases(namespace).Get(ctx, ccmLease, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h == "" {
				return fmt.Errorf("lease holder is %q", h)
			}
			return nil
		})
	}) {
		t.Fatal("the manager never led under its RBAC")
	}
	t.Run("serves /healthz to anyone, /metrics to allowed clients only", func(t *testing.T) {
		eventually(t, timeout, func() error {
			code, body, err := m.Get(ctx, "/healthz", "")
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("/healthz: %d %q %v", code, body, err)
			}
			if code, _, err = m.Get(ctx, "/metrics", ""); err != nil || code != http.StatusForbidden {
				return fmt.Errorf("/metrics without credentials: %d %v, want 403", code, err)
			}
			// The admin's token, checked by a TokenReview and a SubjectAccessReview that
			// the manager makes as its service account.
			if code, body, err = m.Get(ctx, "/metrics", cp.Config().BearerToken); err != nil || code != http.StatusOK {
				return fmt.Errorf("/metrics as the admin: %d %v %.200s", code, err, body)
			}
			return nil
		})
	})
	var addr netip.Addr
	t.Run("gives a Service without a class a pool address, recorded in its AddressClaim", func(t *testing.T) {
		if _, err := admin.CoreV1().Services(appNamespace).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ccmService},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{"app": ccmService},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, timeout, func() error {
			if err := running(); err != nil {
				return err
			}
			svc, err := admin.CoreV1().Services(appNamespace).Get(ctx, ccmService, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ing := svc.Status.LoadBalancer.Ingress
			if len(ing) != 1 {
				return fmt.Errorf("status.loadBalancer.ingress is %v, want one address of %s", ing, fixturePoolPrefix)
			}
			a, err := netip.ParseAddr(ing[0].IP)
			if err != nil || !fixturePoolPrefix.Contains(a) {
				return fmt.Errorf("status.loadBalancer.ingress is %v, want one address of %s", ing, fixturePoolPrefix)
			}
			if !slices.Contains(svc.Finalizers, "service.kubernetes.io/load-balancer-cleanup") {
				return fmt.Errorf("finalizers %v lack the upstream controller's", svc.Finalizers)
			}
			claim, err := adminHerald.HeraldV1alpha1().AddressClaims().Get(ctx, config.ClaimName(a), metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("the AddressClaim of %s: %w", a, err)
			}
			if h := claim.Spec.Holders; len(h) != 1 || h[0].UID != string(svc.UID) || claim.Spec.Pool != fixturePool {
				return fmt.Errorf("the AddressClaim of %s is %+v, want the Service alone, from %s", a, claim.Spec, fixturePool)
			}
			addr = a
			return nil
		})
	})
	t.Run("lets a deleted Service go", func(t *testing.T) {
		if err := admin.CoreV1().Services(appNamespace).Delete(ctx, ccmService, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, timeout, func() error {
			_, err := admin.CoreV1().Services(appNamespace).Get(ctx, ccmService, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("the Service is still there (%v): the manager did not remove its finalizer", err)
			}
			if !addr.IsValid() {
				return nil
			}
			if _, err = adminHerald.HeraldV1alpha1().AddressClaims().Get(ctx, config.ClaimName(addr), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("the AddressClaim of %s is still there (%v)", addr, err)
			}
			return nil
		})
	})
	m.Stop(t)
}
