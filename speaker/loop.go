package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/herald-dev/herald/config"
	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/bgp"
	"github.com/herald-dev/herald/speaker/layer2"
)

// speaker is one running speaker. The loop goroutine owns the fields below
// the line; the others are set before it starts.
type speaker struct {
	cfg      Config
	log      *slog.Logger
	kube     kubernetes.Interface
	herald   heraldclient.Interface
	interner *interner
	nodeIP   netip.Addr

	services     corelisters.ServiceLister
	slices       cache.Indexer
	claims       heraldlisters.AddressClaimLister
	nodes        corelisters.NodeLister
	secrets      corelisters.SecretLister
	pools        heraldlisters.IPPoolLister
	l2ads        heraldlisters.L2AdvertisementLister
	peers        heraldlisters.BGPPeerLister
	bgpads       heraldlisters.BGPAdvertisementLister
	statusLister heraldlisters.SpeakerStatusLister
	badClaims    *badClaims

	members    *membership
	l2         *layer2.Announcer
	announcers []announcer
	bgp        *bgpAnnouncer
	bgpSeen    map[string]bgpWatch // owned by the loop
	badPeers   []bgp.PeerStatus    // owned by the loop, see unusablePeers
	status     *statusWriter
	// statusForHandlers is status, published for the informers' handlers,
	// which run on their own goroutines from before status exists.
	statusForHandlers atomic.Pointer[statusWriter]
	recorder          record.EventRecorder
	metrics           *metrics

	trigger     chan struct{}
	settled     chan netip.Addr
	configDirty atomic.Bool
	leaving     atomic.Bool
	health      *Health

	// Shared with the probe loop.
	probeMu      sync.Mutex
	probeTargets []Service
	localMACs    []net.HardwareAddr
	verdict      probeVerdict

	// sums keeps the Service summaries, rebuilt for the Services whose
	// objects changed; inc recomputes the addresses of the Services whose
	// summaries changed (or everything, when something global changed).
	sums *summaries
	inc  *Incremental

	// Owned by the loop.
	lastFull  time.Time // the last periodic rebuild of every summary
	lastReset time.Time // the last periodic recompute of every address
	periodic  bool      // the last reconcile was a periodic pass
	model     *config.Model
	held      *holdBack
	pending   map[netip.Addr]pendingConflict
	holdT     *time.Timer
	takeoverT *time.Timer // fires when the next settling node settles
	prev      Desired
	since     map[netip.Addr]time.Time
	uids      map[ServiceKey]types.UID
	started   time.Time
	// lastMembers and lastSessions are what the last status handed over held.
	lastMembers  int
	lastSessions []v1alpha1.BGPSessionStatus
}

// loop recomputes and applies the desired state whenever something
// changes, until ctx is done.
func (s *speaker) loop(ctx context.Context) {
	s.held = newHoldBack(s.cfg.ConflictHold)
	s.pending = map[netip.Addr]pendingConflict{}
	s.since = map[netip.Addr]time.Time{}
	s.sums.takeover = NewSettleTracker(s.cfg.TakeoverDelay)
	s.started = time.Now()
	resync := time.NewTicker(s.cfg.ResyncInterval)
	defer resync.Stop()
	var bgpChanges <-chan struct{}
	if s.bgp != nil {
		bgpChanges = s.bgp.Changes()
	}
	s.bgpSeen = map[string]bgpWatch{}
	s.poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-bgpChanges:
			s.refreshBGP()
			continue
		case <-s.trigger:
		case <-resync.C:
		case c := <-s.l2.Conflicts():
			s.handleConflict(c)
			s.drainConflicts()
		case a := <-s.settled:
			s.settlePending(a)
			s.drainConflicts()
		case err := <-s.l2.Errors():
			s.log.Warn("layer-2 announcer", "err", err)
			continue
		}
		took := s.reconcile(ctx)
		// Pace: a reconcile that recomputes everything takes tens of
		// milliseconds with many Services, and a burst of changes that
		// each do (membership, configuration) would keep the loop busy.
		// Changes arriving meanwhile coalesce into the next run, so the
		// loop uses at most about half a core and reacts within twice a
		// reconcile's time. A periodic pass is no burst: no pause after
		// it, so a change that came meanwhile is not delayed further.
		if pause := min(took, 100*time.Millisecond); pause > 5*time.Millisecond && !s.periodic {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	}
}

// drainConflicts handles the conflicts and settled conflicts already
// queued, so that a burst of them costs one reconcile rather than one
// each. (A speaker that started with a partial view of the membership
// claims addresses that others own; the other nodes then report hundreds
// of conflicts within a second, and one reconcile each kept the loop busy
// for tens of seconds at 10,000 Services.)
func (s *speaker) drainConflicts() {
	for {
		select {
		case c := <-s.l2.Conflicts():
			s.handleConflict(c)
		case a := <-s.settled:
			s.settlePending(a)
		default:
			return
		}
	}
}

// reconcile gathers the inputs, computes this node's desired state, hands
// it to every announcer, and records what changed.
func (s *speaker) reconcile(ctx context.Context) (took time.Duration) {
	start := time.Now()
	var computed, applied time.Time
	defer func() {
		took = time.Since(start)
		s.health.markLoop()
		s.metrics.reconciles.Inc()
		s.metrics.reconcileSeconds.Observe(took.Seconds())
		if took >= slowReconcile && !computed.IsZero() && !applied.IsZero() {
			s.log.Info("slow reconcile", "took", took, "compute", computed.Sub(start), "apply", applied.Sub(computed),
				"record", time.Since(applied), "recomputedAll", s.inc.RecomputedAll(), "periodic", s.periodic)
		}
	}()
	s.settleOverdue(start)
	if s.configDirty.Swap(false) || s.model == nil {
		s.model = s.buildModel()
	}
	// The safety nets of the incremental path: every summaryResyncInterval
	// rebuild every Service summary from the caches (Incremental then
	// recomputes the addresses of any summary that differs: a missed
	// event), and every fullResyncInterval recompute every address too.
	s.periodic = false
	if start.Sub(s.lastFull) >= summaryResyncInterval {
		s.sums.rebuildAll()
		s.lastFull = start
		s.periodic = true
	}
	if start.Sub(s.lastReset) >= fullResyncInterval {
		s.inc.Reset()
		s.lastReset = start
		s.periodic = true
	}
	services := s.gatherServices(start)
	// A node whose first ready endpoint of a Local Service appeared while
	// another node could forward settles (SettleTracker): when the first
	// settling node settles, the timer reconciles again, and gatherServices
	// rebuilds the summaries of the Services due.
	s.takeoverT = rearm(s.takeoverT, s.sums.takeover.Next(), s.poke)
	alive := s.members.Alive()
	nodes := s.gatherNodes(alive)
	ifaces, macs, err := nodeInterfaces()
	if err != nil {
		s.log.Warn("list interfaces", "err", err)
	}
	held, next := s.held.active(alive, start)
	s.scheduleHoldEnd(next)
	down, withdrawn := s.members.Verdicts(services)

	d := s.inc.Compute(Inputs{
		Self: s.cfg.NodeName, Model: s.model, Services: services, Nodes: nodes, Interfaces: ifaces,
		Suppressed: held, DataPlaneDown: down, Withdrawn: withdrawn,
	})
	computed = time.Now()
	var errs []error
	for _, a := range s.announcers {
		if err := a.Set(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// An announcer joins one error per failed address or group: log how
		// many and the first, not thousands of lines per reconcile.
		n, first := countErrors(errors.Join(errs...))
		s.log.Warn("apply desired state", "errors", n, "first", first)
	}
	applied = time.Now()
	s.health.ready.Store(true)
	s.publishLocal(services, macs)
	s.updateUnusablePeers(d)
	// The status is rebuilt only when something in it changed: with
	// thousands of addresses, building it costs more than the compare.
	sessions := s.bgpSessions()
	if s.record(d, start) || len(alive) != s.lastMembers || !reflect.DeepEqual(sessions, s.lastSessions) {
		s.status.update(s.statusOf(d, len(alive), sessions))
		s.lastMembers, s.lastSessions = len(alive), sessions
	}
	return
}

// slowReconcile is the reconcile time above which the loop logs where the
// time went (gathering and computing, applying, recording).
const slowReconcile = 100 * time.Millisecond

// summaryResyncInterval is how often the loop rebuilds every Service
// summary from the caches, whatever the informers said, and
// fullResyncInterval how often it also recomputes every address from
// scratch: safety nets under the incremental path (a missed event cannot
// leave the desired state wrong for longer than a minute). Rebuilding the
// summaries costs about two thirds of a full pass (BenchmarkReconcile).
const (
	summaryResyncInterval = time.Minute
	fullResyncInterval    = 10 * time.Minute
)

// countErrors counts the leaves of a tree of joined errors and returns the
// first one.
func countErrors(err error) (int, error) {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return 1, err
	}
	n := 0
	var first error
	for _, e := range j.Unwrap() {
		k, f := countErrors(e)
		if first == nil {
			first = f
		}
		n += k
	}
	return n, first
}

// buildModel builds the configuration model from the caches.
func (s *speaker) buildModel() *config.Model {
	snap := config.Snapshot{SecretNamespace: s.cfg.Namespace}
	snap.IPPools, _ = s.pools.List(labels.Everything())
	snap.L2Advertisements, _ = s.l2ads.List(labels.Everything())
	snap.BGPPeers, _ = s.peers.List(labels.Everything())
	snap.BGPAdvertisements, _ = s.bgpads.List(labels.Everything())
	if s.secrets != nil {
		snap.Secrets, _ = s.secrets.Secrets(s.cfg.Namespace).List(labels.Everything())
	}
	return config.Build(snap)
}

// gatherServices summarises the Services this speaker serves that have
// claimed addresses, with their endpoints, as seen at now: it rebuilds the
// summaries of the Services whose Service, EndpointSlices or AddressClaims
// changed since the last call, or with a node that has settled since
// (SettleTracker).
func (s *speaker) gatherServices(now time.Time) []Service {
	out, _ := s.sums.update(caches{services: s.services, slices: s.slices, claims: s.claims}, s.cfg.LoadBalancerClass, now)
	s.uids = s.sums.uids
	return out
}

// gatherNodes summarises every Node, with SpeakerAlive from membership.
func (s *speaker) gatherNodes(alive map[string]bool) []Node {
	all, _ := s.nodes.List(labels.Everything())
	out := make([]Node, 0, len(all))
	for _, n := range all {
		out = append(out, Node{State: NodeStateFromNode(n, alive[n.Name]), Labels: n.Labels})
	}
	return out
}

// scheduleHoldEnd pokes the loop when the earliest hold-back ends.
func (s *speaker) scheduleHoldEnd(next time.Time) {
	if s.holdT != nil {
		s.holdT.Stop()
		s.holdT = nil
	}
	if !next.IsZero() {
		s.holdT = time.AfterFunc(time.Until(next), s.poke)
	}
}

// rearm stops t (when not nil) and returns a timer that calls f at next,
// or nil when next is the zero time.
func rearm(t *time.Timer, next time.Time, f func()) *time.Timer {
	if t != nil {
		t.Stop()
	}
	if next.IsZero() {
		return nil
	}
	return time.AfterFunc(time.Until(next), f)
}

// record emits events and metrics for what changed since the last
// reconcile, and keeps when each address was taken. It reports whether
// the layer-2 announcements (or their Services) changed.
func (s *speaker) record(d Desired, now time.Time) (changed bool) {
	changed = s.prev.Owners == nil || !sameAnnouncements(s.prev.Layer2, d.Layer2)
	changes := ownershipChanges(s.prev, d, s.cfg.NodeName)
	// The first reconcile after a start knows no previous owner: its
	// gains are logged, not recorded as events. Later, at most
	// maxEventsPerReconcile events are recorded per reconcile (a node
	// failure moves a third of a large cluster's addresses at once); the
	// SpeakerStatus records carry the rest.
	first := s.prev.Owners == nil
	if len(changes) > 20 {
		s.log.Info("layer-2 announcements changed", "gained", countGained(changes), "lost", len(changes)-countGained(changes))
	}
	skipped := 0
	for i, c := range changes {
		if len(changes) <= 20 {
			s.log.Info("layer-2 announcement changed", "address", c.Addr, "gained", c.Gained, "previous", c.Previous, "interfaces", c.Interfaces)
		}
		if c.Gained {
			s.since[c.Addr] = now
			s.metrics.ownershipChanges.WithLabelValues("gained").Inc()
		}
		if first || i >= maxEventsPerReconcile {
			skipped++
			continue
		}
		s.event(c.Services, corev1.EventTypeNormal, c.reason(), c.message())
	}
	if skipped > 0 && !first {
		s.log.Info("ownership events not recorded", "count", skipped)
	}
	for a := range s.prev.Layer2 {
		if _, ok := d.Layer2[a]; !ok {
			delete(s.since, a)
			s.metrics.ownershipChanges.WithLabelValues("lost").Inc()
		}
	}
	var v4, v6 int
	for a := range d.Layer2 {
		if a.Is4() {
			v4++
		} else {
			v6++
		}
	}
	s.metrics.announced.WithLabelValues("arp").Set(float64(v4))
	s.metrics.announced.WithLabelValues("ndp").Set(float64(v6))
	s.metrics.announced.WithLabelValues("bgp").Set(float64(len(d.BGP)))
	s.prev = d
	return changed
}

// sameAnnouncements reports whether a and b announce the same addresses,
// on the same interfaces, for the same Services.
func sameAnnouncements(a, b map[netip.Addr]Layer2Entry) bool {
	if !sameInterfaces(a, b) {
		return false
	}
	for addr, e := range a {
		if !slices.Equal(e.Services, b[addr].Services) {
			return false
		}
	}
	return true
}

// maxEventsPerReconcile bounds the ownership events one reconcile records.
const maxEventsPerReconcile = 50

func countGained(cs []ownershipChange) int {
	n := 0
	for _, c := range cs {
		if c.Gained {
			n++
		}
	}
	return n
}

// event records an event on each of the Services.
func (s *speaker) event(keys []ServiceKey, typ, reason, msg string) {
	for _, k := range keys {
		ref := &corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: k.Namespace, Name: k.Name, UID: s.uids[k]}
		s.recorder.Event(ref, typ, reason, msg)
		s.metrics.events.WithLabelValues(reason).Inc()
	}
}

// bgpSessions returns the BGP sessions as the SpeakerStatus shows them.
func (s *speaker) bgpSessions() []v1alpha1.BGPSessionStatus {
	return sessionStatuses(s.bgpStatuses())
}

// statusOf returns this node's SpeakerStatus for d.
func (s *speaker) statusOf(d Desired, members int, sessions []v1alpha1.BGPSessionStatus) v1alpha1.SpeakerStatusStatus {
	st := v1alpha1.SpeakerStatusStatus{
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
			Message:            "The speaker runs; this record lists what it announces.",
			LastTransitionTime: metav1.NewTime(s.started.Truncate(time.Second)),
		}},
		Members:         int32(members),
		Layer2:          layer2Status(d, s.since),
		BGPSessions:     sessions,
		BGPSessionCount: int32(len(sessions)),
	}
	st.Layer2Addresses = int32(distinctAddresses(st.Layer2))
	for _, bs := range sessions {
		if bs.State == "Established" {
			st.BGPSessionsEstablished++
		}
	}
	return st
}

// handleConflict resolves a layer-2 conflict reported by the announcer.
//
// When membership says the other speaker is alive too, the two views
// differ only for the moment one of them takes to see the latest change
// (an endpoint moved, a node joined): the stale side is about to withdraw.
// So neither acts at once: the higher-ranked side re-asserts only if it
// still holds the address after conflictSettleKeep, and the lower-ranked
// side yields only if the other re-asserted (another conflict) before
// conflictSettleYield ends. When the other speaker is not alive in this
// view (a partition, a stale member list), the views may differ for long,
// and both act at once.
func (s *speaker) handleConflict(c layer2.Conflict) {
	if s.leaving.Load() {
		return
	}
	other, known := s.members.NodeForMAC(c.OtherMAC)
	if known && other == s.cfg.NodeName {
		return
	}
	outcome := ResolveConflict(c.Addr, s.cfg.NodeName, other, known)
	otherAlive := known && s.members.Alive()[other]
	s.log.Info("layer-2 conflict", "address", c.Addr, "interface", c.Interface, "otherMAC", c.OtherMAC.String(),
		"otherNode", other, "otherAlive", otherAlive, "evidence", string(c.Evidence), "outcome", string(outcome))
	if !otherAlive || outcome == ConflictForeign {
		s.settleConflict(c, other, outcome, otherAlive)
		return
	}
	now := time.Now()
	if p, ok := s.pending[c.Addr]; ok && p.other == other {
		p.seenAgain = true
		s.pending[c.Addr] = p
		return
	}
	delay := conflictSettleYield
	if outcome == ConflictKept {
		delay = conflictSettleKeep
	}
	s.pending[c.Addr] = pendingConflict{conflict: c, other: other, outcome: outcome, at: now}
	time.AfterFunc(delay, func() {
		select {
		case s.settled <- c.Addr:
		default:
			s.poke()
		}
	})
}

// The settle times of a conflict with a live speaker (see handleConflict).
// The keeping side re-asserts after conflictSettleKeep; its gratuitous
// burst (0, 100 and 300 ms) reaches the yielding side well before
// conflictSettleYield, so the loser stops within about half a second.
const (
	conflictSettleKeep  = 150 * time.Millisecond
	conflictSettleYield = 450 * time.Millisecond
)

// pendingConflict is a conflict with a live speaker waiting to settle.
type pendingConflict struct {
	conflict  layer2.Conflict
	other     string
	outcome   ConflictOutcome
	at        time.Time
	seenAgain bool
}

// settlePending acts on a pending conflict whose settle time has come.
func (s *speaker) settlePending(addr netip.Addr) {
	p, ok := s.pending[addr]
	if !ok {
		return
	}
	delete(s.pending, addr)
	if _, owned := s.prev.Layer2[addr]; !owned {
		s.log.Info("layer-2 conflict settled: this node no longer announces the address", "address", addr, "otherNode", p.other)
		return
	}
	if p.outcome == ConflictYielded && !p.seenAgain {
		s.log.Info("layer-2 conflict settled: the other node withdrew", "address", addr, "otherNode", p.other)
		return
	}
	s.settleConflict(p.conflict, p.other, p.outcome, true)
}

// settleOverdue settles the pending conflicts whose settle time has passed
// (their timer could not reach the loop).
func (s *speaker) settleOverdue(now time.Time) {
	for a, p := range s.pending {
		delay := conflictSettleYield
		if p.outcome == ConflictKept {
			delay = conflictSettleKeep
		}
		if now.Sub(p.at) >= delay {
			s.settlePending(a)
		}
	}
}

// settleConflict carries out a conflict's outcome.
func (s *speaker) settleConflict(c layer2.Conflict, other string, outcome ConflictOutcome, otherAlive bool) {
	s.metrics.conflicts.WithLabelValues(string(outcome)).Inc()
	keys := s.prev.Layer2[c.Addr].Services
	switch outcome {
	case ConflictKept:
		s.l2.Reannounce(c.Addr)
		s.event(keys, corev1.EventTypeWarning, EventAddressConflict, fmt.Sprintf(
			"Nodes %s and %s both answered for %s on %s; %s outranks %s for this address and keeps it.",
			s.cfg.NodeName, other, c.Addr, c.Interface, s.cfg.NodeName, other))
	case ConflictYielded:
		s.held.yield(c.Addr, other, otherAlive, time.Now())
		s.event(keys, corev1.EventTypeWarning, EventAddressConflict, fmt.Sprintf(
			"Nodes %s and %s both answered for %s on %s; %s outranks %s for this address, so %s stops announcing it.",
			s.cfg.NodeName, other, c.Addr, c.Interface, other, s.cfg.NodeName, s.cfg.NodeName))
	case ConflictForeign:
		s.event(keys, corev1.EventTypeWarning, EventAddressConflict, fmt.Sprintf(
			"A device that is not a Herald speaker (MAC %s) answers for %s on %s; node %s keeps announcing it. Find the device and remove the address from it.",
			c.OtherMAC, c.Addr, c.Interface, s.cfg.NodeName))
	}
	s.log.Warn("layer-2 conflict resolved", "address", c.Addr, "otherNode", other, "outcome", string(outcome))
}

// publishLocal publishes this node's MACs and kube-proxy verdicts in
// membership, and tells the probe loop what to probe.
func (s *speaker) publishLocal(services []Service, macs []net.HardwareAddr) {
	s.probeMu.Lock()
	s.probeTargets = probeTargets(services, s.cfg.NodeName)
	s.localMACs = macs
	meta := memberMeta{MACs: macs, DataPlaneDown: s.verdict.DataPlaneDown}
	for _, k := range s.verdict.Withdrawn {
		meta.Withdrawn = append(meta.Withdrawn, serviceHash(k))
	}
	s.probeMu.Unlock()
	if err := s.members.SetLocal(meta); err != nil {
		s.log.Warn("publish member metadata", "err", err)
	}
}

// probeLoop probes kube-proxy and publishes what it says.
func (s *speaker) probeLoop(ctx context.Context) {
	p := newKubeProxyProber(s.nodeIP, s.cfg.KubeProxyHealthPort)
	tick := time.NewTicker(s.cfg.KubeProxyProbeInterval)
	defer tick.Stop()
	for {
		s.probeMu.Lock()
		targets := s.probeTargets
		prev := s.verdict
		s.probeMu.Unlock()
		v := p.probe(ctx, targets)
		for k, n := range v.Results {
			s.metrics.kubeProxyProbes.WithLabelValues(k[0], k[1]).Add(float64(n))
		}
		if v.DataPlaneDown != prev.DataPlaneDown || !slices.Equal(v.Withdrawn, prev.Withdrawn) {
			s.log.Info("kube-proxy verdict changed", "dataPlaneDown", v.DataPlaneDown, "withdrawn", len(v.Withdrawn))
			s.probeMu.Lock()
			s.verdict = v
			s.probeMu.Unlock()
			s.poke()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// joinPeers joins the other Nodes' speakers that are not live members,
// and the extra addresses when this speaker is alone. It returns how many
// answered.
func (s *speaker) joinPeers(ctx context.Context, initial bool) int {
	alive := s.members.Alive()
	var targets []string
	nodes, _ := s.nodes.List(labels.Everything())
	for _, n := range nodes {
		if n.Name == s.cfg.NodeName || alive[n.Name] {
			continue
		}
		if a, ok := nodeAddress(n); ok {
			targets = append(targets, joinAddress(a.String(), s.cfg.MemberlistPort))
		}
	}
	if initial || len(alive) == 1 {
		targets = append(targets, s.cfg.MemberlistJoin...)
	}
	slices.Sort(targets)
	if len(targets) == 0 || ctx.Err() != nil {
		return 0
	}
	return s.members.Join(targets)
}

// joinLoop rejoins every 2 s: speakers that started later, and the other
// side after a partition healed (memberlist does not look for dead members
// by itself).
func (s *speaker) joinLoop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := s.joinPeers(ctx, false); n > 0 {
			s.log.Info("joined speakers", "contacted", n)
		}
	}
}

// janitorLoop marks the SpeakerStatus of speakers that membership lost as
// not ready, from the first live member by name only, once this speaker has
// been a member long enough to trust its view.
func (s *speaker) janitorLoop(ctx context.Context) {
	const settle = 10 * time.Second
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(start) < settle {
			continue
		}
		alive := s.members.Alive()
		names := make([]string, 0, len(alive))
		for n := range alive {
			names = append(names, n)
		}
		if slices.Min(names) != s.cfg.NodeName {
			continue
		}
		if err := s.status.markGone(ctx, alive, time.Now()); err != nil {
			s.log.Warn("mark gone speakers", "err", err)
		}
	}
}
