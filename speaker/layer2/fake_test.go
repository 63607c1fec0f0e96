package layer2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// fakePacketConn is a net.PacketConn fed and drained by tests.
type fakePacketConn struct {
	in      chan []byte
	out     chan []byte
	readErr chan error
	closed  chan struct{}
	once    sync.Once
}

func newFakePacketConn() *fakePacketConn {
	return &fakePacketConn{
		in: make(chan []byte), out: make(chan []byte, 4096),
		readErr: make(chan error, 1), closed: make(chan struct{}),
	}
}

func (c *fakePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-c.in:
		return copy(b, f), nil, nil
	case err := <-c.readErr:
		return 0, nil, err
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakePacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case c.out <- append([]byte(nil), b...):
		return len(b), nil
	}
}

func (c *fakePacketConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fakePacketConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *fakePacketConn) LocalAddr() net.Addr              { return nil }
func (c *fakePacketConn) SetDeadline(time.Time) error      { return nil }
func (c *fakePacketConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakePacketConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fakePacketConn) deliver(frame []byte) bool {
	select {
	case c.in <- frame:
		return true
	case <-c.closed:
		return false
	}
}

// fakeNDPConn is an ndpConn fed and drained by tests.
type fakeNDPConn struct {
	in      chan ndpPacket
	out     chan ndpOut
	readErr chan error
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex
	groups   map[netip.Addr]bool
	allMulti bool
}

func newFakeNDPConn() *fakeNDPConn {
	return &fakeNDPConn{
		in: make(chan ndpPacket), out: make(chan ndpOut, 4096),
		readErr: make(chan error, 1), closed: make(chan struct{}), groups: map[netip.Addr]bool{},
	}
}

func (c *fakeNDPConn) ReadNDP() (ndpPacket, error) {
	select {
	case p := <-c.in:
		return p, nil
	case err := <-c.readErr:
		return ndpPacket{}, err
	case <-c.closed:
		return ndpPacket{}, net.ErrClosed
	}
}

func (c *fakeNDPConn) WriteNDP(o ndpOut) error {
	if _, err := ndpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 0}, o); err != nil {
		return err
	}
	select {
	case <-c.closed:
		return net.ErrClosed
	case c.out <- o:
		return nil
	}
}

func (c *fakeNDPConn) JoinGroup(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[g] {
		return fmt.Errorf("fake: %s joined twice", g)
	}
	c.groups[g] = true
	return nil
}

func (c *fakeNDPConn) LeaveGroup(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.groups[g] {
		return fmt.Errorf("fake: %s left but not joined", g)
	}
	delete(c.groups, g)
	return nil
}

func (c *fakeNDPConn) SetAllMulticast(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.allMulti == on {
		return fmt.Errorf("fake: all-multicast already %v", on)
	}
	c.allMulti = on
	return nil
}

func (c *fakeNDPConn) isAllMulti() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allMulti
}

func (c *fakeNDPConn) joined() []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[netip.Addr]struct{}{}
	for g := range c.groups {
		m[g] = struct{}{}
	}
	return sortedSet(m)
}

func (c *fakeNDPConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeNDPConn) deliver(p ndpPacket) bool {
	select {
	case c.in <- p:
		return true
	case <-c.closed:
		return false
	}
}

var errFakeNoSuchInterface = errors.New("fake: no such interface")

// fakeSockets hands out fake connections and records them per interface.
type fakeSockets struct {
	mu    sync.Mutex
	macs  map[string]net.HardwareAddr
	fail  map[string]error
	arp   map[string]*fakePacketConn
	ndp   map[string]*fakeNDPConn
	opens int
}

func newFakeSockets(macs map[string]net.HardwareAddr) *fakeSockets {
	return &fakeSockets{macs: macs, fail: map[string]error{}, arp: map[string]*fakePacketConn{}, ndp: map[string]*fakeNDPConn{}}
}

func (s *fakeSockets) link(name string) (link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[name]; err != nil {
		return link{}, err
	}
	mac, ok := s.macs[name]
	if !ok {
		return link{}, errFakeNoSuchInterface
	}
	return link{name: name, mac: mac}, nil
}

func (s *fakeSockets) listenARP(l link) (net.PacketConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newFakePacketConn()
	s.arp[l.name] = c
	s.opens++
	return c, nil
}

func (s *fakeSockets) listenNDP(l link) (ndpConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newFakeNDPConn()
	s.ndp[l.name] = c
	s.opens++
	return c, nil
}

func (s *fakeSockets) arpConn(name string) *fakePacketConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arp[name]
}

func (s *fakeSockets) ndpConn(name string) *fakeNDPConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ndp[name]
}

func (s *fakeSockets) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

func (s *fakeSockets) setFail(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[name] = err
}

func (c *fakeNDPConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}
