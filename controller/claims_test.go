package controller

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfake "k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	hfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// claimEnv is a Core and Claims over fake clientsets whose caches the test
// refreshes by hand (sync), so that it decides when an allocator's cache
// lags behind the API.
type claimEnv struct {
	t       *testing.T
	kube    *kfake.Clientset
	herald  *hfake.Clientset
	idx     cache.Indexer
	svcIdx  cache.Indexer
	core    *Core
	claims  *Claims
	repairs []string
}

func newClaimEnv(t *testing.T, pools ...*v1alpha1.IPPool) *claimEnv {
	t.Helper()
	e := &claimEnv{t: t, kube: kfake.NewClientset(), herald: hfake.NewSimpleClientset()}
	e.idx = cache.NewIndexer(cache.MetaNamespaceKeyFunc, ClaimIndexers())
	e.svcIdx = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	e.core = e.newCore(pools...)
	e.claims = e.newClaims()
	return e
}

func (e *claimEnv) newCore(pools ...*v1alpha1.IPPool) *Core {
	core := NewCore("")
	if err := core.SetModel(model(e.t, pools...)); err != nil {
		e.t.Fatal(err)
	}
	return core
}

func (e *claimEnv) newClaims() *Claims {
	return NewClaims(ClaimsConfig{
		Client: e.herald, Kube: e.kube, Lister: heraldlisters.NewAddressClaimLister(e.idx), Indexer: e.idx,
		Services: corelisters.NewServiceLister(e.svcIdx),
		OnRepair: func(a string) { e.repairs = append(e.repairs, a) },
	})
}

// sync refreshes the caches from the fake API.
func (e *claimEnv) sync() {
	e.t.Helper()
	cl, err := e.herald.HeraldV1alpha1().AddressClaims().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var objs []any
	for i := range cl.Items {
		objs = append(objs, &cl.Items[i])
	}
	if err := e.idx.Replace(objs, ""); err != nil {
		e.t.Fatal(err)
	}
	sl, err := e.kube.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	objs = nil
	for i := range sl.Items {
		objs = append(objs, &sl.Items[i])
	}
	if err := e.svcIdx.Replace(objs, ""); err != nil {
		e.t.Fatal(err)
	}
}

// create stores svc in the fake API and the cache.
func (e *claimEnv) create(svc *corev1.Service) *corev1.Service {
	e.t.Helper()
	out, err := e.kube.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.sync()
	return out
}

// ensure runs Claims.Ensure and writes the status it implies, as the
// controller does, then Settle.
func (e *claimEnv) ensure(c *Claims, core *Core, svc *corev1.Service) (ServiceDecision, *corev1.Service) {
	e.t.Helper()
	ctx := context.Background()
	d, err := c.Ensure(ctx, core, svc)
	if err != nil {
		e.t.Fatalf("Ensure %s: %v", svc.Name, err)
	}
	st, _ := desiredStatus(svc, d)
	upd := svc.DeepCopy()
	upd.Status = st
	written, err := e.kube.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.sync()
	if err := c.Settle(ctx, core, written, d, false); err != nil {
		e.t.Fatalf("Settle %s: %v", svc.Name, err)
	}
	e.sync()
	return d, written
}

// claim returns the claim of addr, or nil.
func (e *claimEnv) claim(addr string) *v1alpha1.AddressClaim {
	e.t.Helper()
	c, err := e.herald.HeraldV1alpha1().AddressClaims().Get(context.Background(), config.ClaimName(netip.MustParseAddr(addr)), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func holderNames(c *v1alpha1.AddressClaim) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, h := range c.Spec.Holders {
		out = append(out, h.Namespace+"/"+h.Name+"/"+h.As)
	}
	return out
}

func TestClaimsRecordBeforeStatusAndReleaseAfter(t *testing.T) {
	e := newClaimEnv(t, ippool("lan", []string{"198.51.100.1-198.51.100.3"}))
	web := e.create(service("ns", "web"))
	d, web := e.ensure(e.claims, e.core, web)
	if got := d.LoadBalancer.Addresses; !slices.Equal(got, addrs("198.51.100.1")) {
		t.Fatalf("web got %v", got)
	}
	c := e.claim("198.51.100.1")
	if c == nil {
		t.Fatal("no claim for 198.51.100.1")
	}
	want := v1alpha1.AddressClaimSpec{Address: "198.51.100.1", Family: "IPv4", Pool: "lan", HolderCount: 1,
		Holders: []v1alpha1.AddressHolder{{Namespace: "ns", Name: "web", UID: "uid-web", As: v1alpha1.HolderLoadBalancer}}}
	if diff := cmp.Diff(want, c.Spec); diff != "" {
		t.Fatalf("claim (-want +got):\n%s", diff)
	}

	// The Service asks for another address: the new claim comes first, the
	// old one goes once the status names the new address.
	web.Annotations = map[string]string{config.AnnotationAddresses: "198.51.100.2"}
	if _, err := e.kube.CoreV1().Services("ns").Update(context.Background(), web, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	_, web = e.ensure(e.claims, e.core, web)
	if e.claim("198.51.100.1") != nil || e.claim("198.51.100.2") == nil {
		t.Fatalf("after the move: claims %v, %v", holderNames(e.claim("198.51.100.1")), holderNames(e.claim("198.51.100.2")))
	}

	// Deleted: its claim goes.
	if err := e.kube.CoreV1().Services("ns").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if _, err := e.claims.Release(context.Background(), e.core, "ns", "web"); err != nil {
		t.Fatal(err)
	}
	if c := e.claim("198.51.100.2"); c != nil {
		t.Fatalf("claim of a deleted Service remains: %v", holderNames(c))
	}
	_ = web
}

// TestClaimsArbitrateBetweenAllocators: a second allocator that does not
// know the first's allocation picks the same address, finds its claim, adopts
// it and gives its Service another address; a sharer joins the claim.
func TestClaimsArbitrateBetweenAllocators(t *testing.T) {
	pool := ippool("lan", []string{"198.51.100.1-198.51.100.2"})
	e := newClaimEnv(t, pool)
	a := e.create(service("ns", "a", annotate(config.AnnotationSharingKey, "k"), withPorts(80)))
	e.ensure(e.claims, e.core, a)

	// Allocator two: its own Core and cache, which has not seen the claim.
	core2 := e.newCore(pool)
	claims2 := e.newClaims()
	b := e.create(service("ns", "b"))
	if err := e.idx.Delete(e.claim("198.51.100.1")); err != nil {
		t.Fatal(err)
	}
	d, _ := e.ensure(claims2, core2, b)
	if got := d.LoadBalancer.Addresses; !slices.Equal(got, addrs("198.51.100.2")) {
		t.Fatalf("b got %v, want the address a does not hold", got)
	}
	if got := holderNames(e.claim("198.51.100.1")); !slices.Equal(got, []string{"ns/a/LoadBalancer"}) {
		t.Fatalf("a's claim: %v", got)
	}
	if !slices.Contains(e.repairs, "claimedElsewhere") {
		t.Fatalf("repairs %v, want claimedElsewhere", e.repairs)
	}

	// A sharer that allocator two decides joins a's claim.
	c := e.create(service("ns", "c", annotate(config.AnnotationSharingKey, "k", config.AnnotationAddresses, "198.51.100.1"), withPorts(443)))
	d, _ = e.ensure(claims2, core2, c)
	if got := d.LoadBalancer.Addresses; !slices.Equal(got, addrs("198.51.100.1")) {
		t.Fatalf("c got %v", got)
	}
	if got := holderNames(e.claim("198.51.100.1")); !slices.Equal(got, []string{"ns/a/LoadBalancer", "ns/c/LoadBalancer"}) {
		t.Fatalf("shared claim: %v", got)
	}
	if got := e.claim("198.51.100.1").Spec.HolderCount; got != 2 {
		t.Fatalf("holderCount %d", got)
	}
}

// TestClaimsNeverJoinAfterDisplacement: an allocator decides an address
// for b, then (in another worker, following a's claim made by the other
// allocator) adopts a at that address, which displaces b in its Core. When
// b's decision is committed, the claim lists a, whom the Core holds: b must
// not be added beside it (a and b may not share), but be decided again.
func TestClaimsNeverJoinAfterDisplacement(t *testing.T) {
	pool := ippool("lan", []string{"198.51.100.1-198.51.100.2"})
	e := newClaimEnv(t, pool)
	a := e.create(service("ns", "a"))
	e.ensure(e.claims, e.core, a)

	core2, claims2 := e.newCore(pool), e.newClaims()
	b := e.create(service("ns", "b"))
	d := core2.Ensure(b)
	if got := d.LoadBalancer.Addresses; !slices.Equal(got, addrs("198.51.100.1")) {
		t.Fatalf("allocator two decided %v for b; the test needs it to pick a's address", got)
	}
	cl, err := config.ClaimOf(e.claim("198.51.100.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core2.AdoptClaim(cl, cl.Holders[0], a.CreationTimestamp.Time); err != nil {
		t.Fatal(err)
	}
	lost, err := claims2.commit(context.Background(), core2, b, d.LoadBalancer)
	if err != nil {
		t.Fatal(err)
	}
	if got := holderNames(e.claim("198.51.100.1")); !lost || !slices.Equal(got, []string{"ns/a/LoadBalancer"}) {
		t.Fatalf("commit of b after a was adopted: lost %v, claim %v; want lost and the claim listing a alone", lost, got)
	}
}

// TestClaimsRestoreAndStaleHolders: a claim deleted by hand is restored
// with an Event reason counted; a holder whose Service is gone is dropped
// when its address is needed, and removed at import.
func TestClaimsRestoreAndStaleHolders(t *testing.T) {
	pool := ippool("lan", []string{"198.51.100.1/32"})
	e := newClaimEnv(t, pool)
	web := e.create(service("ns", "web"))
	_, web = e.ensure(e.claims, e.core, web)
	if err := e.herald.HeraldV1alpha1().AddressClaims().Delete(context.Background(), "198.51.100.1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	e.ensure(e.claims, e.core, web)
	if got := holderNames(e.claim("198.51.100.1")); !slices.Equal(got, []string{"ns/web/LoadBalancer"}) {
		t.Fatalf("restored claim: %v", got)
	}
	if !slices.Contains(e.repairs, "claimRestored") {
		t.Fatalf("repairs %v, want claimRestored", e.repairs)
	}

	// web is deleted while no allocator runs; its claim stays. A new
	// allocator imports: the stale holder is removed, and the address is
	// free for the next Service.
	if err := e.kube.CoreV1().Services("ns").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	core2, claims2 := e.newCore(pool), e.newClaims()
	rep, err := claims2.Import(context.Background(), core2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Stale) != 1 || e.claim("198.51.100.1") != nil {
		t.Fatalf("import: stale %v, claim %v", rep.Stale, holderNames(e.claim("198.51.100.1")))
	}
	e.sync()
	next := e.create(service("ns", "next"))
	if d, _ := e.ensure(claims2, core2, next); !slices.Equal(d.LoadBalancer.Addresses, addrs("198.51.100.1")) {
		t.Fatalf("next got %v", d.LoadBalancer.Addresses)
	}
}

// TestClaimsImportKeepsSharersWhateverTheAnnotations is issue 11's first
// case: two sharers, one of which then gets an unparseable annotation; a
// restart restores both on their address from the claims.
func TestClaimsImportKeepsSharersWhateverTheAnnotations(t *testing.T) {
	pool := ippool("lan", []string{"198.51.100.1-198.51.100.3"})
	e := newClaimEnv(t, pool)
	s1 := e.create(service("ns", "s1", annotate(config.AnnotationSharingKey, "k1"), withPorts(80), createdAt(created.Add(time.Second), "u1")))
	_, s1 = e.ensure(e.claims, e.core, s1)
	s2 := e.create(service("ns", "s2", annotate(config.AnnotationSharingKey, "k1", config.AnnotationAddresses, "198.51.100.1"), withPorts(443), createdAt(created, "u2")))
	_, s2 = e.ensure(e.claims, e.core, s2)
	s2.Annotations[config.AnnotationAddresses] = "not-an-address"
	if _, err := e.kube.CoreV1().Services("ns").Update(context.Background(), s2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	for i := range 5 {
		core, claims := e.newCore(pool), e.newClaims()
		rep, err := claims.Import(context.Background(), core)
		if err != nil || len(rep.Conflicts) > 0 || len(rep.Displaced) > 0 {
			t.Fatalf("restart %d: import %+v, %v", i, rep, err)
		}
		for _, name := range []string{"s1", "s2"} {
			svc, _ := e.kube.CoreV1().Services("ns").Get(context.Background(), name, metav1.GetOptions{})
			d, after := e.ensure(claims, core, svc)
			if !slices.Equal(d.LoadBalancer.Addresses, addrs("198.51.100.1")) || !slices.Equal(config.LoadBalancerAddresses(after), addrs("198.51.100.1")) {
				t.Fatalf("restart %d: %s has %v", i, name, d.LoadBalancer.Addresses)
			}
		}
	}
	if got := holderNames(e.claim("198.51.100.1")); !slices.Equal(got, []string{"ns/s1/LoadBalancer", "ns/s2/LoadBalancer"}) {
		t.Fatalf("claim: %v", got)
	}
}

// TestClaimsUpgradeFromStatus: a Service whose status (written by the
// previous release) names an address without a claim keeps it, and the
// first reconcile records it; a status naming an address another Service's
// claim holds does not take it.
func TestClaimsUpgradeFromStatus(t *testing.T) {
	pool := ippool("lan", []string{"198.51.100.1-198.51.100.3"})
	e := newClaimEnv(t, pool)
	old := service("ns", "old")
	old.Status.LoadBalancer.Ingress = IngressFor(addrs("198.51.100.3"))
	old.Status.Conditions = []metav1.Condition{{Type: config.ConditionAddressAllocated, Status: metav1.ConditionTrue,
		Reason: ReasonAllocated, Message: config.GrantSentence(config.VerbAllocated, addrs("198.51.100.3"), "lan")}}
	old = e.create(old)
	holder := e.create(service("ns", "holder"))
	_, _ = e.ensure(e.claims, e.core, holder) // claims .1
	liar := service("ns", "liar", createdAt(created.Add(-time.Hour), "uid-liar"))
	liar.Status.LoadBalancer.Ingress = IngressFor(addrs("198.51.100.1"))
	liar = e.create(liar)

	core, claims := e.newCore(pool), e.newClaims()
	rep, err := claims.Import(context.Background(), core)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FromStatus) != 1 || rep.FromStatus[0].Owner.Name != "old" {
		t.Fatalf("FromStatus %+v", rep.FromStatus)
	}
	d, _ := e.ensure(claims, core, old)
	if !slices.Equal(d.LoadBalancer.Addresses, addrs("198.51.100.3")) || e.claim("198.51.100.3") == nil {
		t.Fatalf("old: %v, claim %v", d.LoadBalancer.Addresses, holderNames(e.claim("198.51.100.3")))
	}
	if slices.Contains(e.repairs, "claimRestored") {
		t.Fatal("the upgrade's first claim was reported as a repair")
	}
	d, _ = e.ensure(claims, core, liar)
	if slices.Contains(d.LoadBalancer.Addresses, netip.MustParseAddr("198.51.100.1")) {
		t.Fatalf("liar took the claimed address: %v", d.LoadBalancer.Addresses)
	}
	if got := holderNames(e.claim("198.51.100.1")); !slices.Equal(got, []string{"ns/holder/LoadBalancer"}) {
		t.Fatalf("holder's claim: %v", got)
	}
}

// TestClaimsOrphans: a claim listing a Service that this Core never gave
// the address, and that the Service does not show (another allocator's
// leftover), is left alone by a plain Settle, and removed when the repair
// pass found it due.
func TestClaimsOrphans(t *testing.T) {
	pool := ippool("lan", []string{"198.51.100.1-198.51.100.3"})
	e := newClaimEnv(t, pool)
	web := e.create(service("ns", "web"))
	d, web := e.ensure(e.claims, e.core, web)
	// Another allocator claimed .3 for web, then died before writing the status.
	orphan := &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "198.51.100.3"},
		Spec: v1alpha1.AddressClaimSpec{Address: "198.51.100.3", Family: "IPv4", Pool: "lan", HolderCount: 1,
			Holders: []v1alpha1.AddressHolder{{Namespace: "ns", Name: "web", UID: "uid-web", As: v1alpha1.HolderLoadBalancer}}},
	}
	if _, err := e.herald.HeraldV1alpha1().AddressClaims().Create(context.Background(), orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if err := e.claims.Settle(context.Background(), e.core, web, d, false); err != nil {
		t.Fatal(err)
	}
	if e.claim("198.51.100.3") == nil {
		t.Fatal("a plain Settle removed another allocator's claim")
	}
	if err := e.claims.Settle(context.Background(), e.core, web, d, true); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if c := e.claim("198.51.100.3"); c != nil {
		t.Fatalf("the orphan claim remains: %v", holderNames(c))
	}
	if got := holderNames(e.claim(d.LoadBalancer.Addresses[0].String())); !slices.Equal(got, []string{"ns/web/LoadBalancer"}) {
		t.Fatalf("web's own claim: %v", got)
	}
}
