package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// Objects the RBAC cases work on, made by the admin.
const (
	appNamespace   = "shop"
	appService     = "web"
	appSecret      = "db-password"
	heraldSecret   = "bgp-password"
	otherLease     = "someone-elses-lease"
	fixturePool    = "pool-a"
	fixtureL2      = "l2"
	fixturePeer    = "router"
	fixtureBGPAd   = "bgp"
	speakerNode    = "node-a"
	adminEventName = "web-allocated"
)

// clients are the admin's clients and those of the impersonated service account.
type clients struct {
	kube, admin         kubernetes.Interface
	herald, adminHerald versioned.Interface
	// account is the impersonated service account's name, used as field manager.
	account string
}

// rbacCase is one request made as a component's service account, and whether the
// manifests' RBAC must allow or refuse it.
type rbacCase struct {
	name    string
	account string
	allowed bool
	do      func(ctx context.Context, c clients) error
}

// testRBAC impersonates each component's service account, exactly as its pods would
// authenticate, and makes real requests: those its job needs must succeed, and those it
// must never make must be refused with 403 Forbidden.
func testRBAC(t *testing.T, cp *controlplane.ControlPlane) {
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	adminHerald := versioned.NewForConfigOrDie(cp.Config())
	makeFixtures(t, admin, adminHerald)

	cases := append(controllerCases(), speakerCases()...)
	cases = append(cases, ccmCases()...)
	for _, tc := range cases {
		verdict := "refused"
		if tc.allowed {
			verdict = "allowed"
		}
		t.Run(fmt.Sprintf("%s: %s is %s", tc.account, tc.name, verdict), func(t *testing.T) {
			cfg := cp.ImpersonateServiceAccount(namespace, tc.account)
			if tc.account == speakerAccount {
				// As a Pod-bound token on speakerNode would carry it: the policy of
				// deploy/speaker/status-policy.yaml refuses speaker writes without it.
				cfg.Impersonate.Extra = map[string][]string{nodeNameExtra: {speakerNode}}
			}
			// Writing spec.externalIPs draws a deprecation warning; it is expected here.
			cfg.WarningHandler = rest.NoWarnings{}
			c := clients{
				kube:        kubernetes.NewForConfigOrDie(cfg),
				herald:      versioned.NewForConfigOrDie(cfg),
				admin:       admin,
				adminHerald: adminHerald,
				account:     tc.account,
			}
			err := tc.do(t.Context(), c)
			switch {
			case tc.allowed && err != nil:
				t.Errorf("%s: want it allowed, got %v", tc.name, err)
			case !tc.allowed && err == nil:
				t.Errorf("%s: want it refused (403 Forbidden), but it succeeded", tc.name)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Errorf("%s: want 403 Forbidden, got %v", tc.name, err)
			}
		})
	}
}

// makeFixtures creates, as the admin, the objects the cases read and write.
func makeFixtures(t *testing.T, admin kubernetes.Interface, adminHerald versioned.Interface) {
	t.Helper()
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s: %v", what, err)
		}
	}
	create := metav1.CreateOptions{}
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}}, create)
	must("namespace", err)
	_, err = admin.CoreV1().Services(appNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: appService},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": appService},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}, create)
	must("service", err)
	for _, s := range []struct{ ns, name string }{{appNamespace, appSecret}, {namespace, heraldSecret}} {
		_, err = admin.CoreV1().Secrets(s.ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.name},
			StringData: map[string]string{"password": "not-a-real-password"},
		}, create)
		must("secret "+s.ns+"/"+s.name, err)
	}
	_, err = admin.CoordinationV1().Leases(namespace).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: otherLease},
	}, create)
	must("lease", err)
	_, err = admin.CoreV1().Events(appNamespace).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: adminEventName},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: appNamespace, Name: appService, APIVersion: "v1"},
		Reason:         "Test",
		Message:        "an event for the components to patch",
		Type:           corev1.EventTypeNormal,
		Count:          1,
	}, create)
	must("event", err)

	v1 := adminHerald.HeraldV1alpha1()
	_, err = v1.IPPools().Create(ctx, &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: fixturePool},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []string{"203.0.113.0/28"}},
	}, create)
	must("ippool", err)
	_, err = v1.L2Advertisements().Create(ctx, &v1alpha1.L2Advertisement{
		ObjectMeta: metav1.ObjectMeta{Name: fixtureL2},
		Spec:       v1alpha1.L2AdvertisementSpec{IPPools: []string{fixturePool}},
	}, create)
	must("l2advertisement", err)
	_, err = v1.BGPPeers().Create(ctx, &v1alpha1.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Name: fixturePeer},
		Spec:       v1alpha1.BGPPeerSpec{PeerAddress: "203.0.113.1", PeerASN: 64512, MyASN: 64513},
	}, create)
	must("bgppeer", err)
	_, err = v1.BGPAdvertisements().Create(ctx, &v1alpha1.BGPAdvertisement{
		ObjectMeta: metav1.ObjectMeta{Name: fixtureBGPAd},
		Spec:       v1alpha1.BGPAdvertisementSpec{IPPools: []string{fixturePool}},
	}, create)
	must("bgpadvertisement", err)
}

// Requests shared by both components' cases.

func listServices(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	return err
}

func watchServices(ctx context.Context, c clients) error {
	w, err := c.kube.CoreV1().Services(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

// updateServiceStatus writes an ingress address through the status subresource.
func updateServiceStatus(ctx context.Context, c clients) error {
	svc, err := c.admin.CoreV1().Services(appNamespace).Get(ctx, appService, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
	_, err = c.kube.CoreV1().Services(appNamespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: c.account})
	return err
}

func patchServiceStatus(ctx context.Context, c clients) error {
	patch := []byte(`{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.6"}]}}}`)
	_, err := c.kube.CoreV1().Services(appNamespace).Patch(ctx, appService, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: c.account}, "status")
	return err
}

// updateServiceSpec writes spec.externalIPs, as the controller does for a Service that asks
// for an allocated external IP.
func updateServiceSpec(ctx context.Context, c clients) error {
	svc, err := c.admin.CoreV1().Services(appNamespace).Get(ctx, appService, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	svc.Spec.ExternalIPs = []string{"203.0.113.7"}
	_, err = c.kube.CoreV1().Services(appNamespace).Update(ctx, svc, metav1.UpdateOptions{FieldManager: c.account})
	return err
}

func patchServiceSpec(ctx context.Context, c clients) error {
	patch := []byte(`{"spec":{"externalIPs":["203.0.113.8"]}}`)
	_, err := c.kube.CoreV1().Services(appNamespace).Patch(ctx, appService, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: c.account})
	return err
}

func createService(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Services(appNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "made-by-" + c.account},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	return err
}

func deleteService(ctx context.Context, c clients) error {
	return c.kube.CoreV1().Services(appNamespace).Delete(ctx, appService, metav1.DeleteOptions{})
}

func listNodes(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	return err
}

func listNamespaces(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	return err
}

func listEndpointSlices(ctx context.Context, c clients) error {
	_, err := c.kube.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	return err
}

// listHeraldConfig lists every kind of Herald's configuration.
func listHeraldConfig(ctx context.Context, c clients) error {
	v1 := c.herald.HeraldV1alpha1()
	var errs []error
	_, err := v1.IPPools().List(ctx, metav1.ListOptions{})
	errs = append(errs, err)
	_, err = v1.L2Advertisements().List(ctx, metav1.ListOptions{})
	errs = append(errs, err)
	_, err = v1.BGPPeers().List(ctx, metav1.ListOptions{})
	errs = append(errs, err)
	_, err = v1.BGPAdvertisements().List(ctx, metav1.ListOptions{})
	errs = append(errs, err)
	return errors.Join(errs...)
}

func watchSpeakerStatuses(ctx context.Context, c clients) error {
	return stopWatch(c.herald.HeraldV1alpha1().SpeakerStatuses().Watch(ctx, metav1.ListOptions{}))
}

func watchIPPools(ctx context.Context, c clients) error {
	return stopWatch(c.herald.HeraldV1alpha1().IPPools().Watch(ctx, metav1.ListOptions{}))
}

// stopWatch stops a watch that was allowed, returning the error of one that was not.
func stopWatch(w watch.Interface, err error) error {
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

func updatePoolStatus(ctx context.Context, c clients) error {
	pool, err := c.adminHerald.HeraldV1alpha1().IPPools().Get(ctx, fixturePool, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	pool.Status.IPv4 = &v1alpha1.AddressCounts{Total: "16", Used: "0", Free: "16"}
	_, err = c.herald.HeraldV1alpha1().IPPools().UpdateStatus(ctx, pool, metav1.UpdateOptions{FieldManager: c.account})
	return err
}

// addPoolFinalizer adds the finalizer the controller puts on pools with allocations, and
// removes it again so the pool stays deletable.
func addPoolFinalizer(ctx context.Context, c clients) error {
	pools := c.herald.HeraldV1alpha1().IPPools()
	pool, err := c.adminHerald.HeraldV1alpha1().IPPools().Get(ctx, fixturePool, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	pool.Finalizers = append(pool.Finalizers, "herald.dev/pool-protection")
	if pool, err = pools.Update(ctx, pool, metav1.UpdateOptions{FieldManager: c.account}); err != nil {
		return err
	}
	pool.Finalizers = nil
	_, err = pools.Update(ctx, pool, metav1.UpdateOptions{FieldManager: c.account})
	return err
}

func createPool(ctx context.Context, c clients) error {
	_, err := c.herald.HeraldV1alpha1().IPPools().Create(ctx, &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "made-by-" + c.account},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []string{"198.51.100.0/28"}},
	}, metav1.CreateOptions{})
	return err
}

func deletePool(ctx context.Context, c clients) error {
	return c.herald.HeraldV1alpha1().IPPools().Delete(ctx, fixturePool, metav1.DeleteOptions{})
}

// updateAdvertisementAndPeerStatus writes a Ready condition on an L2Advertisement, a
// BGPPeer and a BGPAdvertisement.
func updateAdvertisementAndPeerStatus(ctx context.Context, c clients) error {
	ready := []metav1.Condition{{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid,
		Message: "written by the RBAC test", LastTransitionTime: metav1.Now(),
	}}
	v1, admin := c.herald.HeraldV1alpha1(), c.adminHerald.HeraldV1alpha1()
	opts := metav1.UpdateOptions{FieldManager: c.account}
	l2, err := admin.L2Advertisements().Get(ctx, fixtureL2, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	l2.Status.Conditions = ready
	if _, err := v1.L2Advertisements().UpdateStatus(ctx, l2, opts); err != nil {
		return err
	}
	peer, err := admin.BGPPeers().Get(ctx, fixturePeer, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	peer.Status.Conditions = ready
	if _, err := v1.BGPPeers().UpdateStatus(ctx, peer, opts); err != nil {
		return err
	}
	ad, err := admin.BGPAdvertisements().Get(ctx, fixtureBGPAd, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	ad.Status.Conditions = ready
	_, err = v1.BGPAdvertisements().UpdateStatus(ctx, ad, opts)
	return err
}

// createEvent records an event on the Service, as both components do.
func createEvent(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Events(appNamespace).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: c.account + "-"},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: appNamespace, Name: appService, APIVersion: "v1"},
		Reason:         "Test",
		Message:        "recorded by the RBAC test",
		Type:           corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: c.account},
		Count:          1,
	}, metav1.CreateOptions{})
	return err
}

// patchEvent bumps an event's count, as client-go's recorder does for a repeat.
func patchEvent(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Events(appNamespace).Patch(ctx, adminEventName, types.StrategicMergePatchType, []byte(`{"count":2}`), metav1.PatchOptions{})
	return err
}

func getHeraldSecret(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Secrets(namespace).Get(ctx, heraldSecret, metav1.GetOptions{})
	return err
}

func watchHeraldSecrets(ctx context.Context, c clients) error {
	if _, err := c.kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{}); err != nil {
		return err
	}
	w, err := c.kube.CoreV1().Secrets(namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

func listAllSecrets(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	return err
}

func getAppSecret(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Secrets(appNamespace).Get(ctx, appSecret, metav1.GetOptions{})
	return err
}

// createSecretIn creates a Secret in ns, as the controller creates the speakers'
// memberlist Secret; an existing one counts as created (the request was allowed).
func createSecretIn(ns string) func(ctx context.Context, c clients) error {
	return func(ctx context.Context, c clients) error {
		_, err := c.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "made-by-" + c.account},
			Data:       map[string][]byte{"key": []byte("rbac-test")},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
}

func updateHeraldSecret(ctx context.Context, c clients) error {
	sec, err := c.admin.CoreV1().Secrets(namespace).Get(ctx, heraldSecret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	sec.Labels = map[string]string{"touched-by": c.account}
	_, err = c.kube.CoreV1().Secrets(namespace).Update(ctx, sec, metav1.UpdateOptions{})
	return err
}

func deleteHeraldSecret(ctx context.Context, c clients) error {
	return c.kube.CoreV1().Secrets(namespace).Delete(ctx, heraldSecret, metav1.DeleteOptions{})
}

// writeSpeakerStatus creates the record of a node and writes its status, as a speaker does.
func writeSpeakerStatus(ctx context.Context, c clients) error {
	statuses := c.herald.HeraldV1alpha1().SpeakerStatuses()
	rec, err := statuses.Get(ctx, speakerNode, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		rec, err = statuses.Create(ctx, &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: speakerNode}}, metav1.CreateOptions{FieldManager: c.account})
	}
	if err != nil {
		return err
	}
	rec.Status.Members = 1
	rec.Status.Layer2 = []v1alpha1.Layer2Announcement{{
		Address: "203.0.113.5", Service: appNamespace + "/" + appService, Interfaces: []string{"eth0"}, Since: metav1.Now(),
	}}
	rec.Status.Conditions = []metav1.Condition{{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
		Message: "written by the RBAC test", LastTransitionTime: metav1.Now(),
	}}
	if _, err := statuses.UpdateStatus(ctx, rec, metav1.UpdateOptions{FieldManager: c.account}); err != nil {
		return err
	}
	_, err = statuses.List(ctx, metav1.ListOptions{})
	return err
}

func deleteSpeakerStatus(ctx context.Context, c clients) error {
	if _, err := c.adminHerald.HeraldV1alpha1().SpeakerStatuses().Create(ctx, &v1alpha1.SpeakerStatus{
		ObjectMeta: metav1.ObjectMeta{Name: "node-to-delete"},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("admin create: %w", err)
	}
	return c.herald.HeraldV1alpha1().SpeakerStatuses().Delete(ctx, "node-to-delete", metav1.DeleteOptions{})
}

func createSpeakerStatus(ctx context.Context, c clients) error {
	_, err := c.herald.HeraldV1alpha1().SpeakerStatuses().Create(ctx, &v1alpha1.SpeakerStatus{
		ObjectMeta: metav1.ObjectMeta{Name: "made-by-" + c.account},
	}, metav1.CreateOptions{})
	return err
}

// claimAddr names the AddressClaim the claim cases read and write. Whether it exists
// does not matter: RBAC decides before the apiserver looks the object up, and the
// ValidatingAdmissionPolicy in deploy/controller/claims-policy.yaml refuses even the
// admin's writes, so the test cannot make one.
const claimAddr = "203.0.113.5"

// readClaims gets, lists and watches AddressClaims, as the speaker's informer does.
func readClaims(ctx context.Context, c clients) error {
	claims := c.herald.HeraldV1alpha1().AddressClaims()
	if _, err := claims.Get(ctx, claimAddr, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if _, err := claims.List(ctx, metav1.ListOptions{}); err != nil {
		return err
	}
	w, err := claims.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

// claimObject is the claim of claimAddr held by the app's Service.
func claimObject() *v1alpha1.AddressClaim {
	return &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: claimAddr, ResourceVersion: "1"},
		Spec: v1alpha1.AddressClaimSpec{Address: claimAddr, Family: "IPv4", Pool: fixturePool, HolderCount: 1, Holders: []v1alpha1.AddressHolder{{
			Namespace: appNamespace, Name: appService, UID: "00000000-0000-0000-0000-000000000001", As: v1alpha1.HolderLoadBalancer,
		}}},
	}
}

func createClaim(ctx context.Context, c clients) error {
	claim := claimObject()
	claim.ResourceVersion = ""
	_, err := c.herald.HeraldV1alpha1().AddressClaims().Create(ctx, claim, metav1.CreateOptions{FieldManager: c.account})
	return err
}

func updateClaim(ctx context.Context, c clients) error {
	_, err := c.herald.HeraldV1alpha1().AddressClaims().Update(ctx, claimObject(), metav1.UpdateOptions{FieldManager: c.account})
	return err
}

func patchClaim(ctx context.Context, c clients) error {
	_, err := c.herald.HeraldV1alpha1().AddressClaims().Patch(ctx, claimAddr, types.MergePatchType,
		[]byte(`{"spec":{"pool":"another"}}`), metav1.PatchOptions{FieldManager: c.account})
	return err
}

func deleteClaim(ctx context.Context, c clients) error {
	return c.herald.HeraldV1alpha1().AddressClaims().Delete(ctx, claimAddr, metav1.DeleteOptions{})
}

// leaderElection creates (or finds) the controller's Lease, reads it and renews it.
func leaderElection(ctx context.Context, c clients) error {
	return leaderElectionOn(controllerLease)(ctx, c)
}

// leaderElectionOn creates (or finds) the Lease name in herald-system, reads it and renews
// it, as client-go's leader election does.
func leaderElectionOn(name string) func(ctx context.Context, c clients) error {
	return func(ctx context.Context, c clients) error {
		leases := c.kube.CoordinationV1().Leases(namespace)
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			lease, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("rbac-test"), LeaseDurationSeconds: ptr.To[int32](10)},
			}, metav1.CreateOptions{})
		}
		if err != nil {
			return err
		}
		lease.Spec.RenewTime = &metav1.MicroTime{Time: metav1.Now().Time}
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	}
}

func getOtherLease(ctx context.Context, c clients) error {
	_, err := c.kube.CoordinationV1().Leases(namespace).Get(ctx, otherLease, metav1.GetOptions{})
	return err
}

func createLeaseElsewhere(ctx context.Context, c clients) error {
	_, err := c.kube.CoordinationV1().Leases(appNamespace).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: controllerLease},
	}, metav1.CreateOptions{})
	return err
}

func listClusterRoleBindings(ctx context.Context, c clients) error {
	_, err := c.kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	return err
}

// controllerCases are the controller's job and what it must not do.
func controllerCases() []rbacCase {
	a := controllerAccount
	return []rbacCase{
		{"list Services in every namespace", a, true, listServices},
		{"watch Services", a, true, watchServices},
		{"update a Service's status (ingress)", a, true, updateServiceStatus},
		{"patch a Service's status", a, true, patchServiceStatus},
		{"update a Service (spec.externalIPs)", a, true, updateServiceSpec},
		{"list Namespaces", a, true, listNamespaces},
		{"list Nodes", a, true, listNodes},
		{"list every kind of Herald's configuration", a, true, listHeraldConfig},
		{"watch IPPools", a, true, watchIPPools},
		{"watch SpeakerStatuses (BGPPeers' BFDUp condition)", a, true, watchSpeakerStatuses},
		{"update an IPPool's status", a, true, updatePoolStatus},
		{"add and remove an IPPool's finalizer", a, true, addPoolFinalizer},
		{"update advertisement and peer status", a, true, updateAdvertisementAndPeerStatus},
		{"create an Event", a, true, createEvent},
		{"patch an Event", a, true, patchEvent},
		{"create, read and renew its Lease", a, true, leaderElection},
		{"read and watch Secrets in herald-system", a, true, watchHeraldSecrets},
		{"create a Secret in herald-system (the memberlist key)", a, true, createSecretIn(namespace)},

		{"read Secrets in every namespace", a, false, listAllSecrets},
		{"read a Secret in an application namespace", a, false, getAppSecret},
		{"create a Secret in an application namespace", a, false, createSecretIn(appNamespace)},
		{"update a Secret in herald-system", a, false, updateHeraldSecret},
		{"delete a Secret in herald-system", a, false, deleteHeraldSecret},
		{"read another Lease", a, false, getOtherLease},
		{"create a Lease in another namespace", a, false, createLeaseElsewhere},
		{"create a Service", a, false, createService},
		{"delete a Service", a, false, deleteService},
		{"create an IPPool", a, false, createPool},
		{"delete an IPPool", a, false, deletePool},
		{"list EndpointSlices", a, false, listEndpointSlices},
		{"create a SpeakerStatus", a, false, createSpeakerStatus},
		{"list ClusterRoleBindings", a, false, listClusterRoleBindings},
	}
}

// speakerCases are the speaker's job and what it must not do.
func speakerCases() []rbacCase {
	a := speakerAccount
	return []rbacCase{
		{"list Services in every namespace", a, true, listServices},
		{"watch Services", a, true, watchServices},
		{"list EndpointSlices", a, true, listEndpointSlices},
		{"list Nodes", a, true, listNodes},
		{"list every kind of Herald's configuration", a, true, listHeraldConfig},
		{"watch IPPools", a, true, watchIPPools},
		{"create its SpeakerStatus and write its status", a, true, writeSpeakerStatus},
		{"create an Event", a, true, createEvent},
		{"patch an Event", a, true, patchEvent},
		{"read a BGP password Secret in herald-system", a, true, getHeraldSecret},
		{"read and watch Secrets in herald-system", a, true, watchHeraldSecrets},
		{"get, list and watch AddressClaims", a, true, readClaims},

		{"create an AddressClaim", a, false, createClaim},
		{"update an AddressClaim", a, false, updateClaim},
		{"patch an AddressClaim", a, false, patchClaim},
		{"delete an AddressClaim", a, false, deleteClaim},
		{"update a Service", a, false, updateServiceSpec},
		{"patch a Service", a, false, patchServiceSpec},
		{"update a Service's status", a, false, updateServiceStatus},
		{"patch a Service's status", a, false, patchServiceStatus},
		{"create a Service", a, false, createService},
		{"delete a Service", a, false, deleteService},
		{"read Secrets in every namespace", a, false, listAllSecrets},
		{"read a Secret in an application namespace", a, false, getAppSecret},
		{"create a Secret in herald-system", a, false, createSecretIn(namespace)},
		{"update an IPPool's status", a, false, updatePoolStatus},
		{"add an IPPool's finalizer", a, false, addPoolFinalizer},
		{"create an IPPool", a, false, createPool},
		{"delete a SpeakerStatus", a, false, deleteSpeakerStatus},
		{"use the controller's Lease", a, false, leaderElection},
		{"list ClusterRoleBindings", a, false, listClusterRoleBindings},
	}
}

// testCanI asks the questions of docs/install.md with `kubectl auth can-i --as`, the way
// an operator would check the installed RBAC: exit status 0 means yes, 1 no.
func testCanI(t *testing.T, cp *controlplane.ControlPlane) {
	sa := func(name string) string { return "--as=system:serviceaccount:" + namespace + ":" + name }
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"patch", "services", "--subresource=status", "-n", appNamespace, sa(controllerAccount)}, true},
		{[]string{"list", "ippools.herald.dev", sa(controllerAccount)}, true},
		{[]string{"list", "secrets", "--all-namespaces", sa(controllerAccount)}, false},
		{[]string{"create", "secrets", "-n", namespace, sa(controllerAccount)}, true},
		{[]string{"update", "secrets", "-n", namespace, sa(controllerAccount)}, false},
		{[]string{"create", "secrets", "-n", appNamespace, sa(controllerAccount)}, false},
		{[]string{"delete", "services", "-n", appNamespace, sa(controllerAccount)}, false},
		{[]string{"patch", "services", "-n", appNamespace, sa(speakerAccount)}, false},
		{[]string{"update", "services", "--subresource=status", "-n", appNamespace, sa(speakerAccount)}, false},
		{[]string{"delete", "services", "-n", appNamespace, sa(speakerAccount)}, false},
		{[]string{"list", "endpointslices.discovery.k8s.io", "--all-namespaces", sa(speakerAccount)}, true},
		{[]string{"update", "speakerstatuses.herald.dev", "--subresource=status", sa(speakerAccount)}, true},
		{[]string{"watch", "addressclaims.herald.dev", sa(speakerAccount)}, true},
		{[]string{"create", "addressclaims.herald.dev", sa(speakerAccount)}, false},
		{[]string{"delete", "addressclaims.herald.dev", sa(speakerAccount)}, false},
		{[]string{"patch", "services", "--subresource=status", "-n", appNamespace, sa(ccmAccount)}, true},
		{[]string{"create", "addressclaims.herald.dev", sa(ccmAccount)}, true},
		{[]string{"update", "services", "-n", appNamespace, sa(ccmAccount)}, false},
		{[]string{"list", "secrets", "-n", namespace, sa(ccmAccount)}, false},
		{[]string{"update", "ippools.herald.dev", sa(ccmAccount)}, false},
	} {
		name := strings.Join(tt.args, " ")
		t.Run(name, func(t *testing.T) {
			out, stderr, err := kubectl(t.Context(), cp, append([]string{"auth", "can-i"}, tt.args...)...)
			code := exitCode(err)
			if code != 0 && code != 1 {
				t.Fatalf("kubectl auth can-i %s: %v\n%s%s", name, err, out, stderr)
			}
			if got := code == 0; got != tt.want {
				t.Errorf("kubectl auth can-i %s: %q (exit %d), want %v", name, strings.TrimSpace(out), code, tt.want)
			}
		})
	}
}

// ccmCases are the cloud-controller-manager's job (the upstream service controller's,
// Herald's provider's, and its HTTPS endpoint's) and what it must not do.
func ccmCases() []rbacCase {
	a := ccmAccount
	return []rbacCase{
		{"list Services in every namespace", a, true, listServices},
		{"watch Services", a, true, watchServices},
		{"update a Service's status (ingress)", a, true, updateServiceStatus},
		{"patch a Service's status (ingress, finalizer)", a, true, patchServiceStatus},
		{"list and watch Nodes", a, true, watchNodes},
		{"list Namespaces", a, true, listNamespaces},
		{"watch IPPools", a, true, watchIPPools},
		{"create, read, update and delete an AddressClaim", a, true, writeAddressClaim},
		{"list and watch AddressClaims", a, true, watchAddressClaims},
		{"create an Event", a, true, createEvent},
		{"patch an Event", a, true, patchEvent},
		{"create, read and renew its Lease", a, true, leaderElectionOn(ccmLease)},
		{"review tokens and access (delegated authentication)", a, true, reviewTokenAndAccess},
		{"read the apiserver's authentication ConfigMap", a, true, getAuthenticationConfigMap},

		{"update a Service", a, false, updateServiceSpec},
		{"patch a Service", a, false, patchServiceSpec},
		{"create a Service", a, false, createService},
		{"delete a Service", a, false, deleteService},
		{"read a Node", a, false, getNode},
		{"list EndpointSlices", a, false, listEndpointSlices},
		{"list L2Advertisements, BGPPeers and BGPAdvertisements", a, false, listAdvertisementsAndPeers},
		{"update an IPPool's status", a, false, updatePoolStatus},
		{"add an IPPool's finalizer", a, false, addPoolFinalizer},
		{"create an IPPool", a, false, createPool},
		{"delete an IPPool", a, false, deletePool},
		{"create a SpeakerStatus", a, false, createSpeakerStatus},
		{"read Secrets in herald-system", a, false, watchHeraldSecrets},
		{"read Secrets in every namespace", a, false, listAllSecrets},
		{"read ConfigMaps in every namespace", a, false, listAllConfigMaps},
		{"use the controller's Lease", a, false, leaderElection},
		{"read another Lease", a, false, getOtherLease},
		{"list ClusterRoleBindings", a, false, listClusterRoleBindings},
	}
}

func watchNodes(ctx context.Context, c clients) error {
	if err := listNodes(ctx, c); err != nil {
		return err
	}
	w, err := c.kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

// getNode reads one Node; the fixture need not exist, a refusal comes first.
func getNode(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().Nodes().Get(ctx, speakerNode, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// listAdvertisementsAndPeers lists the kinds of Herald's configuration that only the
// controller and the speakers read.
func listAdvertisementsAndPeers(ctx context.Context, c clients) error {
	v1 := c.herald.HeraldV1alpha1()
	if _, err := v1.L2Advertisements().List(ctx, metav1.ListOptions{}); err != nil {
		return err
	}
	if _, err := v1.BGPPeers().List(ctx, metav1.ListOptions{}); err != nil {
		return err
	}
	_, err := v1.BGPAdvertisements().List(ctx, metav1.ListOptions{})
	return err
}

// claimedAddress is the address of the AddressClaim the cases write, in fixturePool.
var claimedAddress = netip.MustParseAddr("203.0.113.9")

// writeAddressClaim records the fixture Service as the holder of an address, as an
// allocator does before the status names it, reads the claim back, adds a port to the
// holder and deletes the claim.
func writeAddressClaim(ctx context.Context, c clients) error {
	svc, err := c.admin.CoreV1().Services(appNamespace).Get(ctx, appService, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	claims := c.herald.HeraldV1alpha1().AddressClaims()
	opts := metav1.CreateOptions{FieldManager: c.account}
	claim, err := claims.Create(ctx, &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: config.ClaimName(claimedAddress)},
		Spec: v1alpha1.AddressClaimSpec{
			Address: claimedAddress.String(), Family: "IPv4", Pool: fixturePool, HolderCount: 1,
			Holders: []v1alpha1.AddressHolder{{
				Namespace: appNamespace, Name: appService, UID: string(svc.UID), As: v1alpha1.HolderLoadBalancer,
			}},
		},
	}, opts)
	if err != nil {
		return err
	}
	if claim, err = claims.Get(ctx, claim.Name, metav1.GetOptions{}); err != nil {
		return err
	}
	claim.Spec.Holders[0].Ports = []v1alpha1.HolderPort{{Protocol: "TCP", Port: 80}}
	if _, err := claims.Update(ctx, claim, metav1.UpdateOptions{FieldManager: c.account}); err != nil {
		return err
	}
	return claims.Delete(ctx, claim.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &claim.UID}})
}

func watchAddressClaims(ctx context.Context, c clients) error {
	claims := c.herald.HeraldV1alpha1().AddressClaims()
	if _, err := claims.List(ctx, metav1.ListOptions{}); err != nil {
		return err
	}
	w, err := claims.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}

// reviewTokenAndAccess asks the apiserver who a token is and whether a user may get
// /metrics, as a manager's HTTPS endpoint does for each caller. A review answered with a
// "no" is still allowed: only the request's refusal counts here.
func reviewTokenAndAccess(ctx context.Context, c clients) error {
	if _, err := c.kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  "someone",
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		},
	}, metav1.CreateOptions{})
	return err
}

// getAuthenticationConfigMap reads the ConfigMap in which the apiserver publishes the
// client CAs that delegated authentication trusts. The test control plane configures no
// client CA, so the apiserver publishes none: NotFound, which only an allowed request
// gets, counts as allowed.
func getAuthenticationConfigMap(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func listAllConfigMaps(ctx context.Context, c clients) error {
	_, err := c.kube.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	return err
}
