package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/bgp"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/heartbeat"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
	"github.com/herald-dev/herald/speaker/internal/membership"
	"github.com/herald-dev/herald/speaker/internal/probe"
	"github.com/herald-dev/herald/speaker/internal/report"
	"github.com/herald-dev/herald/speaker/layer2"
)

// Config configures the loop.
type Config struct {
	// NodeName is this node.
	NodeName string
	// LoadBalancerClass is the spec.loadBalancerClass served ("" for none).
	LoadBalancerClass string
	// Namespace is where BGP password Secrets are read.
	Namespace string
	// ConflictHold is how long an address lost in a conflict is held back
	// when membership cannot tell whether the winner lives.
	ConflictHold time.Duration
	// ResyncInterval recomputes the desired state even without a change.
	ResyncInterval time.Duration
	// ProbeKubeProxy probes kube-proxy at NodeIP: KubeProxyHealthPort
	// every KubeProxyProbeInterval.
	ProbeKubeProxy         bool
	NodeIP                 netip.Addr
	KubeProxyHealthPort    int
	KubeProxyProbeInterval time.Duration
	// MemberlistPort is where the other speakers listen; MemberlistJoin
	// are extra addresses to join when alone.
	MemberlistPort int
	MemberlistJoin []string
	// DrainWindow is how long this node forwards the connections of an
	// address it took over to the previous owner (see planDrains); it
	// matters only once SetDrain turned the drain on.
	DrainWindow time.Duration
}

// Deps are what the loop works with, made by the caller (the speaker's
// wiring, or a test with fake clientsets).
type Deps struct {
	Log       *slog.Logger
	Informers *kubeinput.Informers
	Changes   *Changes
	Members   *membership.Membership
	// FastDetector, when set, presumes dead the owners this node succeeds
	// to before membership does (package heartbeat).
	FastDetector FastDetector
	Layer2       *layer2.Announcer
	// BGP starts this node's BGP speaker (bgp.New in the daemon) when
	// the first BGPPeer selects the node; RouterID is its router id.
	BGP      func(bgp.Options) (BGPSpeaker, error)
	RouterID netip.Addr
	Status   *report.StatusWriter
	Recorder EventRecorder
	Metrics  *report.Metrics
	Health   *report.Health
}

// Loop is the speaker's reconcile loop: one goroutine (Run) that owns the
// fields below the line, recomputes this node's desired state whenever
// something changes and hands it to every announcer. The other fields are
// set by New and never change, or say who else may touch them.
type Loop struct {
	cfg        Config
	log        *slog.Logger
	inf        *kubeinput.Informers
	changes    *Changes
	members    *membership.Membership
	fast       FastDetector
	l2         *layer2.Announcer
	announcers []announcer
	bgp        *bgpAnnouncer
	status     *report.StatusWriter
	recorder   EventRecorder
	metrics    *report.Metrics
	health     *report.Health
	drainer    Drainer
	kernelsUp  KernelsUp

	settled chan netip.Addr
	leaving atomic.Bool

	// Shared with the probe loop.
	probeMu      sync.Mutex
	probeTargets []decide.Service
	localMACs    []net.HardwareAddr
	verdict      probe.Verdict

	// Owned by the loop goroutine.
	inc      *decide.Incremental
	bgpSeen  map[string]bgpWatch
	badPeers []bgp.PeerStatus // see unusablePeers
	// bfdRecheck refreshes the sessions when a BFD session may have failed
	// to come up (recheckBFD); touched only by the loop's goroutine.
	bfdRecheck *time.Timer
	lastFull   time.Time // the last periodic rebuild of every summary
	lastReset  time.Time // the last periodic recompute of every address
	periodic   bool      // the last reconcile was a periodic pass
	model      *config.Model
	held       *decide.HoldBack
	pending    map[netip.Addr]pendingConflict
	holdT      *time.Timer
	takeoverT  *time.Timer // fires when the next settling node settles
	drains     []decide.Drain
	drainT     *time.Timer // fires when the next drain ends
	prev       decide.Desired
	since      map[netip.Addr]time.Time
	started    time.Time
	lastNodes  int // how many Nodes the last reconcile saw
	// lastMembers is how many live speakers the last reconcile saw;
	// lastSessions the BGP sessions of the last status handed over.
	lastMembers  int
	lastSessions []v1alpha1.BGPSessionStatus
}

// New returns the loop of cfg.NodeName's speaker.
func New(cfg Config, d Deps) *Loop {
	s := &Loop{
		cfg: cfg, log: d.Log, inf: d.Informers, changes: d.Changes, members: d.Members, fast: d.FastDetector, l2: d.Layer2,
		status: d.Status, recorder: d.Recorder, metrics: d.Metrics, health: d.Health,
		settled: make(chan netip.Addr, 64), inc: decide.NewIncremental(),
		bgpSeen: map[string]bgpWatch{}, held: decide.NewHoldBack(cfg.ConflictHold),
		pending: map[netip.Addr]pendingConflict{}, since: map[netip.Addr]time.Time{},
	}
	if d.Layer2 != nil {
		s.announcers = append(s.announcers, &layer2Announcer{a: d.Layer2})
	}
	if d.BGP != nil {
		s.bgp = newBGPAnnouncer(d.RouterID, d.Log.With("component", "bgp"), d.BGP)
		s.announcers = append(s.announcers, s.bgp)
	}
	if d.Health != nil {
		d.Health.SetResync(cfg.ResyncInterval)
	}
	d.Changes.status.Store(d.Status)
	return s
}

// Run runs the loop and its helpers (the status writer, rejoining
// membership, marking gone speakers' records, probing kube-proxy) until
// ctx is done. Afterwards the loop ignores conflicts (the speaker is
// handing over).
func (s *Loop) Run(ctx context.Context) {
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go s.status.Run(bg)
	go s.joinLoop(bg)
	go s.janitorLoop(bg)
	if s.cfg.ProbeKubeProxy {
		go s.probeLoop(bg)
	}
	s.loop(ctx)
	s.leaving.Store(true)
}

// Close stops this node's BGP speaker, if one runs: graceful-restart
// peers keep the routes stale.
func (s *Loop) Close(ctx context.Context) {
	if s.bgp != nil {
		s.bgp.Close(ctx)
	}
}

// loop recomputes and applies the desired state whenever something
// changes, until ctx is done.
func (s *Loop) loop(ctx context.Context) {
	s.started = time.Now()
	resync := time.NewTicker(s.cfg.ResyncInterval)
	defer resync.Stop()
	var bgpChanges <-chan struct{}
	if s.bgp != nil {
		bgpChanges = s.bgp.Changes()
	}
	conflicts, l2Errors := s.layer2Channels()
	s.changes.Poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-bgpChanges:
			s.refreshBGP()
			continue
		case <-s.changes.trigger:
		case <-resync.C:
		case c := <-conflicts:
			s.handleConflict(c)
			s.drainConflicts()
		case a := <-s.settled:
			s.settlePending(a)
			s.drainConflicts()
		case err := <-l2Errors:
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

// reconcile gathers the inputs, computes this node's desired state, hands
// it to every announcer, and records what changed.
func (s *Loop) reconcile(ctx context.Context) (took time.Duration) {
	start := time.Now()
	var computed, applied time.Time
	defer func() {
		took = time.Since(start)
		s.health.MarkLoop()
		s.metrics.Reconciles.Inc()
		s.metrics.ReconcileSeconds.Observe(took.Seconds())
		if took >= slowReconcile && !computed.IsZero() && !applied.IsZero() {
			s.log.Info("slow reconcile", "took", took, "compute", computed.Sub(start), "apply", applied.Sub(computed),
				"record", time.Since(applied), "recomputedAll", s.inc.RecomputedAll(), "periodic", s.periodic)
		}
	}()
	s.settleOverdue(start)
	if s.changes.configDirty.Swap(false) || s.model == nil {
		s.model = s.buildModel()
	}
	// The safety nets of the incremental path: every summaryResyncInterval
	// rebuild every Service summary from the caches (Incremental then
	// recomputes the addresses of any summary that differs: a missed
	// event), and every fullResyncInterval recompute every address too.
	s.periodic = false
	if start.Sub(s.lastFull) >= summaryResyncInterval {
		s.changes.sums.RebuildAll()
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
	s.takeoverT = rearm(s.takeoverT, s.changes.sums.Takeover().Next(), s.changes.Poke)
	alive := s.liveMembers()
	nodes := s.gatherNodes(alive)
	if len(nodes) < s.lastNodes || s.periodic {
		s.forgetGoneNodes(nodes)
	}
	s.lastNodes = len(nodes)
	ifaces, macs, err := nodeInterfaces()
	if err != nil {
		s.log.Warn("list interfaces", "err", err)
	}
	held, next := s.held.Active(alive, start)
	s.scheduleHoldEnd(next)
	down, withdrawn := s.members.Verdicts(services)

	d := s.inc.Compute(decide.Inputs{
		Self: s.cfg.NodeName, Model: s.model, Services: services, Nodes: nodes, Interfaces: ifaces,
		Suppressed: held, DataPlaneDown: down, Withdrawn: withdrawn,
	})
	computed = time.Now()
	if s.fast != nil {
		s.fast.SetPlan(heartbeat.PlanOf(s.cfg.NodeName, d.Owners, d.Successors), s.members.Addresses())
	}
	// The drains first: the connections of an address this node takes are
	// forwarded before its gratuitous ARP/NDP moves them here.
	if s.drainer != nil {
		s.planDrains(d, start)
	}
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
	s.health.MarkReady()
	s.publishLocal(services, macs)
	s.updateUnusablePeers(d)
	s.report(d, len(alive), start)
	return
}

// EventRecorder records Events about objects without blocking (package
// events' Recorder in the daemon).
type EventRecorder interface {
	Event(ref corev1.ObjectReference, eventType, reason, message string)
}

// FastDetector is the fast failure detector: it is told whom this node
// sends heartbeats to and whom it watches, and says whom it presumes dead.
type FastDetector interface {
	SetPlan(heartbeat.Plan, map[string]netip.Addr)
	Dead() map[string]bool
}

// liveMembers returns the members the election counts: membership's live
// ones, less those the fast failure detector presumes dead (never this
// node).
func (s *Loop) liveMembers() map[string]bool {
	alive := s.members.Alive()
	if s.fast != nil {
		for n := range s.fast.Dead() {
			if n != s.cfg.NodeName {
				delete(alive, n)
			}
		}
	}
	return alive
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

// scheduleHoldEnd pokes the loop when the earliest hold-back ends.
func (s *Loop) scheduleHoldEnd(next time.Time) {
	if s.holdT != nil {
		s.holdT.Stop()
		s.holdT = nil
	}
	if !next.IsZero() {
		s.holdT = time.AfterFunc(time.Until(next), s.changes.Poke)
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

// layer2Channels returns the layer-2 announcer's conflicts and errors, or
// nil channels (never ready) when the loop has no layer-2 announcer.
func (s *Loop) layer2Channels() (<-chan layer2.Conflict, <-chan error) {
	if s.l2 == nil {
		return nil, nil
	}
	return s.l2.Conflicts(), s.l2.Errors()
}
