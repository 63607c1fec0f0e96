package heartbeat

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// Config configures Heartbeats. Zero durations take the defaults shown.
type Config struct {
	// Name is this node's member name.
	Name string
	// Listen is where heartbeats arrive and leave from: the node's address
	// (the one membership advertises, which the others expect heartbeats
	// from) and the port, the same on every node.
	Listen netip.AddrPort
	// Interval is the time between two heartbeats to each peer (25 ms).
	Interval time.Duration
	// Timeout is the silence after which a watched peer is presumed dead
	// (175 ms).
	Timeout time.Duration
	// Confirm is how long a verdict stands while membership still counts
	// the peer alive (5 s).
	Confirm time.Duration
	// Grace is how long heartbeats still go to a peer that left the plan
	// (3 s).
	Grace time.Duration
	// Prober, when set, probes the kernels of watched peers silent for
	// ProbeAfter, every Interval: a peer whose kernel answers is spared,
	// not presumed dead. Heartbeats closes it. Nil: no probes, silence
	// alone decides.
	Prober Prober
	// ProbeAfter is the silence after which a watched peer is probed
	// (Timeout/3). A peer is presumed dead only once its kernel left
	// probesToPresume probes unanswered too.
	ProbeAfter time.Duration
	// Alive says whether membership counts a node among the live members.
	Alive func(node string) bool
	// Changed is called, without locks held, when the nodes presumed dead
	// change (not for Spared); it must not block.
	Changed func()
	// Observe, when set, is called with every change (for metrics).
	Observe func(Change)
	// Logger receives the verdicts; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 25 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 175 * time.Millisecond
	}
	if c.Confirm <= 0 {
		c.Confirm = 5 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 3 * time.Second
	}
	if c.ProbeAfter <= 0 {
		c.ProbeAfter = c.Timeout / 3
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Alive == nil {
		c.Alive = func(string) bool { return true }
	}
	return c
}

// probesToPresume is how many probes a peer's kernel must leave
// unanswered since its last sign of life before it is presumed dead: four
// round trips all lost at 10% loss each way is about one chance in 800,
// and a watcher starved of CPU, which sent no probes, waits for four
// before it acts. Started at Timeout/3 of silence, every Interval, four
// are sent by the timeout, so a dead node is presumed no later.
const probesToPresume = 4

// timing is the Detector's timing for cfg.
func timing(cfg Config) Timing {
	t := Timing{Timeout: cfg.Timeout, Confirm: cfg.Confirm}
	if cfg.Prober != nil {
		t.Probes, t.ProbeInterval = probesToPresume, cfg.Interval
	}
	return t
}

// Heartbeats sends this node's heartbeats and watches its peers': the I/O
// around Detector. Its methods are safe for concurrent use.
type Heartbeats struct {
	cfg  Config
	conn *net.UDPConn
	done chan struct{}
	// wake tells an idle sendLoop that SetPlan gave it work.
	wake chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	det  *Detector
	send map[string]target
}

// target is a peer heartbeats go to: until is zero while it is in the
// plan, else when its grace ends.
type target struct {
	addr  netip.AddrPort
	until time.Time
}

// Start opens the socket and starts sending and watching (with an empty
// plan: SetPlan gives it one).
func Start(cfg Config) (*Heartbeats, error) {
	cfg = cfg.withDefaults()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		if cfg.Prober != nil {
			_ = cfg.Prober.Close()
		}
		return nil, fmt.Errorf("heartbeat: listen on %s: %w", cfg.Listen, err)
	}
	h := &Heartbeats{
		cfg: cfg, conn: conn, done: make(chan struct{}), wake: make(chan struct{}, 1),
		det: NewDetector(timing(cfg)), send: map[string]target{},
	}
	h.wg.Add(2)
	go h.sendLoop()
	go h.receiveLoop()
	if cfg.Prober != nil {
		h.wg.Add(1)
		go h.answerLoop()
	}
	return h, nil
}

// Addr is the address the socket is bound to.
func (h *Heartbeats) Addr() netip.AddrPort { return h.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// SetPlan makes p the plan; addrs are the members' addresses (the port is
// this node's). Peers without an address are left out.
func (h *Heartbeats) SetPlan(p Plan, addrs map[string]netip.Addr) {
	now := time.Now()
	port := h.cfg.Listen.Port()
	watch := make(map[string]netip.Addr, len(p.Watch))
	for _, n := range p.Watch {
		if a, ok := addrs[n]; ok && n != h.cfg.Name {
			watch[n] = a.Unmap()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.poke()
	h.det.Watch(watch, now)
	inPlan := map[string]bool{}
	for _, n := range p.Send {
		if a, ok := addrs[n]; ok && n != h.cfg.Name {
			h.send[n] = target{addr: netip.AddrPortFrom(a.Unmap(), port)}
			inPlan[n] = true
		}
	}
	for n, t := range h.send {
		if !inPlan[n] && t.until.IsZero() {
			t.until = now.Add(h.cfg.Grace)
			h.send[n] = t
		}
	}
}

// Dead returns the nodes presumed dead.
func (h *Heartbeats) Dead() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.det.Dead()
}

// Close stops sending and watching.
func (h *Heartbeats) Close() error {
	close(h.done)
	err := h.conn.Close()
	if h.cfg.Prober != nil {
		err = errors.Join(err, h.cfg.Prober.Close())
	}
	h.wg.Wait()
	return err
}

// poke wakes sendLoop if it is idle.
func (h *Heartbeats) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// sendLoop sends the heartbeats and the probes every Interval. With no
// peer to send to and none watched (a node that owns no address and
// follows no owner, as most do in a large cluster with few Services) it
// stops ticking until SetPlan gives it one: an idle speaker has no timer
// firing 40 times a second.
func (h *Heartbeats) sendLoop() {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	var seq uint64
	var pkt []byte
	var addrs []netip.AddrPort
	var lastErr, lastProbeErr time.Time
	var silent []netip.Addr
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
		}
		now := time.Now()
		addrs = addrs[:0]
		h.mu.Lock()
		for n, t := range h.send {
			if !t.until.IsZero() && now.After(t.until) {
				delete(h.send, n)
				continue
			}
			addrs = append(addrs, t.addr)
		}
		idle := len(addrs) == 0 && !h.det.Watching()
		h.mu.Unlock()
		if idle {
			tick.Stop()
			select {
			case <-h.done:
				return
			case <-h.wake:
			}
			tick.Reset(h.cfg.Interval)
			continue
		}
		seq++
		pkt = appendPacket(pkt[:0], h.cfg.Name, seq)
		for _, a := range addrs {
			if _, err := h.conn.WriteToUDPAddrPort(pkt, a); err != nil && now.Sub(lastErr) > 10*time.Second {
				// An unreachable peer fails every interval: log once in a while.
				h.cfg.Logger.Warn("send heartbeat", "to", a, "err", err)
				lastErr = now
			}
		}
		if h.cfg.Prober == nil {
			continue
		}
		h.mu.Lock()
		silent = append(silent[:0], h.det.Probe(now, h.cfg.ProbeAfter)...)
		h.mu.Unlock()
		for _, a := range silent {
			if err := h.cfg.Prober.Send(a, now); err != nil && now.Sub(lastProbeErr) > 10*time.Second {
				h.cfg.Logger.Warn("probe silent node's kernel", "addr", a, "err", err)
				lastProbeErr = now
			}
		}
	}
}

// answerLoop records the answers to the probes. When both run after a
// stall, receiveLoop's drain of queued heartbeats (a millisecond at least)
// leaves this loop time to record queued answers before silence is judged.
func (h *Heartbeats) answerLoop() {
	defer h.wg.Done()
	for {
		addr, sent, err := h.cfg.Prober.Receive()
		switch {
		case err == nil:
			h.mu.Lock()
			h.det.Answered(addr, sent)
			h.mu.Unlock()
		case errors.Is(err, net.ErrClosed):
			return
		default:
			h.cfg.Logger.Warn("receive probe answer", "err", err)
			select {
			case <-h.done:
				return
			case <-time.After(h.cfg.Interval):
			}
		}
	}
}

func (h *Heartbeats) receiveLoop() {
	defer h.wg.Done()
	buf := make([]byte, 512)
	for {
		h.mu.Lock()
		next, ok := h.det.Next()
		h.mu.Unlock()
		if now := time.Now(); !ok {
			next = now.Add(time.Second)
		} else if next.Before(now) {
			// A peer waiting for its next probe: do not spin.
			next = now.Add(time.Millisecond)
		}
		_ = h.conn.SetReadDeadline(next)
		n, from, err := h.conn.ReadFromUDPAddrPort(buf)
		switch {
		case err == nil:
			h.receive(buf[:n], from)
			continue
		case errors.Is(err, net.ErrClosed):
			return
		case !errors.Is(err, os.ErrDeadlineExceeded):
			h.cfg.Logger.Warn("receive heartbeat", "err", err)
			select {
			case <-h.done:
				return
			case <-time.After(h.cfg.Interval):
			}
			continue
		}
		// Before judging silence, read what is queued: a goroutine that
		// was starved of CPU must not take heartbeats waiting in the
		// socket for a death.
		for {
			_ = h.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			n, from, err := h.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			h.receive(buf[:n], from)
		}
		h.mu.Lock()
		changes := h.det.Check(time.Now(), h.cfg.Alive)
		h.mu.Unlock()
		h.report(changes...)
	}
}

func (h *Heartbeats) receive(p []byte, from netip.AddrPort) {
	name, _, err := parsePacket(p)
	if err != nil {
		return
	}
	h.mu.Lock()
	c, changed := h.det.Heard(name, from.Addr().Unmap(), time.Now())
	h.mu.Unlock()
	if changed {
		h.report(c)
	}
}

func (h *Heartbeats) report(changes ...Change) {
	for _, c := range changes {
		switch c.Kind {
		case Presumed:
			h.cfg.Logger.Warn("no heartbeat from node: presumed dead, taking over its layer-2 addresses", "member", c.Node, "silence", c.Silence)
		case Cleared:
			h.cfg.Logger.Warn("heartbeat again from node presumed dead: it is back, or it was a false alarm; it keeps its addresses", "member", c.Node, "presumedFor", c.Silence)
		case Confirmed:
			h.cfg.Logger.Info("membership confirms node presumed dead", "member", c.Node, "after", c.Silence)
		case Expired:
			h.cfg.Logger.Warn("membership still counts node presumed dead alive: verdict dropped until it is heard again", "member", c.Node, "after", c.Silence)
		case Spared:
			h.cfg.Logger.Warn("no heartbeat from node, but its kernel answers: not presumed dead (its speaker is stalled or stopped, or heartbeats are lost); membership decides", "member", c.Node, "silence", c.Silence)
		}
		if h.cfg.Observe != nil {
			h.cfg.Observe(c)
		}
	}
	if h.cfg.Changed != nil && slices.ContainsFunc(changes, func(c Change) bool { return c.Kind != Spared }) {
		h.cfg.Changed()
	}
}
