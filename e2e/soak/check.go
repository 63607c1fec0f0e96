package soak

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The invariants, numbered as in issue 14.
const (
	// InvSharing: no address is held by two Services unless they may share it.
	InvSharing = 1
	// InvPool: every address held lies in a pool that admits its Service, or
	// an edit left it outside and the pool says so (AddressesOutsidePool).
	InvPool = 2
	// InvWire: once settled, a held layer-2 address is answered by exactly one
	// node that may announce it, and a BGP address has exactly the eligible
	// nodes as next hops; addresses nobody holds are not announced.
	InvWire = 3
	// InvLocal: a Local Service is never announced by a node without a ready
	// endpoint (once settled, so after the takeover delay).
	InvLocal = 4
	// InvStable: no address changes unless its Service asked for a change or
	// went away.
	InvStable = 5
	// InvCounts: pool usage counts equal the live holders, once settled.
	InvCounts = 6
	// InvOutage: a client of an untouched Service sees no outage but within
	// the failover bound of a fault on the node carrying it.
	InvOutage = 7
	// InvClaims: once claims are in use (docs/claims.md), every address a
	// settled Service holds has an AddressClaim listing that Service.
	InvClaims = 8
)

// InvariantNames are short names for reports.
var InvariantNames = map[int]string{
	InvSharing: "sharing", InvPool: "pool admits", InvWire: "wire", InvLocal: "local policy",
	InvStable: "address stable", InvCounts: "pool counts", InvOutage: "client outage", InvClaims: "claims",
}

// Change is one change the soak made: to one Service (its spec or its
// endpoints) or, with Service "", to something every address may depend on
// (a pool, an advertisement, a fault). Until Settle after it (Config.Settle
// when zero), the things it touches are not judged by the settled invariants.
type Change struct {
	Time    time.Time
	Service string // "namespace/name", or "" for a global change
	What    string
	Settle  time.Duration
	// Controller marks a global change that only the controller's work
	// depends on (a leader fault): it holds back the invariants on
	// allocations and pool status (2, 6, 8), not the wire, since speakers
	// announce from the Services without the controller.
	Controller bool
	// Endpoints marks a change to a Service's endpoints only, which cannot
	// change whom it may share an address with (invariant 1 reads the
	// namespace, key and ports).
	Endpoints bool
}

// Violation is one invariant found broken.
type Violation struct {
	Time      time.Time
	Invariant int
	// Subject is what it is about (an address, a Service, a pool); with
	// Invariant and Kind it identifies the violation across checks.
	Subject string
	// Kind is a short stable description ("two answer", "moved").
	Kind string
	// Objects name the Services, pools and nodes involved.
	Objects []string
	// Detail is the observed evidence.
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s invariant %d (%s) %s: %s [%s] %s", v.Time.UTC().Format("15:04:05.000"), v.Invariant,
		InvariantNames[v.Invariant], v.Subject, v.Kind, strings.Join(v.Objects, ", "), v.Detail)
}

// Config configures a Checker.
type Config struct {
	// Settle is how long after a change the settled invariants (3, 4, 6, and
	// 1 for the Services changed) wait before they judge what it touched.
	Settle time.Duration
	// L2 and BGP are the ranges announced over layer 2 and over BGP.
	L2, BGP []netip.Prefix
	// Forget is how long an address nobody holds any more is still asked
	// for on the wire (default 60 s).
	Forget time.Duration
	// BGPSessionBound is how long a usable node may stay without an
	// Established session with the router (default 90 s).
	BGPSessionBound time.Duration
}

// Checker checks the invariants over a sequence of snapshots. It keeps what
// it needs of the past (when each thing last changed, which addresses each
// Service was given while asking what); it is a pure function of the
// snapshots and changes given to Observe, and is used from one goroutine.
type Checker struct {
	cfg Config

	quietGlobal time.Time            // when every global change so far has settled
	quietCtrl   time.Time            // when every controller change so far has settled
	quietAny    time.Time            // when every change to any Service has settled
	quiet       map[string]time.Time // by Service key, when its changes have settled
	quietSpec   map[string]time.Time // by Service key, when its changes other than endpoints have settled
	holders     map[netip.Addr]since // holder fingerprint of each held address
	released    map[netip.Addr]time.Time
	lastHolders map[netip.Addr]string            // who held each released address
	given       map[string]map[netip.Addr]string // by UID: each held address and the Asks it was first seen with
	pools       map[string]since
	usable      map[string]since     // by node: "true"/"false" and since when
	bgpDown     map[string]time.Time // by usable node: since when its session has been seen down
	// frozen holds, by UID of a Service with an invalid annotation, the UIDs
	// of the Services that shared an address with it when it froze: Herald
	// keeps them together whatever the frozen Service's terms say since.
	frozen map[string]map[string]bool

	// Checks counts the individual checks made, by invariant.
	Checks map[int]int
}

type since struct {
	fp string
	t  time.Time
}

// NewChecker returns a Checker.
func NewChecker(cfg Config) *Checker {
	if cfg.Forget == 0 {
		cfg.Forget = 60 * time.Second
	}
	if cfg.BGPSessionBound == 0 {
		cfg.BGPSessionBound = 90 * time.Second
	}
	return &Checker{
		cfg: cfg, quiet: map[string]time.Time{}, quietSpec: map[string]time.Time{}, holders: map[netip.Addr]since{},
		released: map[netip.Addr]time.Time{}, lastHolders: map[netip.Addr]string{}, given: map[string]map[netip.Addr]string{},
		pools: map[string]since{}, usable: map[string]since{}, bgpDown: map[string]time.Time{}, Checks: map[int]int{},
		frozen: map[string]map[string]bool{},
	}
}

// Record notes changes the soak made.
func (c *Checker) Record(changes ...Change) {
	for _, ch := range changes {
		d := ch.Settle
		if d == 0 {
			d = c.cfg.Settle
		}
		until := ch.Time.Add(d)
		if ch.Controller {
			if until.After(c.quietCtrl) {
				c.quietCtrl = until
			}
		} else if ch.Service == "" {
			if until.After(c.quietGlobal) {
				c.quietGlobal = until
			}
		} else {
			if until.After(c.quiet[ch.Service]) {
				c.quiet[ch.Service] = until
			}
			if !ch.Endpoints && until.After(c.quietSpec[ch.Service]) {
				c.quietSpec[ch.Service] = until
			}
			if until.After(c.quietAny) {
				c.quietAny = until
			}
		}
	}
}

// settled reports whether nothing global and nothing about the Services keys
// changed within Settle before t.
func (c *Checker) settled(t time.Time, keys ...string) bool {
	if c.quietGlobal.After(t) {
		return false
	}
	for _, k := range keys {
		if c.quiet[k].After(t) {
			return false
		}
	}
	return true
}

// L2Targets returns the layer-2 addresses to ask for on the wire after the
// API snapshot s: those held, those released within Forget, and external IPs
// Herald did not accept, sorted.
func (c *Checker) L2Targets(s Snapshot) []netip.Addr {
	set := map[netip.Addr]bool{}
	for _, svc := range s.Services {
		for _, h := range svc.Held {
			set[h.Addr] = true
		}
		for _, a := range svc.UnacceptedExternalIPs {
			set[a] = true
		}
	}
	for a, t := range c.released {
		if s.Time.Sub(t) < c.cfg.Forget {
			set[a] = true
		}
	}
	var out []netip.Addr
	for a := range set {
		if inAny(c.cfg.L2, a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

// holder is one Service holding one address.
type holder struct {
	svc *Service
	h   Holding
}

// Observe checks snapshot s (the changes made up to its end must have been
// recorded) and returns the violations found.
func (c *Checker) Observe(s Snapshot) []Violation {
	var out []Violation
	held := map[netip.Addr][]holder{}
	for i := range s.Services {
		svc := &s.Services[i]
		for _, h := range svc.Held {
			held[h.Addr] = append(held[h.Addr], holder{svc, h})
		}
	}
	c.trackHolders(s.Time, held)
	c.trackNodes(s)
	c.trackFrozen(s, held)

	out = append(out, c.checkSharing(s, held)...)
	out = append(out, c.checkPools(s, held)...)
	out = append(out, c.checkStable(s)...)
	out = append(out, c.checkCounts(s, held)...)
	out = append(out, c.checkClaims(s, held)...)
	if s.Wire != nil {
		out = append(out, c.checkWire(s, held)...)
	}
	return out
}

// trackHolders notes when the holders of each address last changed and which
// addresses were released.
func (c *Checker) trackHolders(t time.Time, held map[netip.Addr][]holder) {
	for a, hs := range held {
		parts := make([]string, len(hs))
		for i, h := range hs {
			parts[i] = fmt.Sprintf("%s/%s/%v/%v", h.svc.Key(), h.svc.UID, h.svc.Local, h.h.External)
		}
		slices.Sort(parts)
		fp := strings.Join(parts, ";")
		if old, ok := c.holders[a]; !ok || old.fp != fp {
			c.holders[a] = since{fp, t}
		}
		delete(c.released, a)
	}
	for a, h := range c.holders {
		if _, ok := held[a]; !ok {
			delete(c.holders, a)
			c.released[a] = t
			c.lastHolders[a] = h.fp
		}
	}
	for a, rt := range c.released {
		if t.Sub(rt) > c.cfg.Forget {
			delete(c.released, a)
			delete(c.lastHolders, a)
		}
	}
}

func (c *Checker) trackNodes(s Snapshot) {
	for _, n := range s.Nodes {
		fp := fmt.Sprint(n.Usable)
		if old, ok := c.usable[n.Name]; !ok || old.fp != fp {
			c.usable[n.Name] = since{fp, s.Time}
		}
	}
}

// trackFrozen notes, for each Service that became frozen, the Services
// sharing its addresses at that moment, and forgets Services no longer frozen.
func (c *Checker) trackFrozen(s Snapshot, held map[netip.Addr][]holder) {
	live := map[string]bool{}
	for i := range s.Services {
		svc := &s.Services[i]
		if !svc.Frozen {
			continue
		}
		live[svc.UID] = true
		if _, ok := c.frozen[svc.UID]; ok {
			continue
		}
		with := map[string]bool{}
		for _, h := range svc.Held {
			for _, o := range held[h.Addr] {
				with[o.svc.UID] = true
			}
		}
		c.frozen[svc.UID] = with
	}
	for uid := range c.frozen {
		if !live[uid] {
			delete(c.frozen, uid)
		}
	}
}

// frozenTogether reports whether x and y shared an address when one of them
// froze.
func (c *Checker) frozenTogether(x, y *Service) bool {
	return c.frozen[x.UID][y.UID] || c.frozen[y.UID][x.UID]
}

// checkSharing is invariant 1: two Services holding one address must be in
// one namespace with one sharing key and disjoint ports. Services the soak
// changed within Settle are left alone (the controller has not acted yet).
func (c *Checker) checkSharing(s Snapshot, held map[netip.Addr][]holder) []Violation {
	var out []Violation
	for _, a := range sortedAddrs(held) {
		hs := held[a]
		for i := range hs {
			for j := i + 1; j < len(hs); j++ {
				x, y := hs[i].svc, hs[j].svc
				if x.UID == y.UID {
					continue
				}
				if !c.settledKeysOnly(s.Time, x.Key(), y.Key()) {
					continue
				}
				c.Checks[InvSharing]++
				if why := mayShare(*x, *y); why != "" && !c.frozenTogether(x, y) {
					out = append(out, Violation{Time: s.Time, Invariant: InvSharing, Subject: a.String(), Kind: "shared",
						Objects: []string{"Service " + x.Key(), "Service " + y.Key()}, Detail: why})
				}
			}
		}
	}
	return out
}

// settledAllocations is settled for the invariants that depend on the
// controller's work: controller changes count too.
func (c *Checker) settledAllocations(t time.Time, keys ...string) bool {
	return !c.quietCtrl.After(t) && c.settled(t, keys...)
}

// settledKeysOnly reports whether the Services keys (ignoring global changes
// and endpoint changes) have been quiet for Settle before t.
func (c *Checker) settledKeysOnly(t time.Time, keys ...string) bool {
	for _, k := range keys {
		if c.quietSpec[k].After(t) {
			return false
		}
	}
	return true
}

// mayShare returns why x and y may not share an address, or "".
func mayShare(x, y Service) string {
	switch {
	case x.Namespace != y.Namespace:
		return "different namespaces"
	case x.SharingKey == "" || y.SharingKey == "":
		return "not both have a sharing key"
	case x.SharingKey != y.SharingKey:
		return fmt.Sprintf("sharing keys %q and %q differ", x.SharingKey, y.SharingKey)
	}
	for _, p := range x.Ports {
		if slices.Contains(y.Ports, p) {
			return fmt.Sprintf("both use %s/%d", p.Protocol, p.Port)
		}
	}
	return ""
}

// checkPools is invariant 2: every address held lies in a pool that admits
// the Service for that use, or is listed by a pool's AddressesOutsidePool. A
// Service of another loadBalancerClass holds nothing. Pool edits are allowed
// Settle to show in the pools' status.
func (c *Checker) checkPools(s Snapshot, held map[netip.Addr][]holder) []Violation {
	var out []Violation
	for _, a := range sortedAddrs(held) {
		for _, h := range held[a] {
			if !c.settledAllocations(s.Time, h.svc.Key()) {
				continue
			}
			c.Checks[InvPool]++
			if h.svc.Class != "" && !h.h.External {
				out = append(out, Violation{Time: s.Time, Invariant: InvPool, Subject: a.String(), Kind: "other class",
					Objects: []string{"Service " + h.svc.Key()}, Detail: fmt.Sprintf("loadBalancerClass %q, yet Herald gave it an address", h.svc.Class)})
				continue
			}
			if why := admitted(s.Pools, *h.svc, h.h); why != "" {
				out = append(out, Violation{Time: s.Time, Invariant: InvPool, Subject: a.String(), Kind: "not admitted",
					Objects: []string{"Service " + h.svc.Key(), "IPPool " + h.h.Pool}, Detail: why})
			}
		}
	}
	return out
}

// admitted returns why no pool admits h for svc, or "".
func admitted(pools []Pool, svc Service, h Holding) string {
	var in []string
	for _, p := range pools {
		if slices.Contains(p.Outside, h.Addr) {
			return ""
		}
		if !p.Contains(h.Addr) {
			continue
		}
		in = append(in, p.Name)
		if (h.External && p.AdmitsExternal[svc.Namespace]) || (!h.External && p.AdmitsLB[svc.Namespace]) {
			return ""
		}
	}
	use := "load-balancer addresses"
	if h.External {
		use = "external IPs"
	}
	if len(in) == 0 {
		return fmt.Sprintf("%s lies in no pool and no pool lists it as outside (grant names %q)", h.Addr, h.Pool)
	}
	return fmt.Sprintf("%s lies in %v, none of which serves %s to namespace %s", h.Addr, in, use, svc.Namespace)
}

// checkStable is invariant 5: an address a Service was given while asking
// for something stays while it asks for the same (Asks unchanged), at every
// snapshot, settled or not.
func (c *Checker) checkStable(s Snapshot) []Violation {
	var out []Violation
	live := map[string]bool{}
	for _, svc := range s.Services {
		live[svc.UID] = true
		g := c.given[svc.UID]
		if g == nil {
			g = map[netip.Addr]string{}
			c.given[svc.UID] = g
		}
		now := map[netip.Addr]bool{}
		for _, h := range svc.Held {
			now[h.Addr] = true
			if _, ok := g[h.Addr]; !ok {
				g[h.Addr] = svc.Asks
			}
		}
		for _, a := range sortedKeys(g) {
			c.Checks[InvStable]++
			if now[a] {
				continue
			}
			if g[a] == svc.Asks {
				out = append(out, Violation{Time: s.Time, Invariant: InvStable, Subject: svc.Key(), Kind: "address lost",
					Objects: []string{"Service " + svc.Key()}, Detail: fmt.Sprintf(
						"lost %s (now holds %v) though it asks for the same as when it got it (asks %q)", a, holdAddrs(svc.Held), svc.Asks)})
			}
			delete(g, a)
		}
	}
	for uid := range c.given {
		if !live[uid] {
			delete(c.given, uid)
		}
	}
	return out
}

// checkCounts is invariant 6: once the holders of a pool's addresses and the
// pool itself have stayed the same for Settle, its status counts them.
func (c *Checker) checkCounts(s Snapshot, held map[netip.Addr][]holder) []Violation {
	var out []Violation
	seen := map[string]bool{}
	for _, p := range s.Pools {
		seen[p.Name] = true
		var in []netip.Addr
		for a := range held {
			if p.Contains(a) {
				in = append(in, a)
			}
		}
		slices.SortFunc(in, netip.Addr.Compare)
		fp := fmt.Sprint(p.Ranges, p.Shadowed, in)
		if old, ok := c.pools[p.Name]; !ok || old.fp != fp {
			c.pools[p.Name] = since{fp, s.Time}
			continue
		}
		if c.pools[p.Name].t.After(s.Time.Add(-c.cfg.Settle)) || !c.settledAllocations(s.Time) || !p.Current {
			continue
		}
		var u4, u6 int
		for _, a := range in {
			if a.Is4() {
				u4++
			} else {
				u6++
			}
		}
		c.Checks[InvCounts]++
		if p.Used4 != u4 || p.Used6 != u6 {
			out = append(out, Violation{Time: s.Time, Invariant: InvCounts, Subject: "IPPool " + p.Name, Kind: "counts",
				Objects: []string{"IPPool " + p.Name}, Detail: fmt.Sprintf(
					"status says %d IPv4 and %d IPv6 used, Services hold %d and %d: %v", p.Used4, p.Used6, u4, u6, in)})
		}
	}
	for name := range c.pools {
		if !seen[name] {
			delete(c.pools, name)
		}
	}
	return out
}

// checkClaims is invariant 8: when claims are in use, every address a
// Service holds, once it and the Service have been stable for Settle, has a
// claim that lists the Service (by UID) holding it the same way. (Claims are
// written before the status and released after it, but the two are read
// apart, so only settled holdings are judged.)
func (c *Checker) checkClaims(s Snapshot, held map[netip.Addr][]holder) []Violation {
	if s.Claims == nil {
		return nil
	}
	var out []Violation
	for _, a := range sortedAddrs(held) {
		if c.holders[a].t.After(s.Time.Add(-c.cfg.Settle)) {
			continue
		}
		for _, h := range held[a] {
			if !c.settledAllocations(s.Time, h.svc.Key()) {
				continue
			}
			c.Checks[InvClaims]++
			ext, ok := s.Claims[a][h.svc.UID]
			switch {
			case s.Claims[a] == nil:
				out = append(out, Violation{Time: s.Time, Invariant: InvClaims, Subject: a.String(), Kind: "no claim",
					Objects: []string{"Service " + h.svc.Key()}, Detail: "the Service holds it and no AddressClaim exists"})
			case !ok || ext != h.h.External:
				out = append(out, Violation{Time: s.Time, Invariant: InvClaims, Subject: a.String(), Kind: "holder missing",
					Objects: []string{"Service " + h.svc.Key(), "AddressClaim " + a.String()},
					Detail:  fmt.Sprintf("the claim lists %v (UID: external IP), not %s as external=%v", s.Claims[a], h.svc.UID, h.h.External)})
			}
		}
	}
	return out
}

// checkWire is invariants 3 and 4, for every address whose holders and
// everything global stayed the same for Settle before the wire observation.
func (c *Checker) checkWire(s Snapshot, held map[netip.Addr][]holder) []Violation {
	w := s.Wire
	cutoff := w.Start.Add(-c.cfg.Settle)
	// usable are the nodes that must announce what they may; degraded ones
	// may, but need not.
	var usable, degraded []string
	for _, n := range s.Nodes {
		switch {
		case n.Usable && n.Degraded:
			degraded = append(degraded, n.Name)
		case n.Usable:
			usable = append(usable, n.Name)
		}
	}
	slices.Sort(usable)
	withDegraded := slices.Sorted(slices.Values(append(slices.Clone(usable), degraded...)))
	isDegraded := func(n string) bool { return slices.Contains(degraded, n) }

	var out []Violation
	// settledAddr reports whether a's holders, their Services and everything
	// global were quiet since cutoff.
	settledAddr := func(a netip.Addr) bool {
		hs := held[a]
		if len(hs) == 0 {
			rt, ok := c.released[a]
			return ok && !rt.After(cutoff) && c.settled(w.Start) && !w.HeldAfter[a]
		}
		if c.holders[a].t.After(cutoff) {
			return false
		}
		keys := make([]string, len(hs))
		for i, h := range hs {
			keys[i] = h.svc.Key()
		}
		return c.settled(w.Start, keys...)
	}
	// blame says which invariant a node that should not announce a breaks:
	// 4 when a Local holder has no ready endpoint on it.
	blame := func(a netip.Addr, node string) int {
		for _, h := range held[a] {
			if h.svc.Local && !slices.ContainsFunc(h.svc.Endpoints, func(e Endpoint) bool { return e.Node == node && e.Ready }) {
				return InvLocal
			}
		}
		return InvWire
	}
	objects := func(a netip.Addr) []string {
		var o []string
		for _, h := range held[a] {
			o = append(o, "Service "+h.svc.Key())
		}
		return o
	}

	// Layer 2: only the nodes an L2Advertisement lets announce.
	l2Usable, l2WithDegraded := usable, withDegraded
	if s.L2Nodes != nil {
		notAdvertised := func(n string) bool { return !slices.Contains(s.L2Nodes, n) }
		l2Usable = slices.DeleteFunc(slices.Clone(usable), notAdvertised)
		l2WithDegraded = slices.DeleteFunc(slices.Clone(withDegraded), notAdvertised)
	}
	for _, a := range sortedAddrs(w.L2) {
		ans := w.L2[a]
		if ans.Err != "" || !inAny(c.cfg.L2, a) {
			continue
		}
		hs := held[a]
		var cands, candsOrDegraded []string
		switch {
		case len(hs) > 0:
			if !settledAddr(a) {
				continue
			}
			sets := make([][]string, len(hs))
			setsOrDegraded := make([][]string, len(hs))
			for i, h := range hs {
				sets[i] = Eligible(*h.svc, l2Usable)
				setsOrDegraded[i] = Eligible(*h.svc, l2WithDegraded)
			}
			cands = sharedCandidates(sets...)
			candsOrDegraded = sharedCandidates(setsOrDegraded...)
		case unaccepted(s.Services, a) != nil:
			if !c.settled(w.Start, unaccepted(s.Services, a).Key()) || w.HeldAfter[a] {
				continue
			}
		default:
			if !settledAddr(a) {
				continue
			}
		}
		c.Checks[InvWire]++
		if slices.ContainsFunc(hs, func(h holder) bool { return h.svc.Local }) {
			c.Checks[InvLocal]++
		}
		obj := objects(a)
		if svc := unaccepted(s.Services, a); svc != nil && len(hs) == 0 {
			obj = append(obj, "Service "+svc.Key()+" (not accepted)")
		}
		if last, ok := c.lastHolders[a]; ok && len(hs) == 0 {
			obj = append(obj, "released by "+last)
		}
		// A degraded node that may announce a is judged by what the others
		// do: it may answer beside or instead of the node that would.
		if slices.ContainsFunc(candsOrDegraded, isDegraded) {
			others := slices.DeleteFunc(slices.Clone(ans.Nodes), isDegraded)
			if len(others) > 1 || len(others) == 1 && !slices.Contains(cands, others[0]) {
				out = append(out, Violation{Time: w.Start, Invariant: blame(a, others[0]), Subject: a.String(), Kind: "wrong node",
					Objects: append(obj, nodesOf(ans.Nodes)...), Detail: fmt.Sprintf("%v answer; eligible %v, degraded %v", ans.Nodes, cands, degraded)})
			}
			continue
		}
		switch {
		case len(cands) == 0 && len(ans.Nodes) > 0:
			inv := InvWire
			if len(hs) > 0 {
				inv = blame(a, ans.Nodes[0])
			}
			out = append(out, Violation{Time: w.Start, Invariant: inv, Subject: a.String(), Kind: "answered, no node may",
				Objects: append(obj, nodesOf(ans.Nodes)...), Detail: fmt.Sprintf("%v answer; eligible none (holders %d)", ans.Nodes, len(hs))})
		case len(cands) > 0 && len(ans.Nodes) == 0:
			out = append(out, Violation{Time: w.Start, Invariant: InvWire, Subject: a.String(), Kind: "unanswered",
				Objects: obj, Detail: fmt.Sprintf("nobody answers; eligible %v", cands)})
		case len(cands) > 0 && len(ans.Nodes) > 1:
			out = append(out, Violation{Time: w.Start, Invariant: InvWire, Subject: a.String(), Kind: "several answer",
				Objects: append(obj, nodesOf(ans.Nodes)...), Detail: fmt.Sprintf("%v answer; eligible %v", ans.Nodes, cands)})
		case len(cands) > 0 && !slices.Contains(cands, ans.Nodes[0]):
			out = append(out, Violation{Time: w.Start, Invariant: blame(a, ans.Nodes[0]), Subject: a.String(), Kind: "wrong node",
				Objects: append(obj, nodesOf(ans.Nodes)...), Detail: fmt.Sprintf("%v answers; eligible %v", ans.Nodes, cands)})
		}
	}

	// BGP.
	if w.BGP == nil || len(c.cfg.BGP) == 0 {
		return out
	}
	upBefore := map[string]bool{}
	for _, n := range s.Nodes {
		if !n.BGPUp.IsZero() && !n.BGPUp.After(cutoff) {
			upBefore[n.Name] = true
		}
		if !n.Usable || n.Degraded || !n.BGPUp.IsZero() {
			delete(c.bgpDown, n.Name)
			continue
		}
		down, ok := c.bgpDown[n.Name]
		if !ok {
			c.bgpDown[n.Name] = w.Start
			continue
		}
		c.Checks[InvWire]++
		if !down.After(w.Start.Add(-c.cfg.BGPSessionBound)) {
			out = append(out, Violation{Time: w.Start, Invariant: InvWire, Subject: "node " + n.Name, Kind: "BGP session down",
				Objects: []string{"node " + n.Name}, Detail: fmt.Sprintf("usable, and no Established session with the router since %s", down.UTC().Format("15:04:05"))})
		}
	}
	addrs := map[netip.Addr]bool{}
	for a := range w.BGP {
		addrs[a] = true
	}
	for a := range held {
		addrs[a] = true
	}
	for _, a := range sortedAddrs(addrs) {
		if !inAny(c.cfg.BGP, a) {
			continue
		}
		hs := held[a]
		got := w.BGP[a]
		if len(hs) > 0 || !c.released[a].IsZero() {
			if !settledAddr(a) {
				continue
			}
		} else if !c.settled(w.End) || c.quietAny.After(w.End) || w.HeldAfter[a] {
			// Routed, yet held by nobody when the API was read: a Service
			// changed since may have been given it.
			continue
		}
		var elig, eligOrDegraded []string
		for _, h := range hs {
			elig = append(elig, Eligible(*h.svc, usable)...)
			eligOrDegraded = append(eligOrDegraded, Eligible(*h.svc, withDegraded)...)
		}
		slices.Sort(elig)
		elig = slices.Compact(elig)
		c.Checks[InvWire]++
		if slices.ContainsFunc(hs, func(h holder) bool { return h.svc.Local }) {
			c.Checks[InvLocal]++
		}
		for _, n := range got {
			if !slices.Contains(elig, n) && !(isDegraded(n) && slices.Contains(eligOrDegraded, n)) {
				obj := append(objects(a), "node "+n)
				if last, ok := c.lastHolders[a]; ok && len(hs) == 0 {
					obj = append(obj, "released by "+last)
				}
				out = append(out, Violation{Time: w.Start, Invariant: blame(a, n), Subject: a.String(), Kind: "next hop not eligible",
					Objects: obj, Detail: fmt.Sprintf("router's next hops %v; eligible %v", got, elig)})
			}
		}
		for _, n := range elig {
			if upBefore[n] && !slices.Contains(got, n) {
				out = append(out, Violation{Time: w.Start, Invariant: InvWire, Subject: a.String(), Kind: "eligible node missing",
					Objects: append(objects(a), "node "+n), Detail: fmt.Sprintf("router's next hops %v; eligible %v", got, elig)})
			}
		}
	}
	return out
}

// unaccepted returns the Service whose spec.externalIPs has a without Herald
// accepting it, or nil.
func unaccepted(svcs []Service, a netip.Addr) *Service {
	for i := range svcs {
		if slices.Contains(svcs[i].UnacceptedExternalIPs, a) {
			return &svcs[i]
		}
	}
	return nil
}

// Eligible returns the usable nodes that may announce svc, by kube-proxy's
// health-check rule: for Local, those with a ready endpoint, or failing that
// a serving-terminating one; for Cluster, every usable node while the
// Service has a ready or serving-terminating endpoint anywhere. It is the
// soak's own statement of the rule, not the speaker's code.
func Eligible(svc Service, usable []string) []string {
	serving := func(e Endpoint) bool { return e.Serving && e.Terminating }
	if !svc.Local {
		if slices.ContainsFunc(svc.Endpoints, func(e Endpoint) bool { return e.Ready || serving(e) }) {
			return slices.Clone(usable)
		}
		return nil
	}
	pick := func(ok func(Endpoint) bool) []string {
		var out []string
		for _, n := range usable {
			if slices.ContainsFunc(svc.Endpoints, func(e Endpoint) bool { return e.Node == n && ok(e) }) {
				out = append(out, n)
			}
		}
		return out
	}
	if r := pick(func(e Endpoint) bool { return e.Ready }); len(r) > 0 {
		return r
	}
	return pick(serving)
}

// sharedCandidates returns the nodes eligible for the most sharers of an
// address (at least one), sorted.
func sharedCandidates(sets ...[]string) []string {
	count := map[string]int{}
	most := 0
	for _, set := range sets {
		for _, n := range slices.Compact(slices.Sorted(slices.Values(set))) {
			count[n]++
			most = max(most, count[n])
		}
	}
	var out []string
	for n, k := range count {
		if k == most {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func nodesOf(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "node " + n
	}
	return out
}

func holdAddrs(hs []Holding) []netip.Addr {
	out := make([]netip.Addr, len(hs))
	for i, h := range hs {
		out[i] = h.Addr
	}
	return out
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func sortedKeys(m map[netip.Addr]string) []netip.Addr { return sortedAddrs(m) }
