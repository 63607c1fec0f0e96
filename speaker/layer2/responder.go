package layer2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

// proto is the protocol a responder speaks.
type proto uint8

const (
	protoARP proto = iota
	protoNDP
)

func (p proto) String() string {
	if p == protoNDP {
		return "NDP"
	}
	return "ARP"
}

// responder answers one protocol on one interface. Its run goroutine owns
// the read side of the socket and reopens it when it fails; Set and bursts
// write through it under mu.
type responder struct {
	a      *Announcer
	key    responderKey
	cnt    *counters
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	link   link // valid while a socket is open
	arp    net.PacketConn
	ndp    ndpConn
	groups map[netip.Addr]struct{} // solicited-node groups joined on ndp
	// allMulti is true while the interface is asked to accept every
	// multicast frame instead of one group per address (see syncGroups).
	allMulti bool
}

// startResponder opens the socket for k at once, so the caller can send
// its gratuitous burst, and starts the goroutine that reads it. When the
// open fails the responder still starts and keeps retrying; the error is
// returned for the caller to report. The caller holds a.mu with a.closed
// unset.
func (a *Announcer) startResponder(k responderKey) (*responder, error) {
	ctx, cancel := context.WithCancel(a.ctx)
	r := &responder{a: a, key: k, cnt: a.counters(k.proto), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	err := r.open()
	if err != nil {
		r.cnt.socketErrors.Add(1)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(r.done)
		r.run(err == nil)
	}()
	return r, err
}

// stop closes the responder and waits for its goroutine.
func (r *responder) stop() {
	r.cancel()
	<-r.done
}

// open looks the interface up again (it may have been recreated with a new
// index) and opens the socket.
func (r *responder) open() error {
	l, err := r.a.sock.link(r.key.iface)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.key.proto {
	case protoARP:
		r.arp, err = r.a.sock.listenARP(l)
	case protoNDP:
		r.ndp, err = r.a.sock.listenNDP(l)
		r.groups = map[netip.Addr]struct{}{}
		r.allMulti = false
	}
	if err != nil {
		return err
	}
	r.link = l
	r.a.publish(func() { r.a.macs[r] = l.mac })
	return nil
}

// closeSocket closes the socket, if open.
func (r *responder) closeSocket() {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.arp != nil:
		r.arp.Close()
		r.arp = nil
	case r.ndp != nil:
		r.ndp.Close()
		r.ndp = nil
	}
	r.a.publish(func() { delete(r.a.macs, r) })
}

// run serves the socket until it fails, then reopens it with backoff, until
// the responder's context is done. After a reopen it announces every
// address it owns again, since neighbours may have lost track while the
// socket was down.
func (r *responder) run(open bool) {
	defer r.closeSocket()
	backoff := r.a.cfg.RetryMin
	for {
		if open {
			err := r.serve()
			r.closeSocket()
			if r.ctx.Err() != nil {
				return
			}
			r.cnt.socketErrors.Add(1)
			r.a.reportError(fmt.Errorf("layer2: %s responder on %s: read: %w", r.key.proto, r.key.iface, err))
			open = false
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, r.a.cfg.RetryMax)
		if err := r.open(); err != nil {
			r.cnt.socketErrors.Add(1)
			r.a.reportError(fmt.Errorf("layer2: %s responder on %s: reopen: %w", r.key.proto, r.key.iface, err))
			continue
		}
		open = true
		backoff = r.a.cfg.RetryMin
		owned := r.a.own.Load().byIface[r.key.iface]
		if r.key.proto == protoNDP {
			if err := r.syncGroups(owned); err != nil {
				r.a.reportError(err)
			}
		}
		var addrs []netip.Addr
		for a := range owned {
			if protoOf(a) == r.key.proto {
				addrs = append(addrs, a)
			}
		}
		slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
		r.a.burst(r, addrs)
	}
}

// serve reads and answers packets until the socket fails or the context is
// done.
func (r *responder) serve() error {
	r.mu.Lock()
	arpConn, ndpConn, l := r.arp, r.ndp, r.link
	r.mu.Unlock()
	if arpConn != nil {
		stop := context.AfterFunc(r.ctx, func() { arpConn.Close() })
		defer stop()
		return r.serveARP(arpConn, l)
	}
	stop := context.AfterFunc(r.ctx, func() { ndpConn.Close() })
	defer stop()
	return r.serveNDP(ndpConn, l)
}

func (r *responder) serveARP(c net.PacketConn, l link) error {
	buf := make([]byte, 1536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		d := decideARP(buf[:n], l.name, l.mac, r.a.own.Load())
		if d.request {
			r.cnt.requests.Add(1)
		}
		if d.conflict != nil {
			r.a.reportConflict(*d.conflict, r.cnt)
		}
		if d.drop != answered {
			r.cnt.drops[d.drop].Add(1)
			continue
		}
		if err := writeARP(c, d.reply, d.replyTo); err != nil {
			r.cnt.sendErrors.Add(1)
			continue
		}
		r.cnt.replies.Add(1)
	}
}

func (r *responder) serveNDP(c ndpConn, l link) error {
	for {
		p, err := c.ReadNDP()
		if errors.Is(err, errMalformed) {
			r.cnt.drops[DropMalformed].Add(1)
			continue
		}
		if err != nil {
			return err
		}
		d := decideNDP(p, l.name, l.mac, r.a.own.Load())
		if d.request {
			r.cnt.requests.Add(1)
		}
		if d.conflict != nil {
			r.a.reportConflict(*d.conflict, r.cnt)
		}
		if d.drop != answered {
			r.cnt.drops[d.drop].Add(1)
			continue
		}
		out := ndpOut{msg: d.reply, src: d.reply.TargetAddress, dst: d.replyTo, dstMAC: d.replyMAC}
		if err := c.WriteNDP(out); err != nil {
			r.cnt.sendErrors.Add(1)
			continue
		}
		r.cnt.replies.Add(1)
	}
}

func writeARP(c net.PacketConn, p *arp.Packet, dst net.HardwareAddr) error {
	f, err := arpFrame(p, dst)
	if err != nil {
		return err
	}
	_, err = c.WriteTo(f, &packet.Addr{HardwareAddr: dst})
	return err
}

// sendGratuitous announces addr on the interface, if the socket is open.
func (r *responder) sendGratuitous(addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.arp != nil:
		frames, err := gratuitousARP(r.link.mac, addr)
		if err != nil {
			r.cnt.sendErrors.Add(1)
			return
		}
		for _, f := range frames {
			if _, err := r.arp.WriteTo(f, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
				r.cnt.sendErrors.Add(1)
				continue
			}
			r.cnt.gratuitous.Add(1)
		}
	case r.ndp != nil:
		out := ndpOut{msg: unsolicitedNA(r.link.mac, addr), src: addr, dst: allNodes, dstMAC: multicastMAC(allNodes)}
		if err := r.ndp.WriteNDP(out); err != nil {
			r.cnt.sendErrors.Add(1)
			return
		}
		r.cnt.gratuitous.Add(1)
	}
}

// MaxSolicitedNodeGroups is the number of solicited-node groups above which
// an NDP responder puts its interface in all-multicast mode instead of
// joining one group per address; it goes back to single groups at half as
// many.
const MaxSolicitedNodeGroups = 256

// syncGroups makes the socket a member of exactly the solicited-node groups
// of the IPv6 addresses in owned (several addresses may share a group), or,
// above MaxSolicitedNodeGroups, of none with the interface in all-multicast
// mode.
func (r *responder) syncGroups(owned map[netip.Addr]struct{}) error {
	want := map[netip.Addr]struct{}{}
	for a := range owned {
		if a.Is6() {
			g, err := ndp.SolicitedNodeMulticast(a)
			if err != nil {
				return fmt.Errorf("layer2: solicited-node group of %s: %w", a, err)
			}
			want[g] = struct{}{}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ndp == nil {
		return nil // joined when the socket (re)opens
	}
	var errs []error
	// A socket holds a bounded number of group memberships (the kernel's
	// optmem_max; about 700 by default), and a NIC's multicast filter is
	// small too. With many addresses, ask for every multicast frame
	// instead: the BPF filter still passes only neighbour discovery.
	// Hysteresis keeps the mode from flapping around the threshold.
	switch {
	case !r.allMulti && len(want) > MaxSolicitedNodeGroups:
		if err := r.ndp.SetAllMulticast(true); err != nil {
			errs = append(errs, fmt.Errorf("layer2: all-multicast on %s: %w", r.key.iface, err))
			break
		}
		r.allMulti = true
	case r.allMulti && len(want) <= MaxSolicitedNodeGroups/2:
		defer func() {
			if err := r.ndp.SetAllMulticast(false); err != nil {
				r.a.reportError(fmt.Errorf("layer2: leave all-multicast on %s: %w", r.key.iface, err))
				return
			}
			r.allMulti = false
		}()
	}
	if r.allMulti && len(want) > MaxSolicitedNodeGroups/2 {
		want = map[netip.Addr]struct{}{}
	}
	for _, g := range sortedSet(r.groups) {
		if _, ok := want[g]; !ok {
			if err := r.ndp.LeaveGroup(g); err != nil {
				errs = append(errs, fmt.Errorf("layer2: leave %s on %s: %w", g, r.key.iface, err))
			}
			delete(r.groups, g)
		}
	}
	for _, g := range sortedSet(want) {
		if _, ok := r.groups[g]; !ok {
			if err := r.ndp.JoinGroup(g); err != nil {
				errs = append(errs, fmt.Errorf("layer2: join %s on %s: %w", g, r.key.iface, err))
				continue
			}
			r.groups[g] = struct{}{}
		}
	}
	return errors.Join(errs...)
}

func sortedSet(s map[netip.Addr]struct{}) []netip.Addr {
	out := make([]netip.Addr, 0, len(s))
	for a := range s {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
	return out
}
