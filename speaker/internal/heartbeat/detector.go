package heartbeat

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Detector is the pure core of the failure detector: it is told what
// arrived and when, and says which watched nodes it presumes dead. It has
// no clock and no socket; it is not safe for concurrent use.
type Detector struct {
	Timing
	peers map[string]*peer
}

// Timing is a Detector's settings.
type Timing struct {
	// Timeout is the silence after which a watched node is presumed dead.
	Timeout time.Duration
	// Confirm is how long a verdict stands while membership still counts
	// the node alive.
	Confirm time.Duration
	// Probes, when not zero, is how many of the node's kernel's probes
	// must go unanswered since its last sign of life before it is presumed
	// dead, besides the timeout. It guards against the watcher's own
	// starvation: a watcher that got no CPU sent no probes, so it has no
	// evidence of a death when it wakes.
	Probes int
	// ProbeInterval is the time between two probes to a node.
	ProbeInterval time.Duration
}

type peer struct {
	addr         netip.Addr // where its heartbeats come from
	watchedSince time.Time  // zero: not watched
	lastHeard    time.Time  // zero: not heard since it was disarmed
	deadSince    time.Time  // zero: no verdict
	// answered is when the latest probe its kernel answered since it was
	// last heard was sent; zero: none.
	answered time.Time
	// spared: silent for the timeout, but its kernel answered; reported
	// once per silence.
	spared bool
	// probes is how many probes were sent since the last sign of life, the
	// last at lastProbe.
	probes    int
	lastProbe time.Time
}

// lastSign is the latest time the node was known up: a heartbeat, or its
// kernel answering a probe.
func (p *peer) lastSign() time.Time {
	if p.answered.After(p.lastHeard) {
		return p.answered
	}
	return p.lastHeard
}

// armed reports whether p can be presumed dead: it is watched and was
// heard since the watch began.
func (p *peer) armed() bool {
	return !p.watchedSince.IsZero() && !p.lastHeard.IsZero() && !p.lastHeard.Before(p.watchedSince)
}

// NewDetector returns a detector that presumes a watched node dead after
// t.Timeout without a heartbeat (and, with t.Probes, its kernel's answer to
// that many probes), and drops a verdict membership has not confirmed after
// t.Confirm.
func NewDetector(t Timing) *Detector {
	return &Detector{Timing: t, peers: map[string]*peer{}}
}

// Kind is what happened to a node's verdict.
type Kind int

const (
	// Presumed: the node fell silent; it is presumed dead.
	Presumed Kind = iota + 1
	// Cleared: a heartbeat arrived from a node presumed dead.
	Cleared
	// Confirmed: membership no longer counts the node; the verdict is
	// dropped, membership decides.
	Confirmed
	// Expired: membership still counted the node alive when the verdict
	// had stood for the confirm time; the verdict is dropped and the node
	// disarmed until it is heard again.
	Expired
	// Spared: the node was silent for the timeout, but its kernel answered
	// a probe sent during the silence: it is up (its speaker stalled or
	// stopped, or its heartbeats were lost), so no verdict is taken and
	// membership decides.
	Spared
)

func (k Kind) String() string {
	switch k {
	case Presumed:
		return "presumed"
	case Cleared:
		return "cleared"
	case Confirmed:
		return "confirmed"
	case Expired:
		return "expired"
	case Spared:
		return "spared"
	}
	return "unknown"
}

// Change is a verdict taken or dropped.
type Change struct {
	Node string
	Kind Kind
	// Silence is how long the node had not been heard (Presumed), or how
	// long the verdict stood (the others).
	Silence time.Duration
}

// Watch sets the nodes to watch and the addresses their heartbeats come
// from. A node newly watched is armed by its next heartbeat. A node no
// longer watched keeps its verdict until a heartbeat, membership or the
// confirm time drops it: the verdict itself takes the node out of the
// election, and so out of the plan.
func (d *Detector) Watch(nodes map[string]netip.Addr, now time.Time) {
	for name, p := range d.peers {
		if _, ok := nodes[name]; !ok {
			p.watchedSince = time.Time{}
			if p.deadSince.IsZero() {
				delete(d.peers, name)
			}
		}
	}
	for name, addr := range nodes {
		p := d.peers[name]
		if p == nil {
			p = &peer{}
			d.peers[name] = p
		}
		if p.addr != addr {
			p.addr, p.lastHeard = addr, time.Time{}
		}
		if p.watchedSince.IsZero() {
			p.watchedSince = now
		}
	}
}

// Heard records a heartbeat from node, sent from addr. It returns a
// Cleared change when the node was presumed dead; heartbeats from nodes
// not watched and without a verdict, or from another address, are ignored.
func (d *Detector) Heard(node string, addr netip.Addr, now time.Time) (Change, bool) {
	p := d.peers[node]
	if p == nil || p.addr != addr.Unmap() {
		return Change{}, false
	}
	p.lastHeard, p.answered, p.spared, p.probes = now, time.Time{}, false, 0
	if p.deadSince.IsZero() {
		return Change{}, false
	}
	c := Change{Node: node, Kind: Cleared, Silence: now.Sub(p.deadSince)}
	p.deadSince = time.Time{}
	if p.watchedSince.IsZero() {
		delete(d.peers, node)
	}
	return c, true
}

// Probe returns the addresses of the armed nodes, without a verdict, not
// heard for at least after: the nodes whose kernels to probe now. It
// counts the probes as sent.
func (d *Detector) Probe(now time.Time, after time.Duration) []netip.Addr {
	var out []netip.Addr
	for _, p := range d.peers {
		if p.armed() && p.deadSince.IsZero() && now.Sub(p.lastHeard) >= after {
			out = append(out, p.addr)
			p.probes++
			p.lastProbe = now
		}
	}
	return out
}

// Answered records that addr's kernel answered a probe sent at sent. An
// answer counts for an armed node without a verdict, to a probe sent
// after its last heartbeat: it keeps the node from being presumed dead
// for the timeout after sent. It does not clear a verdict: only the
// node's speaker can, with a heartbeat.
func (d *Detector) Answered(addr netip.Addr, sent time.Time) {
	addr = addr.Unmap()
	for _, p := range d.peers {
		if p.addr == addr && p.armed() && p.deadSince.IsZero() && sent.After(p.lastHeard) && sent.After(p.answered) {
			p.answered, p.probes = sent, 0
		}
	}
}

// Check takes and drops verdicts as of now; alive says whether membership
// counts a node among the live members. Changes are sorted by node.
//
// A node not heard for the timeout is presumed dead unless its kernel
// answered a probe sent in the last timeout; then it is spared, and once
// silent for the confirm time it is disarmed until heard again (it is up,
// so membership decides). With Probes, a node is presumed dead only once
// that many probes went unanswered since its last sign of life.
func (d *Detector) Check(now time.Time, alive func(string) bool) []Change {
	var out []Change
	for name, p := range d.peers {
		switch {
		case p.deadSince.IsZero():
			if !p.armed() {
				continue
			}
			silence := now.Sub(p.lastHeard)
			switch {
			case now.Sub(p.lastSign()) >= d.Timeout && p.probes >= d.Probes:
				p.deadSince = now
				out = append(out, Change{Node: name, Kind: Presumed, Silence: silence})
			case silence >= d.Confirm:
				d.drop(name, p)
			case silence >= d.Timeout && !p.spared && !p.answered.IsZero():
				p.spared = true
				out = append(out, Change{Node: name, Kind: Spared, Silence: silence})
			}
		case !alive(name):
			out = append(out, Change{Node: name, Kind: Confirmed, Silence: now.Sub(p.deadSince)})
			d.drop(name, p)
		case now.Sub(p.deadSince) >= d.Confirm:
			out = append(out, Change{Node: name, Kind: Expired, Silence: now.Sub(p.deadSince)})
			d.drop(name, p)
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// drop drops p's verdict and disarms it.
func (d *Detector) drop(name string, p *peer) {
	p.deadSince, p.lastHeard, p.answered, p.spared, p.probes = time.Time{}, time.Time{}, time.Time{}, false, 0
	if p.watchedSince.IsZero() {
		delete(d.peers, name)
	}
}

// Watching reports whether the detector holds any node: a watched one,
// or one whose verdict still stands.
func (d *Detector) Watching() bool { return len(d.peers) > 0 }

// Dead returns the nodes presumed dead.
func (d *Detector) Dead() map[string]bool {
	out := map[string]bool{}
	for name, p := range d.peers {
		if !p.deadSince.IsZero() {
			out[name] = true
		}
	}
	return out
}

// Next returns the earliest time after which Check may change a verdict
// without a heartbeat arriving, or false when none can (membership's
// agreement is also checked then, and at any earlier Check).
func (d *Detector) Next() (time.Time, bool) {
	var next time.Time
	for _, p := range d.peers {
		var t time.Time
		switch {
		case !p.deadSince.IsZero():
			t = p.deadSince.Add(d.Confirm)
		case !p.armed():
			continue
		default:
			// The presumption: the timeout after the last sign of life,
			// or after the probe still missing.
			t = p.lastSign().Add(d.Timeout)
			if p.probes < d.Probes {
				t = later(t, p.lastProbe.Add(d.ProbeInterval))
			}
			// Sparing, once the silence reaches the timeout.
			if !p.spared && !p.answered.IsZero() {
				t = earlier(t, p.lastHeard.Add(d.Timeout))
			}
			// Disarming a node that stays silent but answers.
			t = earlier(t, p.lastHeard.Add(d.Confirm))
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
