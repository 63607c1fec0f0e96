package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNoAnswer reports that nobody answered an ARP request or neighbour solicitation.
var ErrNoAnswer = errors.New("netlab: no answer")

// arpReply matches one reply line of Habets arping: "60 bytes from 02:68:6c:00:00:05
// (198.51.100.11): index=0 time=1.2 usec".
var arpReply = regexp.MustCompile(`bytes from ([0-9a-fA-F:]{17}) \(([0-9.]+)\)`)

// parseArping returns the distinct MACs that answered for addr, in order of arrival.
func parseArping(out string, addr netip.Addr) []net.HardwareAddr {
	var macs []net.HardwareAddr
	for _, m := range arpReply.FindAllStringSubmatch(out, -1) {
		ip, err := netip.ParseAddr(m[2])
		if err != nil || ip != addr {
			continue
		}
		mac, err := net.ParseMAC(m[1])
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(macs, func(x net.HardwareAddr) bool { return x.String() == mac.String() }) {
			macs = append(macs, mac)
		}
	}
	return macs
}

// ARP sends one ARP request for the IPv4 address addr from the host (arping, on the
// interface whose subnet holds addr) and returns the MAC of the first reply. It returns
// an error wrapping ErrNoAnswer when nobody answers within a second.
func (h *Host) ARP(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error) {
	macs, err := h.ARPAll(ctx, addr, time.Second)
	if err != nil {
		return nil, err
	}
	return macs[0], nil
}

// ARPAll sends one ARP request for addr and collects every distinct MAC that answers
// within wait (two MACs mean two hosts claim the address). It returns an error wrapping
// ErrNoAnswer when nobody does.
func (h *Host) ARPAll(ctx context.Context, addr netip.Addr, wait time.Duration) ([]net.HardwareAddr, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("netlab: ARP for %s: not an IPv4 address", addr)
	}
	link, err := h.linkFor(addr)
	if err != nil {
		return nil, err
	}
	secs := strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)
	// -c 1: one request; -w: wait that long for replies in all; -C 0 would stop at the
	// first reply, so it is left out to see a second answerer.
	out, _ := h.Run(ctx, "arping", "-c", "1", "-w", secs, "-i", link.Name, addr.String())
	macs := parseArping(out, addr)
	if len(macs) == 0 {
		return nil, fmt.Errorf("%w: ARP for %s from %s: %s", ErrNoAnswer, addr, h.name, strings.TrimSpace(out))
	}
	return macs, nil
}

// NDP sends a neighbour solicitation for the IPv6 address addr from the host (ndisc6,
// on the interface whose subnet holds addr) and returns the target link-layer address
// of the first advertisement. It returns an error wrapping ErrNoAnswer when nobody
// answers within a second.
func (h *Host) NDP(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error) {
	if !addr.Is6() || addr.Is4In6() {
		return nil, fmt.Errorf("netlab: NDP for %s: not an IPv6 address", addr)
	}
	link, err := h.linkFor(addr)
	if err != nil {
		return nil, err
	}
	// -q prints only the address; -1 stops at the first answer; -r 1 -w 1000: one
	// solicitation, one second.
	out, err := h.Run(ctx, "ndisc6", "-q", "-1", "-n", "-r", "1", "-w", "1000", addr.String(), link.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: NDP for %s from %s: %v", ErrNoAnswer, addr, h.name, err)
	}
	mac, err := net.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		return nil, fmt.Errorf("netlab: NDP for %s from %s: output %q: %w", addr, h.name, out, err)
	}
	return mac, nil
}

// FlushNeighbors empties the host's ARP and NDP caches, so the next packet to an
// address asks again.
func (h *Host) FlushNeighbors(ctx context.Context) error {
	_, err := h.Run(ctx, "ip", "neigh", "flush", "all")
	return err
}
