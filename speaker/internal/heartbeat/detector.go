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
	timeout, confirm time.Duration
	peers            map[string]*peer
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
// timeout without a heartbeat, and drops a verdict membership has not
// confirmed after confirm.
func NewDetector(timeout, confirm time.Duration) *Detector {
	return &Detector{timeout: timeout, confirm: confirm, peers: map[string]*peer{}}
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
	p.lastHeard, p.answered, p.spared = now, time.Time{}, false
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

// Silent returns the addresses of the armed nodes, without a verdict,
// not heard for at least after: the nodes whose kernels to probe.
func (d *Detector) Silent(now time.Time, after time.Duration) []netip.Addr {
	var out []netip.Addr
	for _, p := range d.peers {
		if p.armed() && p.deadSince.IsZero() && now.Sub(p.lastHeard) >= after {
			out = append(out, p.addr)
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
			p.answered = sent
		}
	}
}

// Check takes and drops verdicts as of now; alive says whether membership
// counts a node among the live members. Changes are sorted by node.
//
// A node not heard for the timeout is presumed dead unless its kernel
// answered a probe sent in the last timeout; then it is spared, and once
// silent for the confirm time it is disarmed until heard again (it is up,
// so membership decides).
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
			case now.Sub(p.lastSign()) >= d.timeout:
				p.deadSince = now
				out = append(out, Change{Node: name, Kind: Presumed, Silence: silence})
			case silence >= d.confirm:
				d.drop(name, p)
			case silence >= d.timeout && !p.spared:
				p.spared = true
				out = append(out, Change{Node: name, Kind: Spared, Silence: silence})
			}
		case !alive(name):
			out = append(out, Change{Node: name, Kind: Confirmed, Silence: now.Sub(p.deadSince)})
			d.drop(name, p)
		case now.Sub(p.deadSince) >= d.confirm:
			out = append(out, Change{Node: name, Kind: Expired, Silence: now.Sub(p.deadSince)})
			d.drop(name, p)
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// drop drops p's verdict and disarms it.
func (d *Detector) drop(name string, p *peer) {
	p.deadSince, p.lastHeard, p.answered, p.spared = time.Time{}, time.Time{}, time.Time{}, false
	if p.watchedSince.IsZero() {
		delete(d.peers, name)
	}
}

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
			t = p.deadSince.Add(d.confirm)
		case p.armed() && !p.spared:
			t = p.lastHeard.Add(d.timeout)
		case p.armed():
			t = p.lastSign().Add(d.timeout)
			if c := p.lastHeard.Add(d.confirm); c.Before(t) {
				t = c
			}
		default:
			continue
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}
