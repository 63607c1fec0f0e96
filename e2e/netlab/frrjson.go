package netlab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Family is a BGP address family as vtysh names it.
type Family string

// The address families the router carries.
const (
	IPv4Unicast Family = "ipv4"
	IPv6Unicast Family = "ipv6"
)

// FamilyOf returns the unicast family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4Unicast
	}
	return IPv6Unicast
}

// BGPNeighbor is a peer of the router as `show bgp neighbors json` reports it.
type BGPNeighbor struct {
	// Address is the peer's address.
	Address netip.Addr
	// RemoteAS and LocalAS are the session's AS numbers.
	RemoteAS, LocalAS uint32
	// State is FRR's session state: Idle, Connect, Active, OpenSent, OpenConfirm or
	// Established.
	State string
	// Uptime is how long the session has been Established (0 otherwise).
	Uptime time.Duration
	// HoldTime and KeepaliveTime are the negotiated timers.
	HoldTime, KeepaliveTime time.Duration
	// AcceptedPrefixes counts the prefixes accepted from the peer, per family
	// ("ipv4Unicast", "ipv6Unicast").
	AcceptedPrefixes map[string]int
	// LastResetReason is why the session last went down ("BFD down received", ...).
	LastResetReason string
	// ConnectionsDropped counts the times the session went down since bgpd started.
	ConnectionsDropped int
	// BFDStatus is the BFD state bgpd knows for the session ("Up", "Down", or "" when
	// BFD is off).
	BFDStatus string
}

// Established reports whether the session is up.
func (n BGPNeighbor) Established() bool { return n.State == "Established" }

type frrNeighbor struct {
	RemoteAS          uint32 `json:"remoteAs"`
	LocalAS           uint32 `json:"localAs"`
	BGPState          string `json:"bgpState"`
	UpMsec            int64  `json:"bgpTimerUpMsec"`
	HoldMsec          int64  `json:"bgpTimerHoldTimeMsecs"`
	KeepaliveMsec     int64  `json:"bgpTimerKeepAliveIntervalMsecs"`
	LastResetDueTo    string `json:"lastResetDueTo"`
	Dropped           int    `json:"connectionsDropped"`
	AddressFamilyInfo map[string]struct {
		AcceptedPrefixCounter int `json:"acceptedPrefixCounter"`
	} `json:"addressFamilyInfo"`
	PeerBFDInfo *struct {
		Status string `json:"status"`
	} `json:"peerBfdInfo"`
}

// parseNeighbors parses `show bgp neighbors json`, sorted by address.
func parseNeighbors(b []byte) ([]BGPNeighbor, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("netlab: parse bgp neighbors: %w", err)
	}
	out := make([]BGPNeighbor, 0, len(raw))
	for key, msg := range raw {
		addr, err := netip.ParseAddr(key)
		if err != nil {
			continue // peer-group or dynamic-neighbour entries keyed by name
		}
		var n frrNeighbor
		if err := json.Unmarshal(msg, &n); err != nil {
			return nil, fmt.Errorf("netlab: parse bgp neighbor %s: %w", key, err)
		}
		nb := BGPNeighbor{
			Address:            addr,
			RemoteAS:           n.RemoteAS,
			LocalAS:            n.LocalAS,
			State:              n.BGPState,
			HoldTime:           time.Duration(n.HoldMsec) * time.Millisecond,
			KeepaliveTime:      time.Duration(n.KeepaliveMsec) * time.Millisecond,
			LastResetReason:    n.LastResetDueTo,
			ConnectionsDropped: n.Dropped,
		}
		if n.BGPState == "Established" {
			nb.Uptime = time.Duration(n.UpMsec) * time.Millisecond
		}
		if len(n.AddressFamilyInfo) > 0 {
			nb.AcceptedPrefixes = map[string]int{}
			for af, info := range n.AddressFamilyInfo {
				nb.AcceptedPrefixes[af] = info.AcceptedPrefixCounter
			}
		}
		if n.PeerBFDInfo != nil {
			nb.BFDStatus = n.PeerBFDInfo.Status
		}
		out = append(out, nb)
	}
	slices.SortFunc(out, func(a, b BGPNeighbor) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// BGPRoute is a prefix in the router's BGP table with every path it has for it.
type BGPRoute struct {
	Prefix netip.Prefix
	Paths  []BGPPath
}

// BGPPath is one path of a BGPRoute.
type BGPPath struct {
	// Peer is the neighbour the path came from.
	Peer netip.Addr
	// NextHops are the path's global next hops (link-local ones are left out).
	NextHops []netip.Addr
	// ASPath is the AS path as FRR prints it ("64513", "" for iBGP).
	ASPath string
	// Origin is IGP, EGP or incomplete.
	Origin string
	// Valid, Best and Multipath say whether the path is usable, the best one, and part
	// of the ECMP set.
	Valid, Best, Multipath bool
	// LocalPref and MED are the path's attributes (0 when absent).
	LocalPref, MED uint32
	// Communities and LargeCommunities are as FRR prints them ("64512:100",
	// "no-export", "64512:1:2"). Only Route fills them: the table does not show them.
	Communities, LargeCommunities []string
}

// Selected reports whether the router uses the path: valid, and best or multipath.
func (p BGPPath) Selected() bool { return p.Valid && (p.Best || p.Multipath) }

// SelectedNextHops returns the sorted, distinct next hops of the selected paths: the
// ECMP set the router forwards over.
func (r BGPRoute) SelectedNextHops() []netip.Addr {
	var out []netip.Addr
	for _, p := range r.Paths {
		if p.Selected() {
			out = append(out, p.NextHops...)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

type frrNextHop struct {
	IP    string `json:"ip"`
	Scope string `json:"scope"`
}

func nextHopAddrs(nhs []frrNextHop) []netip.Addr {
	var out []netip.Addr
	for _, nh := range nhs {
		if nh.Scope == "link-local" {
			continue
		}
		if a, err := netip.ParseAddr(nh.IP); err == nil && !a.IsLinkLocalUnicast() {
			out = append(out, a)
		}
	}
	return out
}

// parseBGPTable parses `show bgp <family> unicast json`, sorted by prefix.
func parseBGPTable(b []byte) ([]BGPRoute, error) {
	var table struct {
		Routes map[string][]struct {
			Valid     bool         `json:"valid"`
			Best      bool         `json:"bestpath"`
			Multipath bool         `json:"multipath"`
			PeerID    string       `json:"peerId"`
			Path      string       `json:"path"`
			Origin    string       `json:"origin"`
			LocPrf    uint32       `json:"locPrf"`
			Metric    uint32       `json:"metric"`
			NextHops  []frrNextHop `json:"nexthops"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		return nil, fmt.Errorf("netlab: parse bgp table: %w", err)
	}
	out := make([]BGPRoute, 0, len(table.Routes))
	for key, paths := range table.Routes {
		prefix, err := netip.ParsePrefix(key)
		if err != nil {
			return nil, fmt.Errorf("netlab: parse bgp table: prefix %q: %w", key, err)
		}
		r := BGPRoute{Prefix: prefix}
		for _, p := range paths {
			peer, _ := netip.ParseAddr(p.PeerID)
			r.Paths = append(r.Paths, BGPPath{
				Peer: peer, NextHops: nextHopAddrs(p.NextHops), ASPath: p.Path, Origin: p.Origin,
				Valid: p.Valid, Best: p.Best, Multipath: p.Multipath, LocalPref: p.LocPrf, MED: p.Metric,
			})
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b BGPRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out, nil
}

// parseBGPPrefix parses `show bgp <family> unicast <prefix> json`. It reports false
// when the router has no such prefix (FRR prints {}).
func parseBGPPrefix(b []byte) (BGPRoute, bool, error) {
	var d struct {
		Prefix string `json:"prefix"`
		Paths  []struct {
			ASPath struct {
				String string `json:"string"`
			} `json:"aspath"`
			Origin    string `json:"origin"`
			Valid     bool   `json:"valid"`
			Multipath bool   `json:"multipath"`
			Bestpath  *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			LocPrf    uint32 `json:"locPrf"`
			Metric    uint32 `json:"metric"`
			Community *struct {
				List []string `json:"list"`
			} `json:"community"`
			LargeCommunity *struct {
				List []string `json:"list"`
			} `json:"largeCommunity"`
			NextHops []frrNextHop `json:"nexthops"`
			Peer     struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return BGPRoute{}, false, fmt.Errorf("netlab: parse bgp prefix: %w", err)
	}
	if d.Prefix == "" {
		return BGPRoute{}, false, nil
	}
	prefix, err := netip.ParsePrefix(d.Prefix)
	if err != nil {
		return BGPRoute{}, false, fmt.Errorf("netlab: parse bgp prefix %q: %w", d.Prefix, err)
	}
	r := BGPRoute{Prefix: prefix}
	for _, p := range d.Paths {
		peer, _ := netip.ParseAddr(p.Peer.PeerID)
		path := BGPPath{
			Peer: peer, NextHops: nextHopAddrs(p.NextHops), ASPath: p.ASPath.String, Origin: p.Origin,
			Valid: p.Valid, Best: p.Bestpath != nil && p.Bestpath.Overall, Multipath: p.Multipath,
			LocalPref: p.LocPrf, MED: p.Metric,
		}
		if p.Community != nil {
			path.Communities = p.Community.List
		}
		if p.LargeCommunity != nil {
			path.LargeCommunities = p.LargeCommunity.List
		}
		r.Paths = append(r.Paths, path)
	}
	return r, true, nil
}

// BFDPeer is a BFD session of the router as `show bfd peers json` reports it.
type BFDPeer struct {
	// Peer and Local are the session's addresses.
	Peer, Local netip.Addr
	// Interface is the router's interface for the session.
	Interface string
	// Status is "up", "down", "init" or "shutdown".
	Status string
	// Uptime is how long the session has been up (0 when it is not).
	Uptime time.Duration
	// DetectMultiplier, ReceiveInterval and TransmitInterval are the router's timers;
	// the Remote ones are the peer's.
	DetectMultiplier                              int
	ReceiveInterval, TransmitInterval             time.Duration
	RemoteDetectMultiplier                        int
	RemoteReceiveInterval, RemoteTransmitInterval time.Duration
}

// parseBFDPeers parses `show bfd peers json`, sorted by peer address.
func parseBFDPeers(b []byte) ([]BFDPeer, error) {
	var raw []struct {
		Peer              string `json:"peer"`
		Local             string `json:"local"`
		Interface         string `json:"interface"`
		Status            string `json:"status"`
		Uptime            int64  `json:"uptime"`
		DetectMultiplier  int    `json:"detect-multiplier"`
		ReceiveInterval   int64  `json:"receive-interval"`
		TransmitInterval  int64  `json:"transmit-interval"`
		RemoteMultiplier  int    `json:"remote-detect-multiplier"`
		RemoteReceiveInt  int64  `json:"remote-receive-interval"`
		RemoteTransmitInt int64  `json:"remote-transmit-interval"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("netlab: parse bfd peers: %w", err)
	}
	out := make([]BFDPeer, 0, len(raw))
	for _, r := range raw {
		peer, err := netip.ParseAddr(r.Peer)
		if err != nil {
			return nil, fmt.Errorf("netlab: parse bfd peers: peer %q: %w", r.Peer, err)
		}
		local, _ := netip.ParseAddr(r.Local)
		p := BFDPeer{
			Peer: peer, Local: local, Interface: r.Interface, Status: r.Status,
			DetectMultiplier: r.DetectMultiplier, RemoteDetectMultiplier: r.RemoteMultiplier,
			ReceiveInterval:        time.Duration(r.ReceiveInterval) * time.Millisecond,
			TransmitInterval:       time.Duration(r.TransmitInterval) * time.Millisecond,
			RemoteReceiveInterval:  time.Duration(r.RemoteReceiveInt) * time.Millisecond,
			RemoteTransmitInterval: time.Duration(r.RemoteTransmitInt) * time.Millisecond,
		}
		if r.Status == "up" {
			p.Uptime = time.Duration(r.Uptime) * time.Second
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b BFDPeer) int { return a.Peer.Compare(b.Peer) })
	return out, nil
}

// comparePrefix orders prefixes by address, then length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
