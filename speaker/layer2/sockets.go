package layer2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// errMalformed marks a received packet that could not be decoded; the
// responder counts it and reads on.
var errMalformed = errors.New("layer2: malformed packet")

// ErrNotEthernet is returned (wrapped) when an interface to announce on has
// no 6-byte Ethernet address.
var ErrNotEthernet = errors.New("layer2: interface has no Ethernet address")

// link is an interface a responder has opened.
type link struct {
	name string
	mac  net.HardwareAddr
	ifi  *net.Interface
}

// sockets opens what responders read and write; tests replace it.
type sockets interface {
	link(name string) (link, error)
	listenARP(l link) (net.PacketConn, error)
	listenNDP(l link) (ndpConn, error)
}

// ndpConn is the small NDP interface responders use: read solicitations and
// advertisements (with their IPv6 and Ethernet header fields), write
// advertisements (with their addressing), and manage solicited-node group
// membership. ReadNDP
// returns an error wrapping errMalformed for a packet it could not decode;
// any other error ends the connection.
type ndpConn interface {
	ReadNDP() (ndpPacket, error)
	WriteNDP(o ndpOut) error
	JoinGroup(group netip.Addr) error
	LeaveGroup(group netip.Addr) error
	// SetAllMulticast makes the interface accept every multicast frame
	// (on) while the socket is open, or stops asking for it (off).
	SetAllMulticast(on bool) error
	Close() error
}

// realSockets opens AF_PACKET and ICMPv6 sockets.
type realSockets struct{}

func (realSockets) link(name string) (link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return link{}, fmt.Errorf("layer2: look up interface %s: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return link{}, fmt.Errorf("layer2: interface %s: %w", name, ErrNotEthernet)
	}
	return link{name: name, mac: ifi.HardwareAddr, ifi: ifi}, nil
}

func (realSockets) listenARP(l link) (net.PacketConn, error) {
	c, err := packet.Listen(l.ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return nil, fmt.Errorf("layer2: open ARP socket on %s: %w", l.name, err)
	}
	return c, nil
}

// ndpFilterProgram passes only IPv6 frames whose next header is ICMPv6 and
// whose ICMPv6 type is neighbour solicitation (135) or advertisement (136),
// so the socket wakes for nothing else.
var ndpFilterProgram = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 14 + 6, Size: 1}, // IPv6 next header
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMPv6, SkipFalse: 4},
	bpf.LoadAbsolute{Off: 14 + ipv6HeaderLen, Size: 1}, // ICMPv6 type
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeNeighborSolicitation), SkipTrue: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeNeighborAdvertisement), SkipFalse: 1},
	bpf.RetConstant{Val: 65535},
	bpf.RetConstant{Val: 0},
}

var ndpFilter = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble(ndpFilterProgram)
	if err != nil {
		panic(fmt.Sprintf("layer2: assemble NDP filter: %v", err))
	}
	return raw
}()

func (realSockets) listenNDP(l link) (ndpConn, error) {
	// The ICMPv6 socket only holds the solicited-node group memberships; it
	// is not bound to an address, so it works before the link-local address
	// has passed duplicate address detection, and it reads nothing.
	// Solicitations come from the AF_PACKET socket, which also sees unicast
	// ones, and advertisements go out through it, from the announced
	// address and straight to the solicitor's MAC (the kernel would first
	// resolve the solicitor, costing a round trip).
	c, _, err := ndp.Listen(l.ifi, ndp.Unspecified)
	if err != nil {
		return nil, fmt.Errorf("layer2: open ICMPv6 socket on %s: %w", l.name, err)
	}
	var none ipv6.ICMPFilter
	none.SetAll(true)
	if err := c.SetICMPFilter(&none); err != nil {
		c.Close()
		return nil, fmt.Errorf("layer2: filter ICMPv6 socket on %s: %w", l.name, err)
	}
	pc, err := packet.Listen(l.ifi, packet.Raw, int(ethernet.EtherTypeIPv6), &packet.Config{Filter: ndpFilter})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("layer2: open NDP packet socket on %s: %w", l.name, err)
	}
	return &ndpSocket{conn: c, pc: pc, mac: l.mac, ifindex: l.ifi.Index, buf: make([]byte, max(l.ifi.MTU, 1500)+18)}, nil
}

// ndpSocket reads and writes NDP frames on an AF_PACKET socket, and holds
// group memberships with an ndp.Conn.
type ndpSocket struct {
	conn    *ndp.Conn
	pc      *packet.Conn
	mac     net.HardwareAddr
	ifindex int
	buf     []byte // only used by ReadNDP, which one goroutine calls
}

func (s *ndpSocket) ReadNDP() (ndpPacket, error) {
	n, _, err := s.pc.ReadFrom(s.buf)
	if err != nil {
		return ndpPacket{}, err
	}
	p, err := parseNDPFrame(s.buf[:n])
	if err != nil {
		return ndpPacket{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return p, nil
}

func (s *ndpSocket) WriteNDP(o ndpOut) error {
	f, err := ndpFrame(s.mac, o)
	if err != nil {
		return err
	}
	_, err = s.pc.WriteTo(f, &packet.Addr{HardwareAddr: o.dstMAC})
	return err
}

func (s *ndpSocket) JoinGroup(g netip.Addr) error  { return s.conn.JoinGroup(g) }
func (s *ndpSocket) LeaveGroup(g netip.Addr) error { return s.conn.LeaveGroup(g) }

// SetAllMulticast adds or drops a PACKET_MR_ALLMULTI membership on the
// packet socket: the kernel keeps the interface in all-multicast mode while
// any socket holds one, and drops it when the socket closes.
func (s *ndpSocket) SetAllMulticast(on bool) error {
	rc, err := s.pc.SyscallConn()
	if err != nil {
		return fmt.Errorf("layer2: all-multicast: %w", err)
	}
	op := unix.PACKET_DROP_MEMBERSHIP
	if on {
		op = unix.PACKET_ADD_MEMBERSHIP
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, op, &unix.PacketMreq{Ifindex: int32(s.ifindex), Type: unix.PACKET_MR_ALLMULTI})
	}); err != nil {
		return fmt.Errorf("layer2: all-multicast: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("layer2: all-multicast: %w", serr)
	}
	return nil
}

func (s *ndpSocket) Close() error {
	return errors.Join(s.pc.Close(), s.conn.Close())
}
