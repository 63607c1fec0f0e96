package netlab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Capture is a tcpdump running in a host.
type Capture struct {
	proc *Process
	path string
}

// Packet is one line of a capture.
type Packet struct {
	// Time is when the kernel saw the packet.
	Time time.Time
	// Src and Dst are the Ethernet addresses. A capture on "any" has only
	// the source (all zeros on lo) and no Dst.
	Src, Dst net.HardwareAddr
	// Iface and Dir are, in a capture on "any", the interface the packet
	// was seen on and its direction there: "In", "Out", "B" (broadcast),
	// "M" (multicast) or "P" (to another host). Empty otherwise.
	Iface, Dir string
	// Line is tcpdump's description after the link-layer header, for example
	// "ARP, Request who-has 198.51.100.130 tell 198.51.100.130, length 28".
	Line string
}

// Capture starts tcpdump on the host's interface ifname with a pcap filter (for
// example "arp" or "icmp6") and waits until it captures. Stop ends it and returns the
// packets. The ifname "any" captures on every interface of the host, each
// packet with its interface and direction (Packet.Iface, Packet.Dir).
func (h *Host) Capture(ifname, filter string) *Capture {
	t := h.lab.t
	t.Helper()
	RequireCommands(t, "tcpdump")
	// -l: line buffered; -n: no names; -e: link-layer header; -tt: epoch timestamps;
	// --immediate-mode: no buffering in the kernel either; -B: a 16 MiB ring (with
	// the default 2 MiB a capture on "any" lost a fifth of a trial's packets on a
	// busy 2-core machine, one on eth0 a few; with 16 MiB none).
	args := []string{"tcpdump", "-i", ifname, "-l", "-n", "-e", "-tt", "--immediate-mode", "-B", "16384"}
	if filter != "" {
		args = append(args, strings.Fields(filter)...)
	}
	p := h.Start("tcpdump-"+ifname, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.WaitLog(ctx, "listening on"); err != nil {
		t.Fatalf("%v", err)
	}
	return &Capture{proc: p, path: p.logPath}
}

// Packets returns the packets captured so far.
func (c *Capture) Packets() ([]Packet, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return nil, fmt.Errorf("netlab: read capture: %w", err)
	}
	defer f.Close()
	var out []Packet
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := parseTcpdumpLine(sc.Text()); ok {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// Dropped returns how many packets the kernel dropped because tcpdump did not
// read them in time (its summary at the end, so only once stopped); ok is false
// before.
func (c *Capture) Dropped() (n int, ok bool) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return 0, false
	}
	return parseDropped(string(b))
}

// parseDropped finds tcpdump's "1708 packets dropped by kernel" in its output.
func parseDropped(out string) (int, bool) {
	for line := range strings.Lines(out) {
		if n, ok := strings.CutSuffix(strings.TrimSpace(line), " packets dropped by kernel"); ok {
			if d, err := strconv.Atoi(n); err == nil {
				return d, true
			}
		}
	}
	return 0, false
}

// Stop ends tcpdump (SIGINT, so it flushes) and returns every packet it captured.
func (c *Capture) Stop() ([]Packet, error) {
	_ = c.proc.Signal(syscall.SIGINT)
	select {
	case <-c.proc.Done():
	case <-time.After(5 * time.Second):
		_ = c.proc.Kill()
	}
	return c.Packets()
}

// parseTcpdumpLine parses a line of `tcpdump -n -e -tt` on one Ethernet
// interface, "1700000000.123456 02:..:01 > ff:ff:ff:ff:ff:ff, ethertype ARP
// (0x0806), length 42: Request who-has ...", or on "any" (link type
// LINUX_SLL2), "1700000000.123456 eth0  In  ifindex 2 02:..:01 ethertype IPv4
// (0x0800), length 80: 198.51.100.3.47178 > ...".
func parseTcpdumpLine(line string) (Packet, bool) {
	head, rest, ok := strings.Cut(line, ": ")
	if !ok {
		return Packet{}, false
	}
	fields := strings.Fields(head)
	if len(fields) < 4 {
		return Packet{}, false
	}
	ts, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return Packet{}, false
	}
	sec := int64(ts)
	p := Packet{Time: time.Unix(sec, int64((ts-float64(sec))*1e9)).Round(time.Microsecond), Line: rest}
	if fields[2] == ">" {
		src, err1 := net.ParseMAC(fields[1])
		dst, err2 := net.ParseMAC(strings.TrimSuffix(fields[3], ","))
		if err1 != nil || err2 != nil {
			return Packet{}, false
		}
		p.Src, p.Dst = src, dst
		return p, true
	}
	if len(fields) < 5 || fields[3] != "ifindex" {
		return Packet{}, false
	}
	p.Iface, p.Dir = fields[1], fields[2]
	if len(fields) > 5 {
		// Not a MAC if the interface has another kind of link-layer address.
		if mac, err := net.ParseMAC(fields[5]); err == nil {
			p.Src = mac
		}
	}
	return p, true
}
