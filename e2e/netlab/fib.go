package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// KernelNextHops returns the gateways of the host's kernel route to exactly prefix
// (on a router, what zebra or BIRD installed, so what it forwards over: one per
// nexthop line of a multipath route), sorted and without repeats; none when the
// kernel has no such route.
func (h *Host) KernelNextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	family := "-4"
	if prefix.Addr().Is6() {
		family = "-6"
	}
	out, err := h.Run(ctx, "ip", "-j", family, "route", "show", "exact", prefix.String())
	if err != nil {
		return nil, err
	}
	// A gateway of the other family (an IPv4 route via an IPv6 link-local
	// address, RFC 5549) is "via" {"family": "inet6", "host": ...}.
	type via struct {
		Host string `json:"host"`
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Via      via    `json:"via"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
			Via     via    `json:"via"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("netlab: parse the router's ip route %s: %w: %q", prefix, err, out)
	}
	var hops []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			hops = append(hops, a)
		}
	}
	for _, rt := range routes {
		add(rt.Gateway)
		add(rt.Via.Host)
		for _, nh := range rt.Nexthops {
			add(nh.Gateway)
			add(nh.Via.Host)
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return slices.Compact(hops), nil
}
