package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/pager"
	"k8s.io/client-go/tools/record"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

// Reasons of the Events about AddressClaims.
const (
	// ReasonAddressClaimRestored: a claim of an address the Service holds was
	// deleted or edited (by hand, or by another allocator) and is restored.
	ReasonAddressClaimRestored = "AddressClaimRestored"
	// ReasonAddressClaimedElsewhere: another allocator claimed the address
	// this controller had chosen for the Service first; it is decided again.
	ReasonAddressClaimedElsewhere = "AddressClaimedElsewhere"
)

// Indexes of the AddressClaims informer (see ClaimIndexers).
const (
	// ClaimsByHolder indexes claims by each holder's namespace/name.
	ClaimsByHolder = "holder"
	// ClaimsByPool indexes claims by their pool.
	ClaimsByPool = "pool"
)

// ClaimIndexers are the indexes Claims needs on the AddressClaims informer.
func ClaimIndexers() cache.Indexers {
	return cache.Indexers{
		ClaimsByHolder: func(obj any) ([]string, error) {
			keys := HolderKeys(obj)
			slices.Sort(keys)
			return slices.Compact(keys), nil
		},
		ClaimsByPool: func(obj any) ([]string, error) {
			if c, ok := obj.(*v1alpha1.AddressClaim); ok {
				return []string{c.Spec.Pool}, nil
			}
			return nil, nil
		},
	}
}

// ClaimsConfig configures Claims.
type ClaimsConfig struct {
	// Client writes AddressClaims; Kube reads Services live, to tell a
	// holder that is gone from one the informer has not seen yet.
	Client versioned.Interface
	Kube   kubernetes.Interface
	// Lister and Indexer are the AddressClaims informer's, with
	// ClaimIndexers; Services is the Services informer's lister.
	Lister       heraldlisters.AddressClaimLister
	Indexer      cache.Indexer
	Services     corelisters.ServiceLister
	Logger       *slog.Logger
	FieldManager string
	// ImportFromCache makes Import read the claims from the synced informer
	// instead of listing them again. That is safe because the API server
	// arbitrates: a claim the cache has not seen yet is found when its
	// address is chosen (the create conflicts and the claim is adopted), and
	// one the cache still shows after its deletion has a holder that is gone
	// or that follows its status. The Services are still listed live, after.
	ImportFromCache bool
	// OnRepair, when set, counts a repair: "staleHolderRemoved",
	// "claimRestored", "claimedElsewhere", "invalidClaim".
	OnRepair func(action string)
}

// Claims records a Core's decisions in AddressClaims, one object per
// address named by it, so that the API server arbitrates between allocators
// and speakers announce from the claims (see docs/claims.md): a claim is
// created or extended before a Service's status names its address, and a
// holder removed only after the status no longer does. Calls for one Service
// must not run concurrently (a workqueue guarantees it).
type Claims struct {
	cfg      ClaimsConfig
	recorder record.EventRecorder
	// fromStatus holds the holdings imported from statuses without a
	// claim: creating their claims is the upgrade, not a repair. It is keyed
	// by holder, not by address, since sharers join one claim one at a time;
	// workers for different Services use it concurrently.
	fromStatusMu sync.Mutex
	fromStatus   map[statusHolding]bool
	// mu guards released, the releases whose holders are not removed yet.
	mu       sync.Mutex
	released map[release]bool
}

// statusHolding is one Service holding an address, as imported from its
// status: its UID and how it holds it (AddressHolder.As).
type statusHolding struct {
	addr netip.Addr
	uid  string
	as   string
}

// takeFromStatus reports whether the holding was imported from a status
// and not claimed since, and forgets it.
func (c *Claims) takeFromStatus(h statusHolding) bool {
	c.fromStatusMu.Lock()
	defer c.fromStatusMu.Unlock()
	imported := c.fromStatus[h]
	delete(c.fromStatus, h)
	return imported
}

// NewClaims returns Claims over cfg.
func NewClaims(cfg ClaimsConfig) *Claims {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FieldManager == "" {
		cfg.FieldManager = FieldManager
	}
	return &Claims{cfg: cfg, fromStatus: map[statusHolding]bool{}, released: map[release]bool{}}
}

// SetRecorder sets where Events about claims go. Call it before Ensure runs.
func (c *Claims) SetRecorder(r record.EventRecorder) { c.recorder = r }

func (c *Claims) repaired(action string) {
	if c.cfg.OnRepair != nil {
		c.cfg.OnRepair(action)
	}
}

func (c *Claims) event(svc *corev1.Service, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(svc, typ, reason, msg)
	}
}

// Import restores the allocations the AddressClaims record into core, then
// those that Services' statuses record without a claim (see
// Core.ImportClaims), and removes the holders whose Service is gone. It
// reads the claims (see ClaimsConfig.ImportFromCache), then lists the
// Services from the API server (not a cache), so a new leader sees its
// predecessor's last writes. Call it once, after
// SetModel and before any Ensure.
func (c *Claims) Import(ctx context.Context, core *Core) (ImportReport, error) {
	claims, err := c.listClaims(ctx)
	if err != nil {
		return ImportReport{}, err
	}
	// The Services are listed after the claims: see Core.ImportClaims.
	svcs, err := ListServicesForImport(ctx, c.cfg.Kube)
	if err != nil {
		return ImportReport{}, err
	}
	rep := core.ImportClaims(claims, svcs)
	c.fromStatusMu.Lock()
	for _, s := range rep.FromStatus {
		for _, a := range s.Addresses {
			c.fromStatus[statusHolding{a, s.Owner.UID, holderAs(s.Kind)}] = true
		}
	}
	c.fromStatusMu.Unlock()
	for _, st := range rep.Stale {
		h := st.Holder
		if err := c.removeHolders(ctx, st.Claim.Addr, func(x v1alpha1.AddressHolder) bool { return x.UID == h.UID }); err != nil {
			return rep, err
		}
		c.cfg.Logger.Info("removed an AddressClaim holder whose Service is gone", "address", st.Claim.Addr, "service", h.Namespace+"/"+h.Name, "uid", h.UID)
		c.repaired("staleHolderRemoved")
	}
	return rep, nil
}

// listClaims returns every valid claim: from the informer's cache with
// ClaimsConfig.ImportFromCache, else listed from the API server.
func (c *Claims) listClaims(ctx context.Context) ([]config.Claim, error) {
	var claims []config.Claim
	add := func(ac *v1alpha1.AddressClaim) {
		cl, err := config.ClaimOf(ac)
		if err != nil {
			c.cfg.Logger.Warn("ignoring an invalid AddressClaim", "claim", ac.Name, "err", err)
			c.repaired("invalidClaim")
			return
		}
		claims = append(claims, cl)
	}
	if c.cfg.ImportFromCache {
		objs, err := c.cfg.Lister.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("controller: list addressclaims from the cache: %w", err)
		}
		for _, ac := range objs {
			add(ac)
		}
		return claims, nil
	}
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.cfg.Client.HeraldV1alpha1().AddressClaims().List(ctx, opts)
	})
	p.PageSize = importPageSize
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		if ac, ok := obj.(*v1alpha1.AddressClaim); ok {
			add(ac)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("controller: list addressclaims: %w", err)
	}
	return claims, nil
}

// ErrClaimContended is returned when other allocators kept claiming the
// addresses chosen for a Service; the caller retries later.
var ErrClaimContended = errors.New("controller: addresses chosen for the service were claimed by another allocator")

// maxDecisions bounds how often Ensure decides again after losing an
// address to another allocator's claim.
const maxDecisions = 3

// Ensure decides both kinds of allocation of svc (Core.Ensure) and makes
// the AddressClaims record them, before the caller writes the status. When
// the status names an address whose claim lists svc, the Core follows it
// first, so that allocators that decided differently converge on what the
// Service shows. An address lost to another allocator's claim is decided
// again (at most maxDecisions times).
func (c *Claims) Ensure(ctx context.Context, core *Core, svc *corev1.Service) (ServiceDecision, error) {
	dropped := c.follow(core, svc)
	var d ServiceDecision
	var reshared [2]bool
	for range maxDecisions {
		d = core.Ensure(svc)
		// A change of terms a lost claim undid is still news to co-holders.
		reshared[0] = reshared[0] || d.LoadBalancer.Reshared
		reshared[1] = reshared[1] || d.ExternalIPs.Reshared
		d.LoadBalancer.Reshared, d.ExternalIPs.Reshared = reshared[0], reshared[1]
		// What following a claim took from the Service was released by
		// this Core too: Settle removes it from its claim.
		d.LoadBalancer.Previous = append(d.LoadBalancer.Previous, dropped[ipam.LoadBalancer]...)
		d.ExternalIPs.Previous = append(d.ExternalIPs.Previous, dropped[ipam.ExternalIP]...)
		c.markReleases(svc, d.LoadBalancer)
		c.markReleases(svc, d.ExternalIPs)
		lostLB, err := c.commit(ctx, core, svc, d.LoadBalancer)
		if err != nil {
			return d, err
		}
		lostExt, err := c.commit(ctx, core, svc, d.ExternalIPs)
		if err != nil {
			return d, err
		}
		if !lostLB && !lostExt {
			return d, nil
		}
	}
	return d, fmt.Errorf("%w: %s/%s", ErrClaimContended, svc.Namespace, svc.Name)
}

// EnsureLoadBalancer is Ensure for the load-balancer addresses only, for
// the cloud provider.
//
// The upstream service controller writes the status only after this
// returns, so the claims of addresses released here lose svc at a later call,
// once svc's status no longer names them: each call first settles what
// earlier calls released.
func (c *Claims) EnsureLoadBalancer(ctx context.Context, core *Core, svc *corev1.Service) (Decision, error) {
	if err := c.Settle(ctx, core, svc, ServiceDecision{LoadBalancer: Decision{Kind: ipam.LoadBalancer}, ExternalIPs: Decision{Kind: ipam.ExternalIP}}, false); err != nil {
		return Decision{}, err
	}
	dropped := c.follow(core, svc)
	var d Decision
	for range maxDecisions {
		d = core.EnsureLoadBalancer(svc)
		d.Previous = append(d.Previous, dropped[ipam.LoadBalancer]...)
		c.markReleases(svc, d)
		lost, err := c.commit(ctx, core, svc, d)
		if err != nil || !lost {
			return d, err
		}
	}
	return d, fmt.Errorf("%w: %s/%s", ErrClaimContended, svc.Namespace, svc.Name)
}

// follow makes core hold what svc shows and a claim backs: each address of
// its status (or spec.externalIPs) whose claim lists svc's UID, and, when
// the Core holds nothing for a kind, every claim that lists svc for it (an
// allocation another allocator recorded before it wrote the status).
func (c *Claims) follow(core *Core, svc *corev1.Service) (dropped map[ipam.Kind][]netip.Addr) {
	objs, err := c.cfg.Indexer.ByIndex(ClaimsByHolder, svc.Namespace+"/"+svc.Name)
	if err != nil || len(objs) == 0 {
		return nil
	}
	dropped = map[ipam.Kind][]netip.Addr{}
	shown := map[ipam.Kind][]netip.Addr{
		ipam.LoadBalancer: config.LoadBalancerAddresses(svc),
		ipam.ExternalIP:   config.ExternalIPAddresses(svc),
	}
	for _, obj := range objs {
		cl, err := config.ClaimOf(obj.(*v1alpha1.AddressClaim))
		if err != nil {
			continue
		}
		for _, h := range cl.Holders {
			if h.UID != string(svc.UID) || h.Namespace != svc.Namespace || h.Name != svc.Name {
				continue
			}
			kind := holderKind(h)
			if core.Holds(svc.Namespace, svc.Name, h.UID, kind, cl.Addr) {
				continue
			}
			_, holdsAny := core.Held(svc.Namespace, svc.Name, kind)
			if !slices.Contains(shown[kind], cl.Addr) && holdsAny {
				continue
			}
			before, _ := core.Held(svc.Namespace, svc.Name, kind)
			if _, err := core.AdoptClaim(cl, h, svc.CreationTimestamp.Time); err != nil {
				c.cfg.Logger.Warn("could not follow an AddressClaim", "address", cl.Addr, "service", svc.Namespace+"/"+svc.Name, "err", err)
			}
			for _, a := range before.Addresses {
				if !core.Holds(svc.Namespace, svc.Name, h.UID, kind, a) {
					dropped[kind] = append(dropped[kind], a)
				}
			}
		}
	}
	return dropped
}

// commit makes the claim of every address d holds list svc. It reports
// lost when an address turned out to be claimed by a holder svc may not
// share it with: the Core adopted that claim and svc must be decided again.
func (c *Claims) commit(ctx context.Context, core *Core, svc *corev1.Service, d Decision) (lost bool, err error) {
	if len(d.Addresses) == 0 {
		return false, nil
	}
	held, _ := core.Held(svc.Namespace, svc.Name, d.Kind)
	holder := holderOf(svc, d.Kind, held.Sharing)
	pool := d.Pool
	if held.Pool != "" || len(held.Addresses) > 0 {
		pool = held.Pool
	}
	for _, addr := range d.Addresses {
		l, err := c.claim(ctx, core, svc, addr, pool, holder, slices.Contains(d.Previous, addr))
		if err != nil {
			return false, err
		}
		lost = lost || l
	}
	return lost, nil
}

// maxClaimWrites bounds the optimistic-concurrency retries of one claim write.
const maxClaimWrites = 8

// claim makes the claim of addr list holder (svc), creating it with pool
// when it does not exist. held reports that svc held addr before this
// decision: a claim missing or lacking svc then was deleted or edited.
func (c *Claims) claim(ctx context.Context, core *Core, svc *corev1.Service, addr netip.Addr, pool string, holder v1alpha1.AddressHolder, held bool) (lost bool, err error) {
	client := c.cfg.Client.HeraldV1alpha1().AddressClaims()
	name := config.ClaimName(addr)
	obj, err := c.cfg.Lister.Get(name)
	if apierrors.IsNotFound(err) {
		obj, err = nil, nil
	}
	if err != nil {
		return false, fmt.Errorf("controller: get addressclaim %s: %w", name, err)
	}
	restored := func() {
		if imported := c.takeFromStatus(statusHolding{addr, holder.UID, holder.As}); held && !imported {
			c.event(svc, corev1.EventTypeWarning, ReasonAddressClaimRestored, fmt.Sprintf(
				"The AddressClaim %s of %s, which this Service holds, was deleted or no longer listed the Service; it is restored.", name, addr))
			c.repaired("claimRestored")
		}
	}
	for range maxClaimWrites {
		if obj == nil {
			_, err := client.Create(ctx, config.NewClaim(addr, pool, holder), metav1.CreateOptions{FieldManager: c.cfg.FieldManager})
			if err == nil {
				restored()
				return false, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return false, fmt.Errorf("controller: create addressclaim %s: %w", name, err)
			}
			if obj, err = c.liveClaim(ctx, name); err != nil {
				return false, err
			}
			continue
		}
		next, lost, err := c.merge(ctx, core, svc, obj, holder)
		if err != nil || lost {
			if lost {
				c.event(svc, corev1.EventTypeNormal, ReasonAddressClaimedElsewhere, fmt.Sprintf(
					"Another allocator claimed %s first; the Service is given another address.", addr))
				c.repaired("claimedElsewhere")
			}
			return lost, err
		}
		if next == nil {
			return false, nil // already recorded
		}
		_, err = client.Update(ctx, next, metav1.UpdateOptions{FieldManager: c.cfg.FieldManager})
		switch {
		case err == nil:
			if !slices.ContainsFunc(obj.Spec.Holders, func(h v1alpha1.AddressHolder) bool { return h.UID == holder.UID && h.As == holder.As }) {
				restored()
			}
			return false, nil
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
			if obj, err = c.liveClaim(ctx, name); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("controller: update addressclaim %s: %w", name, err)
		}
	}
	return false, fmt.Errorf("controller: addressclaim %s: too many concurrent writes", name)
}

// liveClaim reads a claim from the API server; nil when it does not exist.
func (c *Claims) liveClaim(ctx context.Context, name string) (*v1alpha1.AddressClaim, error) {
	obj, err := c.cfg.Client.HeraldV1alpha1().AddressClaims().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controller: get addressclaim %s: %w", name, err)
	}
	return obj, nil
}

// merge returns obj with holder added (or updated), nil when obj already
// records it, or lost when obj lists a live holder that the Core did not know
// and svc may not share the address with. Holders whose Service is gone are
// dropped; live holders the Core did not know are adopted.
func (c *Claims) merge(ctx context.Context, core *Core, svc *corev1.Service, obj *v1alpha1.AddressClaim, holder v1alpha1.AddressHolder) (next *v1alpha1.AddressClaim, lost bool, err error) {
	cl, err := config.ClaimOf(obj)
	if err != nil {
		return nil, false, err
	}
	kind := ipam.LoadBalancer
	if holder.As == v1alpha1.HolderExternalIP {
		kind = ipam.ExternalIP
	}
	var keep []v1alpha1.AddressHolder
	recorded := false
	for i, h := range obj.Spec.Holders {
		ch := cl.Holders[i]
		if h.Namespace == holder.Namespace && h.Name == holder.Name && h.As == holder.As {
			if h.UID == holder.UID && equality.Semantic.DeepEqual(h, holder) {
				recorded = true
			}
			if h.UID == holder.UID {
				continue // replaced by holder below
			}
		}
		if core.Holds(h.Namespace, h.Name, h.UID, holderKind(ch), cl.Addr) {
			keep = append(keep, h)
			continue
		}
		gone, created, err := c.gone(ctx, h)
		if err != nil {
			return nil, false, err
		}
		if gone {
			c.cfg.Logger.Info("dropping an AddressClaim holder whose Service is gone", "address", cl.Addr, "service", h.Namespace+"/"+h.Name, "uid", h.UID)
			c.repaired("staleHolderRemoved")
			continue
		}
		if _, err := core.AdoptClaim(cl, ch, created.Time); err != nil {
			c.cfg.Logger.Warn("could not adopt an AddressClaim holder", "address", cl.Addr, "service", h.Namespace+"/"+h.Name, "err", err)
		}
		keep = append(keep, h)
	}
	// The Core may have given the address to a holder svc may not share it
	// with since it decided for svc: an adoption here, or one by a worker
	// following another Service's claim meanwhile. Only a holder the Core
	// still holds at the address may join the claim.
	if !core.Holds(svc.Namespace, svc.Name, string(svc.UID), kind, cl.Addr) {
		return nil, true, nil
	}
	if recorded && len(keep)+1 == len(obj.Spec.Holders) {
		return nil, false, nil
	}
	keep = append(keep, holder)
	sortHolders(keep)
	next = obj.DeepCopy()
	next.Spec.Holders = keep
	next.Spec.HolderCount = int32(len(keep))
	return next, false, nil
}

// gone reports whether the Service h names no longer exists (or is another
// Service under the same name): UIDs never come back, so such a holder can
// be removed. It also returns the Service's creation time when it lives.
func (c *Claims) gone(ctx context.Context, h v1alpha1.AddressHolder) (bool, metav1.Time, error) {
	if c.cfg.Services != nil {
		if s, err := c.cfg.Services.Services(h.Namespace).Get(h.Name); err == nil && string(s.UID) == h.UID {
			return false, s.CreationTimestamp, nil
		}
	}
	s, err := c.cfg.Kube.CoreV1().Services(h.Namespace).Get(ctx, h.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, metav1.Time{}, nil
	}
	if err != nil {
		return false, metav1.Time{}, fmt.Errorf("controller: get service %s/%s: %w", h.Namespace, h.Name, err)
	}
	return string(s.UID) != h.UID, s.CreationTimestamp, nil
}

// Settle removes svc from the claims of addresses this Core released (d's
// Previous addresses it no longer holds), once its status (svc, as written)
// no longer names them. With orphans, it also removes svc from every claim
// of an address the Core does not hold and svc does not show (the repair
// pass found them so twice: another allocator's leftovers). Holders of the
// same name with another UID are removed once a live read confirms that
// Service is gone. A claim listing svc that this Core never held is
// otherwise left alone: another allocator may be about to write the status
// that names it.
func (c *Claims) Settle(ctx context.Context, core *Core, svc *corev1.Service, d ServiceDecision, orphans bool) error {
	objs, err := c.cfg.Indexer.ByIndex(ClaimsByHolder, svc.Namespace+"/"+svc.Name)
	if err != nil || len(objs) == 0 {
		return err
	}
	status := config.LoadBalancerAddresses(svc)
	external := config.ExternalIPAddresses(svc)
	for _, obj := range objs {
		cl, err := config.ClaimOf(obj.(*v1alpha1.AddressClaim))
		if err != nil {
			continue
		}
		for _, h := range cl.Holders {
			if h.Namespace != svc.Namespace || h.Name != svc.Name {
				continue
			}
			if h.UID != string(svc.UID) {
				gone, _, err := c.gone(ctx, v1alpha1.AddressHolder{Namespace: h.Namespace, Name: h.Name, UID: h.UID})
				if err != nil {
					return err
				}
				if gone {
					if err := c.removeHolders(ctx, cl.Addr, func(x v1alpha1.AddressHolder) bool { return x.UID == h.UID }); err != nil {
						return err
					}
					c.repaired("staleHolderRemoved")
				}
				continue
			}
			dec := d.LoadBalancer
			if h.ExternalIP {
				dec = d.ExternalIPs
			}
			if slices.Contains(dec.Addresses, cl.Addr) || core.Holds(h.Namespace, h.Name, h.UID, holderKind(h), cl.Addr) {
				continue
			}
			rel := release{uid: h.UID, ext: h.ExternalIP, addr: cl.Addr}
			if slices.Contains(dec.Previous, cl.Addr) {
				c.markReleased(rel)
			}
			if !h.ExternalIP && slices.Contains(status, cl.Addr) {
				continue // the status still names it: release after it no longer does
			}
			released := c.isReleased(rel)
			orphan := orphans && (h.ExternalIP || !slices.Contains(status, cl.Addr)) &&
				(!h.ExternalIP || !slices.Contains(external, cl.Addr))
			if !released && !orphan {
				continue // not this Core's to release
			}
			if orphan && !released {
				c.cfg.Logger.Info("removing an AddressClaim holder that no allocator completed", "address", cl.Addr, "service", svc.Namespace+"/"+svc.Name)
				c.repaired("orphanRemoved")
			}
			uid, ext := h.UID, h.ExternalIP
			if err := c.removeHolders(ctx, cl.Addr, func(x v1alpha1.AddressHolder) bool {
				return x.UID == uid && (x.As == v1alpha1.HolderExternalIP) == ext
			}); err != nil {
				return err
			}
			c.forgetReleased(rel)
		}
	}
	return nil
}

// release is an address a Core released for a Service (by UID), whose
// claim loses the holder once the Service's status no longer names it.
type release struct {
	uid  string
	ext  bool
	addr netip.Addr
}

// markReleases marks what d released of svc.
func (c *Claims) markReleases(svc *corev1.Service, d Decision) {
	for _, a := range d.Previous {
		if !slices.Contains(d.Addresses, a) {
			c.markReleased(release{uid: string(svc.UID), ext: d.Kind == ipam.ExternalIP, addr: a})
		}
	}
}

// markReleased remembers a release until its holder is removed: the
// upstream service controller writes the status only after the cloud
// provider returns, so the removal waits for a later Settle.
func (c *Claims) markReleased(r release) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released[r] = true
}

func (c *Claims) isReleased(r release) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released[r]
}

// forgetReleasesOf drops the pending releases of the Services named
// namespace/name in objs' holders, except the one with UID live.
func (c *Claims) forgetReleasesOf(objs []any, namespace, name, live string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, obj := range objs {
		for _, h := range obj.(*v1alpha1.AddressClaim).Spec.Holders {
			if h.Namespace == namespace && h.Name == name && h.UID != live {
				for r := range c.released {
					if r.uid == h.UID {
						delete(c.released, r)
					}
				}
			}
		}
	}
}

func (c *Claims) forgetReleased(r release) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.released, r)
}

// Release forgets the Service namespace/name, which the Services informer
// no longer has: the Core releases what it held, and the holders of that
// name are removed from their claims, except one whose Service a live read
// still finds (the informer lags behind a Service created again).
func (c *Claims) Release(ctx context.Context, core *Core, namespace, name string) (bool, error) {
	lb := core.ReleaseLoadBalancer(namespace, name)
	ext := core.ReleaseExternalIPs(namespace, name)
	objs, err := c.cfg.Indexer.ByIndex(ClaimsByHolder, namespace+"/"+name)
	if err != nil || len(objs) == 0 {
		return lb || ext, err
	}
	live := ""
	s, err := c.cfg.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		live = string(s.UID)
	case !apierrors.IsNotFound(err):
		return lb || ext, fmt.Errorf("controller: get service %s/%s: %w", namespace, name, err)
	}
	c.forgetReleasesOf(objs, namespace, name, live)
	err = c.removeFromClaims(ctx, objs, func(x v1alpha1.AddressHolder) bool {
		return x.Namespace == namespace && x.Name == name && x.UID != live
	})
	return lb || ext, err
}

// ReleaseLoadBalancer releases svc's load-balancer addresses in core and
// removes svc from their claims, for the cloud provider's
// EnsureLoadBalancerDeleted.
func (c *Claims) ReleaseLoadBalancer(ctx context.Context, core *Core, svc *corev1.Service) error {
	core.ReleaseLoadBalancer(svc.Namespace, svc.Name)
	objs, err := c.cfg.Indexer.ByIndex(ClaimsByHolder, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return err
	}
	return c.removeFromClaims(ctx, objs, func(x v1alpha1.AddressHolder) bool {
		return x.UID == string(svc.UID) && x.As == v1alpha1.HolderLoadBalancer
	})
}

// removeFromClaims removes the holders match selects from each claim of objs.
func (c *Claims) removeFromClaims(ctx context.Context, objs []any, match func(v1alpha1.AddressHolder) bool) error {
	for _, obj := range objs {
		addr, err := config.ParseClaimName(obj.(*v1alpha1.AddressClaim).Name)
		if err != nil {
			continue
		}
		if err := c.removeHolders(ctx, addr, match); err != nil {
			return err
		}
	}
	return nil
}

// removeHolders removes the holders match selects from the claim of addr,
// and deletes the claim when none is left, with preconditions so that a
// holder added meanwhile is never lost.
func (c *Claims) removeHolders(ctx context.Context, addr netip.Addr, match func(v1alpha1.AddressHolder) bool) error {
	client := c.cfg.Client.HeraldV1alpha1().AddressClaims()
	name := config.ClaimName(addr)
	obj, err := c.cfg.Lister.Get(name)
	if apierrors.IsNotFound(err) {
		obj, err = c.liveClaim(ctx, name)
	}
	if err != nil {
		return err
	}
	for range maxClaimWrites {
		if obj == nil {
			return nil
		}
		keep := slices.DeleteFunc(slices.Clone(obj.Spec.Holders), match)
		if len(keep) == len(obj.Spec.Holders) {
			return nil
		}
		if len(keep) == 0 {
			uid, rv := obj.UID, obj.ResourceVersion
			err = client.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		} else {
			next := obj.DeepCopy()
			next.Spec.Holders, next.Spec.HolderCount = keep, int32(len(keep))
			_, err = client.Update(ctx, next, metav1.UpdateOptions{FieldManager: c.cfg.FieldManager})
		}
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err):
			if obj, err = c.liveClaim(ctx, name); err != nil {
				return err
			}
		default:
			return fmt.Errorf("controller: remove holders from addressclaim %s: %w", name, err)
		}
	}
	return fmt.Errorf("controller: addressclaim %s: too many concurrent writes", name)
}

// PoolClaims returns how many claims name pool.
func (c *Claims) PoolClaims(pool string) int {
	objs, _ := c.cfg.Indexer.ByIndex(ClaimsByPool, pool)
	return len(objs)
}

// HolderKeys returns the namespace/name keys of a claim's holders, for
// queueing them when the claim changes.
func HolderKeys(obj any) []string {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	cl, ok := obj.(*v1alpha1.AddressClaim)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(cl.Spec.Holders))
	for _, h := range cl.Spec.Holders {
		keys = append(keys, h.Namespace+"/"+h.Name)
	}
	return keys
}
