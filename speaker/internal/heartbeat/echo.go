package heartbeat

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Prober asks a node's kernel whether it is up. Heartbeats probe a watched
// node that fell silent: a kernel answers in its network stack even when
// every process on the node is starved of CPU, so a silent node whose
// kernel answers is up, and its silence is not a death.
type Prober interface {
	// Send sends a probe to addr, stamped with sent.
	Send(addr netip.Addr, sent time.Time) error
	// Receive blocks until an answer to one of this prober's probes
	// arrives and returns who answered and when the probe was sent; after
	// Close it returns an error that is net.ErrClosed.
	Receive() (addr netip.Addr, sent time.Time, err error)
	Close() error
}

// Echo is a Prober of ICMP echo requests (ping) over a raw socket, which
// needs CAP_NET_RAW (the speaker has it for ARP and NDP).
type Echo struct {
	conn  *icmp.PacketConn
	v6    bool
	id    int
	seq   atomic.Uint32
	epoch time.Time // probes carry their send time as an offset from epoch
	buf   []byte
}

// echoMagic starts the data of Herald's echo requests.
const echoMagic = "HRE1"

// ListenEcho opens the raw ICMP socket on local, an address of the node
// (IPv4 or IPv6: the family of the nodes it will probe).
func ListenEcho(local netip.Addr) (*Echo, error) {
	local = local.Unmap()
	network := "ip4:icmp"
	if local.Is6() {
		network = "ip6:ipv6-icmp"
	}
	conn, err := icmp.ListenPacket(network, local.String())
	if err != nil {
		return nil, fmt.Errorf("heartbeat: ICMP echo socket on %s (needs CAP_NET_RAW): %w", local, err)
	}
	if local.Is6() {
		// Only echo replies reach the socket.
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err := conn.IPv6PacketConn().SetICMPFilter(&f); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("heartbeat: ICMPv6 filter: %w", err)
		}
	}
	return &Echo{conn: conn, v6: local.Is6(), id: rand.IntN(1 << 16), epoch: time.Now(), buf: make([]byte, 1500)}, nil
}

// Send sends an echo request to addr carrying sent.
func (e *Echo) Send(addr netip.Addr, sent time.Time) error {
	data := binary.BigEndian.AppendUint64([]byte(echoMagic), uint64(sent.Sub(e.epoch)))
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if e.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: e.id, Seq: int(uint16(e.seq.Add(1))), Data: data}}
	b, err := msg.Marshal(nil) // the kernel fills in ICMPv6's checksum
	if err != nil {
		return err
	}
	_, err = e.conn.WriteTo(b, &net.IPAddr{IP: addr.AsSlice()})
	return err
}

// Receive returns the next answer to this Echo's requests, skipping any
// other ICMP message. It is not safe for concurrent use.
func (e *Echo) Receive() (netip.Addr, time.Time, error) {
	proto := 1 // ICMP
	if e.v6 {
		proto = 58 // ICMPv6
	}
	for {
		n, from, err := e.conn.ReadFrom(e.buf)
		if err != nil {
			return netip.Addr{}, time.Time{}, err // net.ErrClosed, wrapped, after Close
		}
		ip, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		addr, ok := netip.AddrFromSlice(ip.IP)
		if !ok {
			continue
		}
		if sent, ok := e.answer(proto, e.buf[:n]); ok {
			return addr.Unmap(), sent, nil
		}
	}
}

// answer returns the send time of the request b answers, when b is an
// echo reply to this Echo's request.
func (e *Echo) answer(proto int, b []byte) (time.Time, bool) {
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
		return time.Time{}, false
	}
	body, ok := m.Body.(*icmp.Echo)
	if !ok || body.ID != e.id || len(body.Data) != len(echoMagic)+8 || string(body.Data[:len(echoMagic)]) != echoMagic {
		return time.Time{}, false
	}
	sent := e.epoch.Add(time.Duration(binary.BigEndian.Uint64(body.Data[len(echoMagic):])))
	if sent.After(time.Now()) {
		return time.Time{}, false // not a request of ours: it claims to come from the future
	}
	return sent, true
}

// Is4 reports whether the Echo probes IPv4 addresses (else IPv6).
func (e *Echo) Is4() bool { return !e.v6 }

// SetReadDeadline sets the deadline of Receive, as net.Conn's does.
func (e *Echo) SetReadDeadline(t time.Time) error { return e.conn.SetReadDeadline(t) }

// Close closes the socket; a blocked Receive returns net.ErrClosed.
func (e *Echo) Close() error { return e.conn.Close() }
