package layer2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidAddress is returned (wrapped) by Set for an address that cannot
// be announced: invalid, unspecified, multicast or loopback.
var ErrInvalidAddress = errors.New("layer2: invalid address")

// ErrClosed is returned by Set once the Announcer's context is done.
var ErrClosed = errors.New("layer2: announcer closed")

// Desired is the whole layer-2 state a node should have: every address it
// announces, each with the interfaces to announce it on. IPv4 addresses are
// announced with ARP, IPv6 addresses with NDP.
type Desired map[netip.Addr][]string

// Config tunes an Announcer. The zero value gives the defaults.
type Config struct {
	// GratuitousSchedule lists when, after an address is taken over, a
	// gratuitous ARP (request and reply) or unsolicited neighbour
	// advertisement is sent, as offsets from the takeover. Default 0, 100 ms
	// and 300 ms: the first reaches most neighbours at once, the repeats
	// cover a lost frame without flooding.
	GratuitousSchedule []time.Duration
	// ConflictHoldoff is the minimum time between two Conflict events for
	// the same address, interface and MAC (every conflicting packet is
	// counted regardless). Default 500 ms, so the caller hears again within
	// a second if the conflict persists.
	ConflictHoldoff time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to reopen a
	// failed socket. Defaults 250 ms and 5 s.
	RetryMin, RetryMax time.Duration
	// EventBuffer is the capacity of the Conflicts and Errors channels.
	// Default 128.
	EventBuffer int
}

func (c Config) withDefaults() Config {
	if c.GratuitousSchedule == nil {
		c.GratuitousSchedule = []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}
	}
	if c.ConflictHoldoff == 0 {
		c.ConflictHoldoff = 500 * time.Millisecond
	}
	if c.RetryMin == 0 {
		c.RetryMin = 250 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = 128
	}
	return c
}

// Announcer answers ARP and NDP for the addresses it is Set to own, on the
// interfaces it is told, and reports conflicts. It owns one reader goroutine
// per interface and protocol, plus short-lived gratuitous bursts; all of them
// stop when the context given to NewAnnouncer is done. Its methods are safe
// for concurrent use.
type Announcer struct {
	cfg   Config
	sock  sockets
	ctx   context.Context
	wg    sync.WaitGroup
	done  chan struct{}
	stats struct{ arp, ndp counters }

	conflicts     chan Conflict
	errs          chan error
	eventsDropped atomic.Uint64

	// own is the snapshot responders read for every packet.
	own atomic.Pointer[ownership]
	// ownMu serialises building own from its two sources: the desired
	// state (from Set) and the MACs of open sockets (from responders).
	ownMu   sync.Mutex
	byIface map[string]map[netip.Addr]struct{}
	all     map[netip.Addr]struct{}
	macs    map[*responder]net.HardwareAddr

	// mu serialises Set and Reannounce and guards what they change.
	mu sync.Mutex
	// closed is set, under mu, once ctx is done: no goroutine starts after.
	closed     bool
	desired    Desired
	responders map[responderKey]*responder

	conflictMu   sync.Mutex
	lastConflict map[conflictKey]time.Time
}

type responderKey struct {
	iface string
	proto proto
}

type conflictKey struct {
	addr  netip.Addr
	iface string
	mac   string
}

// NewAnnouncer returns an Announcer using raw sockets (root or CAP_NET_RAW
// needed). It announces nothing until Set. When ctx is done every goroutine
// stops and every socket closes; Done tells when that has happened.
func NewAnnouncer(ctx context.Context, cfg Config) *Announcer {
	return newAnnouncer(ctx, cfg, realSockets{})
}

func newAnnouncer(ctx context.Context, cfg Config, sock sockets) *Announcer {
	cfg = cfg.withDefaults()
	a := &Announcer{
		cfg:          cfg,
		sock:         sock,
		ctx:          ctx,
		done:         make(chan struct{}),
		conflicts:    make(chan Conflict, cfg.EventBuffer),
		errs:         make(chan error, cfg.EventBuffer),
		macs:         map[*responder]net.HardwareAddr{},
		responders:   map[responderKey]*responder{},
		lastConflict: map[conflictKey]time.Time{},
	}
	a.own.Store(emptyOwnership)
	// This goroutine holds the WaitGroup above zero until closed is set, so
	// goroutines started under mu never race with the final Wait.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-ctx.Done()
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
	}()
	go func() {
		a.wg.Wait()
		close(a.done)
	}()
	return a
}

// Done returns a channel closed once the context is done and every
// goroutine of the Announcer has returned.
func (a *Announcer) Done() <-chan struct{} { return a.done }

// Conflicts returns the channel on which the Announcer reports other MACs
// answering for owned addresses. Events are dropped (and counted in
// Stats.EventsDropped) when the channel is full.
func (a *Announcer) Conflicts() <-chan Conflict { return a.conflicts }

// Errors returns the channel on which the Announcer reports failures that
// happen outside Set: a socket that failed and is being reopened, a
// multicast group that could not be joined after a reopen. Events are dropped
// (and counted) when the channel is full.
func (a *Announcer) Errors() <-chan error { return a.errs }

// Stats returns a snapshot of the counters.
func (a *Announcer) Stats() Stats {
	return Stats{
		ARP:           a.stats.arp.snapshot(),
		NDP:           a.stats.ndp.snapshot(),
		Announced:     len(a.own.Load().all),
		EventsDropped: a.eventsDropped.Load(),
	}
}

// Set makes desired the whole layer-2 state of this node and returns once
// it is in effect: addresses no longer desired are no longer answered on any
// interface, new ones are answered, and sockets are opened or closed as
// interfaces come and go. For each address newly announced on an interface
// it starts a gratuitous burst (GratuitousSchedule). Set is idempotent:
// calling it again with the same state sends nothing and opens nothing.
//
// Set applies as much as it can. It returns the joined errors of what it
// could not do (ErrInvalidAddress for an address it skipped, a socket it
// could not open, a multicast group it could not join); a socket that failed
// to open is retried in the background. ctx bounds the call only; the
// Announcer's goroutines live until the context given to NewAnnouncer is done.
// Cost: O(addresses + interfaces) plus the socket operations of the change.
func (a *Announcer) Set(ctx context.Context, desired Desired) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.ctx.Err() != nil {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("layer2: set: %w", err)
	}
	norm, errs := normalize(desired)
	added := newPairs(a.desired, norm)
	a.desired = norm

	// Ownership first: from here on removed addresses go unanswered and
	// added ones are answered on every interface whose socket is open.
	byIface, all := index(norm)
	a.publish(func() { a.byIface, a.all = byIface, all })

	need := map[responderKey]bool{}
	for addr, ifaces := range norm {
		for _, i := range ifaces {
			need[responderKey{i, protoOf(addr)}] = true
		}
	}
	for _, k := range sortedKeys(a.responders) {
		if !need[k] {
			a.responders[k].stop()
			delete(a.responders, k)
		}
	}
	for _, k := range sortedKeys(need) {
		if _, ok := a.responders[k]; ok {
			continue
		}
		r, err := a.startResponder(k)
		if err != nil {
			errs = append(errs, err)
		}
		a.responders[k] = r
	}
	for _, k := range sortedKeys(a.responders) {
		if k.proto == protoNDP {
			if err := a.responders[k].syncGroups(byIface[k.iface]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for k, addrs := range added {
		if r := a.responders[k]; r != nil {
			a.burst(r, addrs)
		}
	}
	a.pruneConflicts()
	return errors.Join(errs...)
}

// Reannounce sends a new gratuitous burst for addr on every interface that
// announces it, and reports whether addr is announced at all. A node that
// keeps an address after a conflict calls it, so neighbours that learnt the
// other claimant's MAC switch back at once instead of when their cache
// entry expires.
func (a *Announcer) Reannounce(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	ifaces, ok := a.desired[addr]
	for _, i := range ifaces {
		if r := a.responders[responderKey{i, protoOf(addr)}]; r != nil {
			a.burst(r, []netip.Addr{addr})
		}
	}
	return ok
}

// normalize validates desired and returns a copy with unmapped, zone-less
// addresses and sorted, unique interface names; addresses with no interface
// are left out.
func normalize(desired Desired) (Desired, []error) {
	var errs []error
	out := make(Desired, len(desired))
	for _, addr := range sortedAddrs(desired) {
		ifaces := desired[addr]
		a := addr.Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			errs = append(errs, fmt.Errorf("layer2: set %s: %w", addr, ErrInvalidAddress))
			continue
		}
		ifaces = slices.DeleteFunc(slices.Clone(ifaces), func(s string) bool { return s == "" })
		if len(ifaces) == 0 {
			continue
		}
		merged := append(out[a], ifaces...)
		slices.Sort(merged)
		out[a] = slices.Compact(merged)
	}
	return out, errs
}

// newPairs returns, per responder, the addresses announced on its interface
// in next but not in prev.
func newPairs(prev, next Desired) map[responderKey][]netip.Addr {
	out := map[responderKey][]netip.Addr{}
	for _, addr := range sortedAddrs(next) {
		for _, i := range next[addr] {
			if !slices.Contains(prev[addr], i) {
				k := responderKey{i, protoOf(addr)}
				out[k] = append(out[k], addr)
			}
		}
	}
	return out
}

func index(d Desired) (map[string]map[netip.Addr]struct{}, map[netip.Addr]struct{}) {
	byIface := map[string]map[netip.Addr]struct{}{}
	all := make(map[netip.Addr]struct{}, len(d))
	for addr, ifaces := range d {
		all[addr] = struct{}{}
		for _, i := range ifaces {
			if byIface[i] == nil {
				byIface[i] = map[netip.Addr]struct{}{}
			}
			byIface[i][addr] = struct{}{}
		}
	}
	return byIface, all
}

// publish applies change to the sources of the ownership snapshot and
// stores a new snapshot built from them.
func (a *Announcer) publish(change func()) {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	change()
	macs := make(map[string]struct{}, len(a.macs))
	for _, m := range a.macs {
		macs[string(m)] = struct{}{}
	}
	a.own.Store(&ownership{byIface: a.byIface, all: a.all, macs: macs})
}

// burst sends the gratuitous announcements for addrs on r's interface at
// each offset of the schedule, skipping an address as soon as it is no
// longer announced there (a node that lost a conflict must fall silent).
// The caller holds mu with closed unset, or runs in one of r's goroutines.
func (a *Announcer) burst(r *responder, addrs []netip.Addr) {
	if len(addrs) == 0 {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		start := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
		for _, off := range a.cfg.GratuitousSchedule {
			timer.Reset(time.Until(start.Add(off)))
			select {
			case <-r.ctx.Done():
				return
			case <-timer.C:
			}
			for _, addr := range addrs {
				if a.own.Load().ownedOn(r.key.iface, addr) {
					r.sendGratuitous(addr)
				}
			}
		}
	}()
}

// reportConflict counts c and sends it to the caller unless the same
// conflict was sent less than ConflictHoldoff ago.
func (a *Announcer) reportConflict(c Conflict, cnt *counters) {
	cnt.conflicts.Add(1)
	k := conflictKey{c.Addr, c.Interface, string(c.OtherMAC)}
	now := time.Now()
	a.conflictMu.Lock()
	last, seen := a.lastConflict[k]
	if seen && now.Sub(last) < a.cfg.ConflictHoldoff {
		a.conflictMu.Unlock()
		return
	}
	a.lastConflict[k] = now
	a.conflictMu.Unlock()
	select {
	case a.conflicts <- c:
	default:
		a.eventsDropped.Add(1)
	}
}

func (a *Announcer) pruneConflicts() {
	a.conflictMu.Lock()
	defer a.conflictMu.Unlock()
	for k, t := range a.lastConflict {
		if time.Since(t) >= a.cfg.ConflictHoldoff {
			delete(a.lastConflict, k)
		}
	}
}

func (a *Announcer) reportError(err error) {
	select {
	case a.errs <- err:
	default:
		a.eventsDropped.Add(1)
	}
}

func (a *Announcer) counters(p proto) *counters {
	if p == protoNDP {
		return &a.stats.ndp
	}
	return &a.stats.arp
}

func protoOf(a netip.Addr) proto {
	if a.Is4() {
		return protoARP
	}
	return protoNDP
}

func sortedAddrs(d Desired) []netip.Addr {
	out := make([]netip.Addr, 0, len(d))
	for a := range d {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
	return out
}

func sortedKeys[V any](m map[responderKey]V) []responderKey {
	out := make([]responderKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(x, y responderKey) int {
		if x.iface != y.iface {
			if x.iface < y.iface {
				return -1
			}
			return 1
		}
		return int(x.proto) - int(y.proto)
	})
	return out
}
