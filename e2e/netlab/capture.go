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
	// Src and Dst are the Ethernet addresses.
	Src, Dst net.HardwareAddr
	// Line is tcpdump's description after the link-layer header, for example
	// "ARP, Request who-has 198.51.100.130 tell 198.51.100.130, length 28".
	Line string
}

// Capture starts tcpdump on the host's interface ifname with a pcap filter (for
// example "arp" or "icmp6") and waits until it captures. Stop ends it and returns the
// packets.
func (h *Host) Capture(ifname, filter string) *Capture {
	t := h.lab.t
	t.Helper()
	RequireCommands(t, "tcpdump")
	// -l: line buffered; -n: no names; -e: link-layer header; -tt: epoch timestamps;
	// --immediate-mode: no buffering in the kernel either.
	args := []string{"tcpdump", "-i", ifname, "-l", "-n", "-e", "-tt", "--immediate-mode"}
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

// parseTcpdumpLine parses "1700000000.123456 02:..:01 > ff:ff:ff:ff:ff:ff, ethertype
// ARP (0x0806), length 42: Request who-has ...".
func parseTcpdumpLine(line string) (Packet, bool) {
	fields := strings.SplitN(line, " ", 5)
	if len(fields) < 5 || fields[2] != ">" {
		return Packet{}, false
	}
	ts, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return Packet{}, false
	}
	src, err1 := net.ParseMAC(fields[1])
	dst, err2 := net.ParseMAC(strings.TrimSuffix(fields[3], ","))
	if err1 != nil || err2 != nil {
		return Packet{}, false
	}
	rest := fields[4]
	if i := strings.Index(rest, ": "); i >= 0 {
		rest = rest[i+2:]
	}
	sec := int64(ts)
	return Packet{
		Time: time.Unix(sec, int64((ts-float64(sec))*1e9)).Round(time.Microsecond),
		Src:  src, Dst: dst, Line: rest,
	}, true
}
