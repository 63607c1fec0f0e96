package soak

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// Options configures Run.
type Options struct {
	// Duration is how long operations and faults go on.
	Duration time.Duration
	// Seed chooses the operations and faults: the same seed, the same steps.
	Seed uint64
	// Rate is the number of steps (one operation each) per second.
	Rate float64
	// Faults are the kinds of fault to make.
	Faults []FaultKind
	// FaultGap and FaultLength are in steps (see PlanConfig).
	FaultGap, FaultLength [2]int
	// Settle is the bound after which a change must show (invariants 3, 4, 6).
	Settle time.Duration
	// RecoverSettle is how long after a process restarts or a link comes back
	// the wire is not judged (the speaker starts, joins, its BGP session and
	// BFD come up).
	RecoverSettle time.Duration
	// FailoverBound is how long a probed Service's client may see an outage
	// after a fault on the node carrying it.
	FailoverBound time.Duration
	// ProbeInterval and ProbeTimeout are the probing client's.
	ProbeInterval, ProbeTimeout time.Duration
	// Dir keeps the lab's logs; Log receives one line per step and fault.
	Dir string
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Rate == 0 {
		o.Rate = 1
	}
	if o.Settle == 0 {
		o.Settle = 5 * time.Second
	}
	if o.RecoverSettle == 0 {
		o.RecoverSettle = 15 * time.Second
	}
	if o.FailoverBound == 0 {
		o.FailoverBound = 3 * time.Second
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 10 * time.Millisecond
	}
	if o.ProbeTimeout == 0 {
		// Not measure-e2e's 200 ms: on a shared machine the soak's own
		// process may stall that long, and both probes then "fail" at once.
		o.ProbeTimeout = time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// controllerSettle is how long after a leader fault the controller's work is
// not judged: a standby waits out the Lease (10 s) before it leads.
const controllerSettle = 20 * time.Second

// soak is one running soak.
type soak struct {
	opts  Options
	lab   *productlab.Lab
	world *world
	obs   *Observer
	plan  *Plan

	mu       sync.Mutex
	checker  *Checker
	pending  []Change
	unusable map[string]string // node -> why
	l2Owner  map[netip.Addr]string
	report   *Report
	windows  map[string][]Window // by probe target
	held     map[string]string   // by Service key: the addresses last seen held, for the log
	stopped  int                 // controller replica a fault stopped, -1 none
	starved  *netlab.CPULimit    // the cgroup of a cpu-starve fault
	// bfdMultiplier is the BGPPeer's, as the soak last set it (the steps'
	// goroutine only).
	bfdMultiplier int32
	faultFrom     time.Time
}

// Run builds the product lab on t, runs the soak and returns its report.
// Everything it starts is removed in t's cleanup.
func Run(ctx context.Context, t netlab.T, opts Options) *Report {
	opts.defaults()
	started := time.Now()
	lab := productlab.New(t, productlab.Options{ControllerReplicas: 2, Dir: opts.Dir})
	nodes := lab.Cluster.NodeNames()
	s := &soak{opts: opts, lab: lab, unusable: map[string]string{}, l2Owner: map[netip.Addr]string{}, stopped: -1,
		bfdMultiplier: InitialConfig.BFDMultiplier,
		windows:       map[string][]Window{}, held: map[string]string{},
		plan: NewPlan(PlanConfig{Seed: opts.Seed, Nodes: nodes, Faults: opts.Faults,
			FaultGap: opts.FaultGap, FaultLength: opts.FaultLength}),
		checker: NewChecker(Config{Settle: opts.Settle,
			L2:  []netip.Prefix{netlab.L2PoolV4, netlab.L2PoolV6},
			BGP: []netip.Prefix{netlab.RoutedPoolV4, netlab.RoutedPoolV6}}),
		report: newReport(opts)}
	s.obs = &Observer{Lab: lab, Namespaces: []string{NamespaceA, NamespaceB, NamespaceProbe}, Selector: ManagedLabel}
	t.Cleanup(func() {
		s.mu.Lock()
		lim := s.starved
		s.mu.Unlock()
		if err := lim.Remove(); err != nil {
			t.Logf("%v", err)
		}
	})
	s.setUp(ctx)
	s.report.LabUp = time.Since(started).Round(time.Second)
	fmt.Fprintf(opts.Log, "lab up after %v (prefix %s); soaking for %v, seed %d\n",
		s.report.LabUp, lab.Cluster.Lab.Prefix(), opts.Duration, opts.Seed)

	probes := map[string]*productlab.Prober{}
	for _, p := range ProbeServices() {
		probes[p.Key()] = lab.Probe(p.Requested[0], int(p.Port), opts.ProbeInterval, opts.ProbeTimeout)
	}
	checkCtx, stopChecks := context.WithCancel(ctx)
	checksDone := make(chan struct{})
	go func() {
		defer close(checksDone)
		s.checkLoop(checkCtx)
	}()

	s.steps(ctx)
	// Let the last changes and restorations settle, still checking.
	select {
	case <-ctx.Done():
	case <-time.After(opts.RecoverSettle + opts.Settle):
	}
	stopChecks()
	<-checksDone

	for key, p := range probes {
		as := p.Stop()
		var attempts []Attempt
		failed := 0
		for _, a := range as {
			at := Attempt{Start: a.Start, OK: a.OK()}
			if !at.OK {
				failed++
				at.Err = a.Err.Error()
			}
			attempts = append(attempts, at)
		}
		s.mu.Lock()
		ws := s.windows[key]
		s.mu.Unlock()
		s.report.Checks[InvOutage] += len(as)
		vs, isolated := Outages(key, attempts, ws, opts.ProbeTimeout, opts.FailoverBound)
		for _, v := range vs {
			s.report.add(v)
		}
		s.report.Probes[key] = ProbeCount{Attempts: len(as), Failed: failed, Isolated: isolated, Windows: len(ws)}
	}
	s.report.Elapsed = time.Since(started).Round(time.Second)
	s.mu.Lock()
	for k, n := range s.checker.Checks {
		s.report.Checks[k] += n
	}
	s.mu.Unlock()
	return s.report
}

// setUp configures the router, Herald, the namespaces, the pods and the
// probed Services, and waits until the probed Services answer.
func (s *soak) setUp(ctx context.Context) {
	l := s.lab
	var nbrs []netlab.BGPNeighborConfig
	for _, n := range l.Cluster.Nodes {
		nbrs = append(nbrs, netlab.BGPNeighborConfig{Address: n.Addr4(), ASN: NodeASN,
			HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, BFD: true})
	}
	l.Cluster.Router.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: nbrs, InstallRoutes: true})
	for _, ns := range []string{NamespaceA, NamespaceB, NamespaceProbe} {
		l.CreateNamespace(ns, map[string]string{"soak.herald.dev/namespace": ns})
	}
	l.Apply(configYAML(s.plan.InitialL2Size(), l.Cluster.Router.Addr4()))

	s.world = &world{lab: l, pods: map[string]*netlab.Pod{}}
	for _, n := range l.Cluster.Nodes {
		for k := 1; k <= PodsPerNode; k++ {
			p := n.AddPod(PodName(n.Name(), k))
			p.Serve(productlab.WebPort)
			s.world.pods[p.Name] = p
		}
	}
	probeEndpoints := map[string]EndpointState{}
	for _, n := range l.Cluster.Nodes[:2] {
		p := n.AddPod(ProbePod(n.Name()))
		p.Serve(productlab.WebPort)
		s.world.pods[p.Name] = p
		probeEndpoints[p.Name] = Ready
	}
	for _, p := range ProbeServices() {
		p.Endpoints = maps.Clone(probeEndpoints)
		if err := s.world.apply(ctx, &Op{Kind: OpCreate, Service: p}); err != nil {
			l.T.Fatalf("%v", err)
		}
	}
	for _, p := range ProbeServices() {
		l.WaitConnect(p.Requested[0], int(p.Port), 120*time.Second, nil)
	}
	l.WaitBGPSessions(120*time.Second, []string{"router"}, nil)
}

// steps runs the plan for the soak's duration, one step every 1/Rate.
func (s *soak) steps(ctx context.Context) {
	period := time.Duration(float64(time.Second) / s.opts.Rate)
	tick := time.NewTicker(period)
	defer tick.Stop()
	end := time.Now().Add(s.opts.Duration)
	var active *Fault
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			end = time.Now()
			continue
		case <-tick.C:
		}
		s.supervise(ctx)
		st := s.plan.Next()
		if st.FaultEnd != nil {
			s.endFault(ctx, st.FaultEnd)
			active = nil
		}
		if st.FaultStart != nil {
			s.startFault(ctx, st.FaultStart)
			active = st.FaultStart
		}
		s.operate(ctx, st)
	}
	if active != nil {
		s.endFault(context.Background(), active)
	}
}

// supervise does what the kubelet would: it starts again a controller
// replica or a speaker that exited when no fault stopped it (a controller
// exits when it loses its Lease, for example while the apiserver is away),
// and counts it in the report.
func (s *soak) supervise(ctx context.Context) {
	l := s.lab
	s.mu.Lock()
	stopped, unusable := s.stopped, maps.Clone(s.unusable)
	s.mu.Unlock()
	for i := range 2 {
		if p := l.Controller(i); i != stopped && (p == nil || p.Exited()) {
			s.restarted(fmt.Sprintf("controller %d", i), p)
			l.StartController(i)
			s.record(Change{Time: time.Now(), What: fmt.Sprintf("controller %d restarted after it exited", i), Settle: controllerSettle, Controller: true})
		}
	}
	for _, name := range l.Cluster.NodeNames() {
		n := l.Node(name)
		why := unusable[name]
		if why == string(FaultSpeakerKill) || why == string(FaultSpeakerTerm) {
			continue
		}
		if p := l.Speaker(n); p == nil || p.Exited() {
			s.restarted("speaker on "+name, p)
			l.StartSpeaker(n)
			s.record(Change{Time: time.Now(), What: "speaker restarted on " + name + " after it exited", Settle: s.opts.RecoverSettle})
		}
	}
}

// restarted records that what (whose process p exited) is started again.
func (s *soak) restarted(what string, p *netlab.Process) {
	why := "not running"
	if p != nil {
		why = fmt.Sprintf("exited (%v)", p.Err())
	}
	s.mu.Lock()
	s.report.Restarts = append(s.report.Restarts, fmt.Sprintf("%s %s %s", time.Now().UTC().Format("15:04:05.000"), what, why))
	s.mu.Unlock()
	fmt.Fprintf(s.opts.Log, "%s supervisor: %s %s; started again\n", time.Now().UTC().Format("15:04:05.000"), what, why)
}

// operate applies one step's operation and records it.
func (s *soak) operate(ctx context.Context, st Step) {
	op := st.Op
	now := time.Now()
	if op.Kind == OpConfig {
		s.plannedDisruption(now, *op.Config, op.Desc)
	}
	// Recorded before it is made, so that no check overlapping it judges
	// without it.
	ch := Change{Time: now, What: op.Desc, Endpoints: op.Kind == OpEndpoints}
	if op.Service != nil {
		ch.Service = op.Service.Key()
	}
	if op.Kind == OpPool {
		ch.Service = ""
	}
	s.record(ch)
	err := s.world.apply(ctx, op)
	s.mu.Lock()
	s.report.Ops[op.Kind]++
	if err != nil {
		s.report.OpErrors = append(s.report.OpErrors, fmt.Sprintf("%s step %d %s: %v", now.UTC().Format("15:04:05.000"), st.Index, op.Desc, err))
	}
	s.mu.Unlock()
	status := "ok"
	if err != nil {
		status = "error: " + err.Error()
	}
	fmt.Fprintf(s.opts.Log, "%s step %d: %s (%s)\n", now.UTC().Format("15:04:05.000"), st.Index, op.Desc, status)
}

func (s *soak) record(chs ...Change) {
	s.mu.Lock()
	s.pending = append(s.pending, chs...)
	s.mu.Unlock()
}

// startFault makes f happen and records it.
func (s *soak) startFault(ctx context.Context, f *Fault) {
	l := s.lab
	now := time.Now()
	desc := string(f.Kind)
	settle, ctrl := s.faultSettle(f.Kind, s.opts.Settle)
	// Recorded before it happens: a check whose wire observation overlaps
	// the fault must know of it (a speaker stopping with SIGTERM answers a
	// moment after its successor starts to).
	s.record(Change{Time: now, What: fmt.Sprintf("fault: %s %s", f.Kind, f.Node), Settle: settle, Controller: ctrl})
	if f.Kind.OnNode() {
		s.mu.Lock()
		s.unusable[f.Node] = string(f.Kind)
		s.mu.Unlock()
	}
	switch f.Kind {
	case FaultLeaderKill, FaultLeaderTerm:
		i, err := l.LeaseHolder(ctx)
		if err != nil || i < 0 {
			i = 0
		}
		desc = fmt.Sprintf("%s of controller %d", f.Kind, i)
		l.StopController(i, f.Kind == FaultLeaderTerm)
		s.mu.Lock()
		s.stopped = i
		s.mu.Unlock()
	case FaultAPIRestart:
		if err := l.CP.RestartAPIServer(ctx, 5*time.Second); err != nil {
			l.T.Fatalf("soak: restart the kube-apiserver: %v", err)
		}
		desc = fmt.Sprintf("%s (down %v)", f.Kind, time.Since(now).Round(100*time.Millisecond))
	case FaultAPISlow:
		l.Cluster.SetAPIFault(netlab.APIFault{Delay: 500 * time.Millisecond}, false)
	case FaultAPIFail:
		l.Cluster.SetAPIFault(netlab.APIFault{RefusePercent: 50}, true)
	case FaultSpeakerKill, FaultSpeakerTerm, FaultLinkCut, FaultSpeakerFreeze, FaultCPUStarve:
		n := l.Node(f.Node)
		s.openWindows(ctx, f, now)
		switch f.Kind {
		case FaultCPUStarve:
			var pids []int
			for _, p := range []*netlab.Process{l.Speaker(n), n.KubeProxy} {
				if p != nil && !p.Exited() {
					pids = append(pids, p.Pid())
				}
			}
			lim, err := netlab.LimitCPU(l.Cluster.Lab.Prefix()+"-starve-"+n.Name(), 2, pids...)
			if err != nil {
				l.T.Fatalf("soak: starve %s: %v", n.Name(), err)
			}
			s.mu.Lock()
			s.starved = lim
			s.mu.Unlock()
		case FaultSpeakerKill:
			l.KillSpeaker(n)
		case FaultSpeakerTerm:
			l.StopSpeaker(n)
		case FaultSpeakerFreeze:
			if p := l.Speaker(n); p != nil {
				if err := p.Signal(syscall.SIGSTOP); err != nil {
					l.T.Fatalf("soak: freeze the speaker on %s: %v", n.Name(), err)
				}
			}
		case FaultLinkCut:
			if err := n.LAN.Detach(); err != nil {
				l.T.Fatalf("soak: cut %s's link: %v", n.Name(), err)
			}
		}
		desc = fmt.Sprintf("%s on %s", f.Kind, f.Node)
	}
	s.faultFrom = now
	s.mu.Lock()
	s.report.Faults[f.Kind]++
	s.mu.Unlock()
	fmt.Fprintf(s.opts.Log, "%s fault: %s for %d steps\n", now.UTC().Format("15:04:05.000"), desc, f.Steps)
}

// faultSettle returns how long after the start or end of a fault of kind k
// the invariants wait (onNode for a fault on a node), and whether only those
// on the controller's work wait (a leader fault: the speakers announce without
// the controller). A fault of the API holds back everything for
// RecoverSettle: the speakers see nothing either until their watches are back
// (the 30-minute run of seed 32 saw a node left out by an L2Advertisement
// edit made right after an apiserver restart answer for 5 s).
func (s *soak) faultSettle(k FaultKind, onNode time.Duration) (time.Duration, bool) {
	switch k {
	case FaultLeaderKill, FaultLeaderTerm:
		return controllerSettle, true
	case FaultAPIRestart, FaultAPISlow, FaultAPIFail:
		return s.opts.RecoverSettle, false
	}
	return onNode, false
}

// endFault undoes f (restarts the process, restores the link).
func (s *soak) endFault(ctx context.Context, f *Fault) {
	l := s.lab
	now := time.Now()
	desc := ""
	settle, ctrl := s.faultSettle(f.Kind, s.opts.RecoverSettle)
	// Recorded before it happens, as startFault does.
	s.record(Change{Time: now, What: fmt.Sprintf("recovery from %s %s", f.Kind, f.Node), Settle: settle, Controller: ctrl})
	switch f.Kind {
	case FaultLeaderKill, FaultLeaderTerm:
		s.mu.Lock()
		i := s.stopped
		s.stopped = -1
		s.mu.Unlock()
		if i >= 0 {
			l.StartController(i)
		}
		desc = fmt.Sprintf("controller %d restarted", i)
	case FaultSpeakerKill, FaultSpeakerTerm:
		l.StartSpeaker(l.Node(f.Node))
		desc = "speaker restarted on " + f.Node
	case FaultAPIRestart:
		desc = "kube-apiserver restarted"
	case FaultAPISlow, FaultAPIFail:
		l.Cluster.SetAPIFault(netlab.APIFault{}, false)
		desc = "the path to the apiserver is healthy again"
	case FaultCPUStarve:
		s.mu.Lock()
		lim := s.starved
		s.starved = nil
		s.mu.Unlock()
		if err := lim.Remove(); err != nil {
			l.T.Fatalf("soak: end the starvation of %s: %v", f.Node, err)
		}
		desc = "CPU restored on " + f.Node
	case FaultSpeakerFreeze:
		if p := l.Speaker(l.Node(f.Node)); p != nil {
			if err := p.Signal(syscall.SIGCONT); err != nil {
				l.T.Fatalf("soak: resume the speaker on %s: %v", f.Node, err)
			}
		}
		desc = "speaker resumed on " + f.Node
	case FaultLinkCut:
		if err := l.Node(f.Node).LAN.Attach(); err != nil {
			l.T.Fatalf("soak: restore %s's link: %v", f.Node, err)
		}
		desc = "link restored on " + f.Node
	}
	if f.Node != "" {
		s.closeWindows(f, now)
		s.mu.Lock()
		delete(s.unusable, f.Node)
		s.mu.Unlock()
	}
	fmt.Fprintf(s.opts.Log, "%s recovery: %s\n", now.UTC().Format("15:04:05.000"), desc)
}

// openWindows notes, for each probed Service the node f hits carries (its
// layer-2 owner at the last observation, the router's path for the client,
// or, for a cut link, a node running one of its pods), that an outage may
// start now.
func (s *soak) openWindows(ctx context.Context, f *Fault, now time.Time) {
	for _, p := range ProbeServices() {
		a := p.Requested[0]
		carries := false
		switch p.Mode {
		case ModeProbeL2:
			s.mu.Lock()
			carries = s.l2Owner[a] == f.Node || s.l2Owner[a] == ""
			s.mu.Unlock()
		case ModeProbeBGP:
			n, err := s.lab.RouterPath(ctx, s.lab.Client.Addr4(), a)
			carries = err != nil || n.Name() == f.Node
		}
		if _, pod := s.world.pods[ProbePod(f.Node)]; pod && f.Kind == FaultLinkCut {
			carries = true // its pod there is unreachable, and no kubelet marks it so
		}
		if !carries {
			continue
		}
		s.mu.Lock()
		s.windows[p.Key()] = append(s.windows[p.Key()], Window{Start: now, End: now, What: fmt.Sprintf("%s on %s", f.Kind, f.Node)})
		s.mu.Unlock()
	}
}

// plannedDisruption opens a window for each probed Service that the
// configuration edit c (what) disrupts, as a fault does:
//   - the layer-2 probe, when the L2Advertisement leaves out the node that
//     answers for it: its address moves, which costs a client up to the
//     failover bound until planned moves are lossless (issue 18);
//   - the BGP probe, when the BFD settings change: GoBGP restarts a BFD
//     session to change them and the router then resets the BGP session, so
//     every node's routes go for a second or two (BGPPeer.spec.bfd).
//
// Only the steps' goroutine calls it.
func (s *soak) plannedDisruption(now time.Time, c ConfigState, what string) {
	bfdEdit := c.BFDMultiplier != s.bfdMultiplier
	s.bfdMultiplier = c.BFDMultiplier
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ProbeServices() {
		owner := s.l2Owner[p.Requested[0]]
		moved := p.Mode == ModeProbeL2 && c.L2Exclude != "" && (owner == c.L2Exclude || owner == "")
		if moved || p.Mode == ModeProbeBGP && bfdEdit {
			s.windows[p.Key()] = append(s.windows[p.Key()], Window{Start: now, End: now, What: what})
		}
	}
}

// closeWindows ends the windows f opened: a cut link's outage may last until
// it is restored; every fault's end may cause its own short outage (the
// address moves back).
func (s *soak) closeWindows(f *Fault, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	what := fmt.Sprintf("%s on %s", f.Kind, f.Node)
	for key, ws := range s.windows {
		// Other windows (a planned move) may have opened since the fault's.
		i := slices.IndexFunc(ws, func(w Window) bool { return w.What == what && w.Start.Equal(s.faultFrom) })
		if i < 0 {
			continue
		}
		if f.Kind == FaultLinkCut {
			ws[i].End = now
		}
		s.windows[key] = append(ws, Window{Start: now, End: now, What: "recovery from " + what})
	}
}

// checkLoop observes and checks about once a second until ctx ends.
func (s *soak) checkLoop(ctx context.Context) {
	for ctx.Err() == nil {
		began := time.Now()
		s.checkOnce(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second - time.Since(began)):
		}
	}
}

// checkOnce takes one snapshot, API then wire, and checks it.
func (s *soak) checkOnce(ctx context.Context) {
	snap, err := s.obs.API(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.mu.Lock()
			s.report.ObserveErrors++
			s.mu.Unlock()
		}
		return
	}
	s.mu.Lock()
	for _, n := range s.lab.Cluster.NodeNames() {
		why, down := s.unusable[n]
		if why == string(FaultCPUStarve) {
			snap.Nodes = append(snap.Nodes, Node{Name: n, Usable: true, Degraded: true})
			continue
		}
		snap.Nodes = append(snap.Nodes, Node{Name: n, Usable: !down})
	}
	targets := s.checker.L2Targets(snap)
	s.mu.Unlock()
	s.obs.Wire(ctx, &snap, targets, true)
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, ans := range snap.Wire.L2 {
		if len(ans.Nodes) == 1 {
			s.l2Owner[a] = ans.Nodes[0]
		}
	}
	s.logHeld(snap)
	s.checker.Record(s.pending...)
	s.pending = nil
	vs := s.checker.Observe(snap)
	s.report.Snapshots++
	for _, v := range vs {
		if s.report.add(v) {
			fmt.Fprintf(s.opts.Log, "VIOLATION %s\n", v)
			s.dump(v)
		}
	}
}

// logHeld writes to the log each change of a Service's held addresses (and
// its UID), as the API showed it: the evidence behind invariants 1, 2 and 5.
func (s *soak) logHeld(snap Snapshot) {
	seen := map[string]bool{}
	for _, svc := range snap.Services {
		k := svc.Key()
		seen[k] = true
		now := fmt.Sprintf("%v uid %s", holdAddrs(svc.Held), svc.UID)
		if s.held[k] != now {
			fmt.Fprintf(s.opts.Log, "%s observed: %s holds %s\n", snap.Time.UTC().Format("15:04:05.000"), k, now)
			s.held[k] = now
		}
	}
	for k := range s.held {
		if !seen[k] {
			fmt.Fprintf(s.opts.Log, "%s observed: %s gone\n", snap.Time.UTC().Format("15:04:05.000"), k)
			delete(s.held, k)
		}
	}
}

// dump writes the Services and pools a violation names, as kubectl shows
// them, next to the log (violation-<n>.yaml).
func (s *soak) dump(v Violation) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", v)
	for _, o := range v.Objects {
		var args []string
		switch kind, name, _ := strings.Cut(o, " "); kind {
		case "Service":
			ns, n, _ := strings.Cut(name, "/")
			args = []string{"get", "service", "-n", ns, n, "-o", "yaml"}
		case "IPPool":
			args = []string{"get", "ippool", name, "-o", "yaml"}
		default:
			continue
		}
		out, err := s.lab.Kubectl(args...)
		if err != nil {
			out = fmt.Sprintf("# kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		b.WriteString("---\n" + out)
	}
	path := filepath.Join(s.opts.Dir, fmt.Sprintf("violation-%d.yaml", len(s.report.Violations)))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(s.opts.Log, "soak: %v\n", err)
	}
}
