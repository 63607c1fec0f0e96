package controller

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/ipam"
)

// Core makes every allocation decision Herald takes, for the controller's
// reconcile loop and for the k8s.io/cloud-provider LoadBalancer alike. It
// holds the IPAM state and the configuration model; it does no I/O, and is
// safe for concurrent use (calls for one Service must not run concurrently,
// which a workqueue guarantees).
//
// The order of use is: SetModel, Import every existing Service, then Ensure
// (or EnsureLoadBalancer / EnsureExternalIPs) and Release as Services change.
type Core struct {
	class string
	alloc *ipam.Allocator
	model atomic.Pointer[config.Model]
}

// NewCore returns a Core serving Services of loadBalancerClass class (""
// serves only Services without a class), with no pools.
func NewCore(class string) *Core {
	c := &Core{class: class, alloc: ipam.New()}
	c.model.Store(config.Build(config.Snapshot{}))
	return c
}

// Class returns the loadBalancerClass the Core serves.
func (c *Core) Class() string { return c.class }

// SetModel installs a new configuration. Pools may grow, shrink or go; no
// address in use moves (see ipam.Allocator.SetPools). The error reports
// pools the IPAM had to leave out; the rest is applied.
func (c *Core) SetModel(m *config.Model) error {
	err := c.alloc.SetPools(m.Pools())
	c.model.Store(m)
	if err != nil {
		return fmt.Errorf("controller: set pools: %w", err)
	}
	return nil
}

// Model returns the configuration in use.
func (c *Core) Model() *config.Model { return c.model.Load() }

// Serves reports whether the Core handles svc (see the package function Serves).
func (c *Core) Serves(svc *corev1.Service) bool { return Serves(svc, c.class) }

// Desired translates svc with the namespace labels of the current model.
func (c *Core) Desired(svc *corev1.Service) Intent {
	return Desired(svc, c.model.Load().Subject(svc.Namespace, svc.Labels), c.class)
}

// Decision is what the Core decided for one kind of allocation of a Service.
type Decision struct {
	// Kind is ipam.LoadBalancer or ipam.ExternalIP.
	Kind ipam.Kind
	// Wanted reports whether the Service asks for this kind at all. When it
	// does not, whatever it held was released and Condition is empty.
	Wanted bool
	// Addresses are what the Service holds after the decision, in the order
	// of its families: the load-balancer ingress to write, or the external
	// IPs it may have announced.
	Addresses []netip.Addr
	// Pool is the pool Addresses are counted in.
	Pool string
	// Previous are the addresses the Service held before the decision.
	Previous []netip.Addr
	// WriteExternalIPs is set when Addresses were allocated for the
	// allocate-external-ip annotation and spec.externalIPs is still empty:
	// the caller writes them there.
	WriteExternalIPs bool
	// Condition is the Service condition the decision implies (Type,
	// Status, Reason, Message; the caller sets ObservedGeneration and
	// LastTransitionTime). Status is True while the Service holds addresses.
	Condition metav1.Condition
	// Err, when set, says why the Service does not have what it asks for: a
	// *RefusalError for its own invalid input, or the ipam error (check it
	// with errors.Is against the ipam sentinels).
	Err error
	// Waiting reports that the Service lacks an address that capacity
	// appearing (a new or grown pool, a released address) could give it.
	Waiting bool
	// Changed reports that the Service's held addresses changed (pool
	// usage changed).
	Changed bool
	// Freed reports that addresses the Service held were released: Services
	// that are waiting may now be served.
	Freed bool
	// Reshared reports that the Service shared, or now shares, an address
	// and that its addresses or sharing terms changed: whether its
	// co-holders conflict with it may have changed, so their decisions are
	// taken again (Core.CoHolders lists them).
	Reshared bool
}

// Ingress returns the status.loadBalancer.ingress the decision implies.
func (d Decision) Ingress() []corev1.LoadBalancerIngress { return IngressFor(d.Addresses) }

// RefusalError is the error of a Decision refused because of the Service's
// own input.
type RefusalError struct{ Refusal }

func (e *RefusalError) Error() string { return "controller: " + e.Message }

// ServiceDecision is what the Core decided for a Service.
type ServiceDecision struct {
	LoadBalancer, ExternalIPs Decision
}

// Ensure decides both kinds of allocation for svc (see EnsureLoadBalancer
// and EnsureExternalIPs).
func (c *Core) Ensure(svc *corev1.Service) ServiceDecision {
	in := c.Desired(svc)
	return ServiceDecision{
		LoadBalancer: c.ensure(svc, in.LoadBalancer, ipam.LoadBalancer),
		ExternalIPs:  c.ensure(svc, in.ExternalIPs, ipam.ExternalIP),
	}
}

// EnsureLoadBalancer makes svc hold the load-balancer addresses it asks for,
// or releases them when it asks for none (not of type LoadBalancer, or of a
// class the Core does not serve). It is idempotent: an unchanged Service gets
// the same Decision and nothing moves. On failure the Service keeps what it
// held. Cost: one ipam.Allocate.
func (c *Core) EnsureLoadBalancer(svc *corev1.Service) Decision {
	return c.ensure(svc, c.Desired(svc).LoadBalancer, ipam.LoadBalancer)
}

// EnsureExternalIPs claims the addresses of svc's spec.externalIPs, or
// allocates one when the Service asks for it and has none (the caller writes
// it into spec.externalIPs). A claim is all or nothing, and re-checked every
// time: when any address is refused none is claimed, so speakers announce
// none.
func (c *Core) EnsureExternalIPs(svc *corev1.Service) Decision {
	return c.ensure(svc, c.Desired(svc).ExternalIPs, ipam.ExternalIP)
}

// ReleaseLoadBalancer frees what the Service namespace/name holds for its
// load balancer; it reports whether it held anything.
func (c *Core) ReleaseLoadBalancer(namespace, name string) bool {
	return c.alloc.Release(ipam.Owner{Namespace: namespace, Name: name}, ipam.LoadBalancer)
}

// ReleaseExternalIPs frees the external IPs the Service namespace/name holds.
func (c *Core) ReleaseExternalIPs(namespace, name string) bool {
	return c.alloc.Release(ipam.Owner{Namespace: namespace, Name: name}, ipam.ExternalIP)
}

// Held returns what the Service namespace/name holds for kind.
func (c *Core) Held(namespace, name string, kind ipam.Kind) (ipam.Result, bool) {
	return c.alloc.Addresses(ipam.Owner{Namespace: namespace, Name: name}, kind)
}

// Stats returns the IPAM's exact per-pool counts.
func (c *Core) Stats() ipam.Stats { return c.alloc.Stats() }

// InUse returns the number of allocations counted in the named pool.
func (c *Core) InUse(pool string) int { return c.alloc.InUse(pool) }

// OutsidePool lists the held addresses outside their pool.
func (c *Core) OutsidePool() []ipam.Outside { return c.alloc.OutsidePool() }

// Lookup returns who holds addr.
func (c *Core) Lookup(addr netip.Addr) (ipam.Holding, bool) { return c.alloc.Lookup(addr) }

func (c *Core) ensure(svc *corev1.Service, w *Want, kind ipam.Kind) Decision {
	owner := OwnerOf(svc)
	before, had := c.alloc.Addresses(owner, kind)
	d := c.decide(svc, w, kind, owner, before, had)
	if before.Sharing != nil || w != nil && w.Request.Sharing != nil {
		after, _ := c.alloc.Addresses(owner, kind)
		d.Reshared = !slices.Equal(before.Addresses, after.Addresses) || !before.Sharing.Equal(after.Sharing)
	}
	return d
}

// CoHolders returns the keys (namespace/name) of the Services other than
// namespace/name that hold any of addrs, sorted and without repeats. Cost
// O(a·(log R + h)) for a addresses of h holders each.
func (c *Core) CoHolders(namespace, name string, addrs ...[]netip.Addr) []string {
	var keys []string
	for _, list := range addrs {
		for _, a := range list {
			h, _ := c.alloc.Lookup(a)
			for _, o := range h.Holders {
				if o.Owner.Namespace != namespace || o.Owner.Name != name {
					keys = append(keys, o.Owner.Namespace+"/"+o.Owner.Name)
				}
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// decide takes the decision of ensure for owner, which held before (had).
func (c *Core) decide(svc *corev1.Service, w *Want, kind ipam.Kind, owner ipam.Owner, before ipam.Result, had bool) Decision {
	d := Decision{Kind: kind, Previous: before.Addresses}
	if w == nil {
		d.Changed = c.alloc.Release(owner, kind)
		d.Freed = d.Changed
		return d
	}
	d.Wanted = true
	condType, verb, okReason := config.ConditionAddressAllocated, config.VerbAllocated, ReasonAllocated
	if kind == ipam.ExternalIP {
		condType, verb, okReason = config.ConditionExternalIPsAccepted, config.VerbAccepted, ReasonExternalIPsAccepted
		if w.Requested {
			// Herald chose the address: the grant says so, as the Service
			// status contract (config.ConditionExternalIPsAccepted) has it.
			verb, okReason = config.VerbAllocated, ReasonExternalIPAllocated
		}
	}
	d.Condition.Type = condType

	// keep reports a failure that leaves the Service with what it held.
	keep := func(reason, problem string, err error) Decision {
		d.Addresses, d.Pool, d.Err = before.Addresses, before.Pool, err
		d.Condition.Reason = reason
		if had {
			d.Condition.Status = metav1.ConditionTrue
			d.Condition.Message = config.GrantSentence(verb, before.Addresses, before.Pool) + " " + problem +
				" The Service keeps " + plural(len(before.Addresses), "this address", "these addresses") + " until that is resolved."
		} else {
			d.Condition.Status = metav1.ConditionFalse
			d.Condition.Message = problem
		}
		return d
	}

	if w.Refusal != nil {
		err := &RefusalError{*w.Refusal}
		if kind == ipam.ExternalIP && w.Refusal.Reason != ReasonInvalidAnnotation {
			// spec.externalIPs itself is unusable: a claim is all or nothing.
			d.Changed = c.alloc.Release(owner, kind)
			d.Freed = d.Changed
			d.Err = err
			d.Condition.Status, d.Condition.Reason = metav1.ConditionFalse, w.Refusal.Reason
			d.Condition.Message = sentence(w.Refusal.Message)
			return d
		}
		if had {
			// The allocation is frozen, but the sharing terms the Service
			// states now decide who may join it (when its sharers allow).
			c.alloc.Retag(owner, kind, w.Request.Sharing)
		}
		return keep(w.Refusal.Reason, sentence(w.Refusal.Message), err)
	}
	req := w.Request
	if kind == ipam.LoadBalancer && had && req.Pool != "" && before.Pool == req.Pool {
		// The allocation already honours the named pool. Dropping the
		// restriction keeps an address that an edit moved out of the pool,
		// since editing a pool never moves an address in use.
		req.Pool = ""
	}
	res, err := c.alloc.Allocate(req)
	if err != nil {
		d.Waiting = true
		reason := reasonFor(err, kind)
		msg := userMessage(err)
		if ie := (*ipam.InUseError)(nil); errors.As(err, &ie) && ie.OtherNamespace {
			// The same words whatever the holder and its terms: they do not
			// tell whether the key matched in the other namespace.
			msg += " " + crossNamespaceRule
		}
		if kind == ipam.ExternalIP && !w.Allocate {
			// A refused claim is not held: speakers must not announce it.
			d.Changed = c.alloc.Release(owner, kind)
			d.Freed = d.Changed
			d.Err = err
			d.Condition.Status, d.Condition.Reason = metav1.ConditionFalse, reason
			d.Condition.Message = "Not claimed, so not to be announced: " + config.JoinAddrs(w.Request.Addresses) + ". " + msg
			return d
		}
		return keep(reason, msg, err)
	}
	d.Addresses, d.Pool = res.Addresses, res.Pool
	d.Changed = !slices.Equal(before.Addresses, res.Addresses)
	for _, a := range before.Addresses {
		d.Freed = d.Freed || !slices.Contains(res.Addresses, a)
	}
	d.Condition.Status = metav1.ConditionTrue
	d.Condition.Reason = okReason
	d.Condition.Message = config.GrantSentence(verb, res.Addresses, res.Pool)
	if res.Degraded != nil {
		d.Waiting = true
		d.Err = res.Degraded
		if kind == ipam.LoadBalancer {
			d.Condition.Reason = ReasonPartiallyAllocated
		}
		d.Condition.Message += " " + userMessage(res.Degraded)
	}
	if res.Conflict != nil {
		// The Service keeps an address its co-holders could not share with
		// it if it asked now: an edit of another field, or an upgrade, never
		// moves an address in use. It is told what to change.
		d.Err = res.Conflict
		d.Condition.Reason = reasonFor(res.Conflict, kind)
		d.Condition.Message += " " + keptConflictMessage(svc, res.Conflict)
	}
	if kind == ipam.ExternalIP && w.Allocate {
		d.WriteExternalIPs = true
	}
	return d
}

// crossNamespaceRule is added to every refusal caused by a Service of
// another namespace.
var crossNamespaceRule = "Services of different namespaces share an address only when both set the same " +
	config.AnnotationSharingKey + " and each lists the other's namespace in " + config.AnnotationSharingCrossNamespace + "."

// keptConflictMessage says why a Service keeps an address its co-holders
// could not share with it now, and what to change. For Services of other
// namespaces it names their namespaces only (the annotation value the
// Service needs), never a Service, key or port.
func keptConflictMessage(svc *corev1.Service, err error) string {
	var ni *ipam.NotOptedInError
	if !errors.As(err, &ni) {
		return userMessage(err) + " The Service keeps the address, and no other Service joins it on these terms, until that is resolved."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is shared with Services of other namespaces, as it was before Services of different namespaces had to opt in to share; it stays.", ni.Addr)
	if len(ni.Missing) > 0 {
		allowed := validAnnotation(svc, config.AnnotationSharingCrossNamespace).SharingNamespaces
		value := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(allowed), ni.Missing...))))
		fmt.Fprintf(&b, " To keep sharing it, add the annotation %s: %q to this Service (it shares with namespace%s %s).",
			config.AnnotationSharingCrossNamespace, strings.Join(value, ","), plural(len(ni.Missing), "", "s"), strings.Join(ni.Missing, ", "))
	}
	if ni.Unreciprocated {
		fmt.Fprintf(&b, " The Services of the other namespaces must list %q in their %s too.", svc.Namespace, config.AnnotationSharingCrossNamespace)
	}
	b.WriteString(" Until both sides allow each other, no other Service of another namespace joins it.")
	return b.String()
}

// userMessage turns an ipam error into a sentence for the Service's owner:
// the error's text without the "ipam: <operation> <namespace>/<name>: "
// prefix, which the Service's own events and conditions need not repeat. It
// only shortens the text; decisions are taken with errors.Is.
func userMessage(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "ipam: "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			msg = after
		}
	}
	return sentence(msg)
}

// maxMessage bounds a condition or event message: long enough for any
// decision, short enough that an absurd annotation is not echoed in full.
const maxMessage = 1024

// sentence makes msg one capitalised line that ends with a period and is at
// most maxMessage bytes long.
func sentence(msg string) string {
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n", "; "))
	if len(msg) > maxMessage {
		cut := maxMessage - len(" (truncated).")
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + " (truncated)"
	}
	if msg == "" {
		return msg
	}
	r, size := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[size:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ImportReport says what Import restored.
type ImportReport struct {
	// Services is the number of Services examined, Allocations the number of
	// allocations restored.
	Services, Allocations int
	// Conflicts are the addresses that could not be restored because an
	// older Service holds them (the younger one is allocated again).
	Conflicts []error
	// Displaced are the younger Services that lost an address to an older
	// one during the import.
	Displaced []ipam.Displacement
	// Claims is the number of AddressClaims imported (see ImportClaims).
	Claims int
	// Stale are the claim holders whose Service is gone (or is another
	// Service under the same name): they were not imported, and the caller
	// removes them from their claims.
	Stale []StaleHolder
	// FromStatus are the allocations restored from Services' statuses that
	// no AddressClaim records (a cluster upgraded from a release without
	// claims): the caller creates their claims.
	FromStatus []StatusImport
}

// StaleHolder is a claim holder whose Service is gone.
type StaleHolder struct {
	Claim  config.Claim
	Holder config.ClaimHolder
}

// StatusImport is an allocation imported from a Service's status.
type StatusImport struct {
	Owner     ipam.Owner
	Kind      ipam.Kind
	Addresses []netip.Addr
}

// Import restores every allocation the Services record, oldest Service
// first (creation time, then UID), so that a restart or a leader change
// moves nothing and conflicts always resolve the same way: the older Service
// keeps a contested address. It reads status.loadBalancer.ingress of the
// LoadBalancer Services the Core serves, and the external IPs a True
// ExternalIPsAccepted condition lists. Call it once, after SetModel and
// before any Ensure. Cost: O(S log S) plus one ipam.Import per allocation.
func (c *Core) Import(services []*corev1.Service) ImportReport {
	return c.importStatuses(services, nil)
}

// importStatuses is Import, leaving out the addresses claimed reports true
// for (their AddressClaims were imported already and outrank statuses).
func (c *Core) importStatuses(services []*corev1.Service, claimed func(netip.Addr) bool) ImportReport {
	svcs := make([]*corev1.Service, 0, len(services))
	for _, s := range services {
		if s != nil && c.Serves(s) {
			svcs = append(svcs, s)
		}
	}
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time), strings.Compare(string(a.UID), string(b.UID)),
			strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	var rep ImportReport
	for _, svc := range svcs {
		rep.Services++
		in := Desired(svc, ipam.Subject{Namespace: svc.Namespace}, c.class)
		if in.LoadBalancer != nil {
			if addrs := unclaimed(config.LoadBalancerAddresses(svc), claimed); len(addrs) > 0 {
				g, _ := config.GrantOf(svc, config.ConditionAddressAllocated)
				c.importOne(&rep, in.LoadBalancer.Request, g.Pool, addrs)
			}
		}
		if in.ExternalIPs != nil {
			if addrs := unclaimed(config.AcceptedExternalIPs(svc), claimed); len(addrs) > 0 {
				g, _ := config.GrantOf(svc, config.ConditionExternalIPsAccepted)
				c.importOne(&rep, in.ExternalIPs.Request, g.Pool, addrs)
			}
		}
	}
	return rep
}

// unclaimed returns the addresses of addrs that claimed does not report.
func unclaimed(addrs []netip.Addr, claimed func(netip.Addr) bool) []netip.Addr {
	if claimed == nil {
		return addrs
	}
	return slices.DeleteFunc(addrs, claimed)
}

func (c *Core) importOne(rep *ImportReport, req ipam.Request, pool string, addrs []netip.Addr) {
	req.Pool = pool
	res, err := c.alloc.Import(req, addrs)
	if len(res.Addresses) > 0 {
		rep.Allocations++
		rep.FromStatus = append(rep.FromStatus, StatusImport{Owner: req.Owner, Kind: req.Kind, Addresses: res.Addresses})
	}
	rep.Displaced = append(rep.Displaced, res.Displaced...)
	if err != nil {
		rep.Conflicts = append(rep.Conflicts, err)
	}
}
