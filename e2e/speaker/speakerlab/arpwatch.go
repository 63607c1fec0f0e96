package speakerlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ARPFrame is one ARP packet seen on the client's LAN interface.
type ARPFrame struct {
	// At is when the watcher read it.
	At time.Time
	// Reply is true for an ARP reply, false for a request.
	Reply     bool
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetIP  netip.Addr
}

// Gratuitous reports whether the frame announces its sender's own address
// (sender and target IP the same).
func (f ARPFrame) Gratuitous() bool { return f.SenderIP == f.TargetIP }

// ARPWatcher reads every ARP packet arriving on the client's LAN interface
// (not the client's own) from a packet socket in the client's namespace,
// and sends ARP requests from the client. It is the client's view of who
// answers for an address, with the time each packet arrived.
type ARPWatcher struct {
	fd      int
	ifindex int
	mac     net.HardwareAddr
	ip      netip.Addr
	stop    atomic.Bool
	done    chan struct{}

	mu       sync.Mutex
	handlers []func(ARPFrame)
}

// WatchARP starts an ARPWatcher on the client; Close stops it.
func (l *Lab) WatchARP() (*ARPWatcher, error) {
	w := &ARPWatcher{mac: l.ClientLink.MAC, done: make(chan struct{})}
	for _, p := range l.ClientLink.Addrs {
		if p.Addr().Is4() {
			w.ip = p.Addr()
		}
	}
	err := l.Client.Do(func() error {
		ifi, err := net.InterfaceByName(l.ClientLink.Name)
		if err != nil {
			return err
		}
		w.ifindex = ifi.Index
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return err
		}
		w.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000})
	})
	if err != nil {
		return nil, fmt.Errorf("speakerlab: ARP watcher: %w", err)
	}
	go w.run()
	return w, nil
}

// OnFrame registers f to be called (from the watcher's goroutine) for
// every frame from now on.
func (w *ARPWatcher) OnFrame(f func(ARPFrame)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers = append(w.handlers, f)
}

func (w *ARPWatcher) run() {
	defer close(w.done)
	buf := make([]byte, 1600)
	for !w.stop.Load() {
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		f, ok := parseARP(buf[:n])
		if !ok || f.SenderMAC.String() == w.mac.String() {
			continue
		}
		f.At = time.Now()
		w.mu.Lock()
		hs := w.handlers
		w.mu.Unlock()
		for _, h := range hs {
			h(f)
		}
	}
}

// Request broadcasts an ARP request for target from the client.
func (w *ARPWatcher) Request(target netip.Addr) error {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], w.mac)
	binary.BigEndian.PutUint16(f[12:14], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(f[14:16], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:18], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:22], 1) // request
	copy(f[22:28], w.mac)
	ip := w.ip.As4()
	copy(f[28:32], ip[:])
	t := target.As4()
	copy(f[38:42], t[:])
	addr := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: w.ifindex, Halen: 6}
	copy(addr.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(w.fd, f, 0, addr); err != nil {
		return fmt.Errorf("speakerlab: send ARP request: %w", err)
	}
	return nil
}

// Close stops the watcher.
func (w *ARPWatcher) Close() {
	w.stop.Store(true)
	<-w.done
	unix.Close(w.fd)
}

// parseARP reads an Ethernet frame carrying an IPv4-over-Ethernet ARP packet.
func parseARP(b []byte) (ARPFrame, bool) {
	if len(b) < 42 || binary.BigEndian.Uint16(b[12:14]) != unix.ETH_P_ARP {
		return ARPFrame{}, false
	}
	a := b[14:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return ARPFrame{}, false
	}
	op := binary.BigEndian.Uint16(a[6:8])
	return ARPFrame{
		Reply:     op == 2,
		SenderMAC: net.HardwareAddr(append([]byte(nil), a[8:14]...)),
		SenderIP:  netip.AddrFrom4([4]byte(a[14:18])),
		TargetIP:  netip.AddrFrom4([4]byte(a[24:28])),
	}, true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
