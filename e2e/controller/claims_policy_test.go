package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// policyMessage is what the ValidatingAdmissionPolicy of
// deploy/controller/claims-policy.yaml says when it refuses a write.
const policyMessage = "only Herald's allocators write AddressClaims"

// TestClaimsAdmissionPolicy applies deploy/controller/rbac.yaml and
// claims-policy.yaml as shipped, then writes AddressClaims with real
// credentials: the admin user (system:masters), a user bound to the
// cluster-admin ClusterRole and a speaker service account that RBAC allows
// to write claims are all refused by the policy, on create, update and
// delete; the controller's and the cloud-controller-manager's service
// accounts (tokens from the TokenRequest API, as a pod gets them) are
// allowed. Finally the herald-controller binary runs with the controller's
// service-account token under that policy and RBAC, and allocates and
// releases an address, its claim with it.
func TestClaimsAdmissionPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rbac.yaml", "claims-policy.yaml"} {
		e.kubectl(t, "apply", "-f", filepath.Join(root, "deploy", "controller", f))
	}

	controllerCfg, err := e.cp.ServiceAccountConfig(ctx, "herald-system", "herald-controller")
	if err != nil {
		t.Fatal(err)
	}
	ccmCfg, err := e.cp.ServiceAccountConfig(ctx, "herald-system", "herald-cloud-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	speakerCfg, err := e.cp.ServiceAccountConfig(ctx, "herald-system", "herald-speaker")
	if err != nil {
		t.Fatal(err)
	}
	aliceCfg, err := e.cp.UserConfig("alice")
	if err != nil {
		t.Fatal(err)
	}
	// RBAC lets alice do anything, and the cloud-controller-manager and the
	// speaker write claims, so that only the policy can refuse them.
	e.bind(t, "alice-cluster-admin", "cluster-admin", rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: "User", Name: "alice"})
	e.claimWriterRole(t)
	e.bind(t, "ccm-claims", "test-claim-writer", rbacv1.Subject{Kind: "ServiceAccount", Namespace: "herald-system", Name: "herald-cloud-controller-manager"})
	e.bind(t, "speaker-claims", "test-claim-writer", rbacv1.Subject{Kind: "ServiceAccount", Namespace: "herald-system", Name: "herald-speaker"})

	admin := e.herald.HeraldV1alpha1().AddressClaims()
	owner := versioned.NewForConfigOrDie(controllerCfg).HeraldV1alpha1().AddressClaims()
	// The apiserver loads a new policy a moment after it is created.
	eventually(t, "the policy refuses the admin", func() (bool, string) {
		_, err := admin.Create(ctx, testClaim("198.51.100.99"), metav1.CreateOptions{})
		if err == nil {
			// The policy may load between the create and the delete and
			// refuse the admin's: the controller's identity deletes, so no
			// claim is left for the controller started below to repair.
			if err := owner.Delete(ctx, config.ClaimName(mustAddr("198.51.100.99")), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return false, "delete the claim created before the policy loaded: " + err.Error()
			}
			return false, "created"
		}
		return strings.Contains(err.Error(), policyMessage), err.Error()
	})

	writers := []struct {
		who     string
		cfg     *rest.Config
		allowed bool
	}{
		{"admin (system:masters)", e.cp.Config(), false},
		{"alice (cluster-admin)", aliceCfg, false},
		{"service account herald-speaker", speakerCfg, false},
		{"service account herald-controller", controllerCfg, true},
		{"service account herald-cloud-controller-manager", ccmCfg, true},
	}
	for i, w := range writers {
		t.Run(w.who, func(t *testing.T) {
			claims := versioned.NewForConfigOrDie(w.cfg).HeraldV1alpha1().AddressClaims()
			addr := fmt.Sprintf("198.51.100.%d", 10+i)
			name := config.ClaimName(mustAddr(addr))
			check := func(verb string, err error) {
				t.Helper()
				switch {
				case w.allowed && err != nil:
					t.Errorf("%s by %s refused: %v", verb, w.who, err)
				case !w.allowed && err == nil:
					t.Errorf("%s by %s allowed; want the policy to refuse it", verb, w.who)
				case !w.allowed && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), policyMessage)):
					t.Errorf("%s by %s: %v; want Forbidden by the policy (%q)", verb, w.who, err, policyMessage)
				}
			}
			_, err := claims.Create(ctx, testClaim(addr), metav1.CreateOptions{})
			check("create", err)
			if !w.allowed {
				// The refused writer edits and deletes a claim an allocator made.
				if _, err := owner.Create(ctx, testClaim(addr), metav1.CreateOptions{}); err != nil {
					t.Fatalf("create as herald-controller: %v", err)
				}
			}
			cl, err := claims.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			cl.Spec.Holders[0].Name = "edited"
			_, err = claims.Update(ctx, cl, metav1.UpdateOptions{})
			check("update", err)
			err = claims.Delete(ctx, name, metav1.DeleteOptions{})
			check("delete", err)
			if !w.allowed {
				if err := owner.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
					t.Errorf("delete as herald-controller: %v", err)
				}
			}
		})
	}

	t.Run("the controller works under the policy", func(t *testing.T) {
		const ns = "claims-policy"
		e.namespace(t, ns, nil)
		e.createPool(t, "policed", []string{"203.0.113.0/28"})
		r := startReplicaWith(t, controllerCfg, buildController(t), "herald-controller")
		waitLeading(t, r)
		e.createService(t, ns, "web")
		addr := e.waitAnyIngress(t, ns, "web", 1)[0]
		e.waitClaimsMatch(t)
		e.deleteService(t, ns, "web")
		eventually(t, "claim of "+addr+" deleted", func() (bool, string) {
			cl := e.getClaim(t, addr)
			return cl == nil, fmt.Sprint(cl)
		})
		if got, err := r.repairCounts(); err != nil || len(got) > 0 {
			t.Errorf("claim repairs %v (%v); want none", got, err)
		}
	})
}

// testClaim is a valid AddressClaim of addr with one holder.
func testClaim(addr string) *v1alpha1.AddressClaim {
	return &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: config.ClaimName(mustAddr(addr))},
		Spec: v1alpha1.AddressClaimSpec{Address: addr, Family: "IPv4", Pool: "lan", HolderCount: 1,
			Holders: []v1alpha1.AddressHolder{{Namespace: "shop", Name: "web", UID: "6d1f1f9e-3d1c-4b8e-9a43-2f1c2c1b0a01", As: v1alpha1.HolderLoadBalancer}}},
	}
}

// kubectl runs the control plane's kubectl as the admin and fails on error.
func (e *env) kubectl(t *testing.T, args ...string) {
	t.Helper()
	out, err := e.cp.Kubectl(context.Background(), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// bind makes a ClusterRoleBinding of role to subject.
func (e *env) bind(t *testing.T, name, role string, subject rbacv1.Subject) {
	t.Helper()
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: []rbacv1.Subject{subject},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}}
	if _, err := e.kube.RbacV1().ClusterRoleBindings().Create(context.Background(), crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// claimWriterRole makes the ClusterRole test-claim-writer, which may do
// everything with AddressClaims.
func (e *env) claimWriterRole(t *testing.T) {
	t.Helper()
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "test-claim-writer"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"herald.dev"}, Resources: []string{"addressclaims"}, Verbs: []string{"*"},
	}}}
	if _, err := e.kube.RbacV1().ClusterRoles().Create(context.Background(), cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
