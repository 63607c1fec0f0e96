// Package bgp tests Herald's BGP speaker (package speaker/bgp) against FRR in
// the network lab, and holds the lab helpers its measurement command
// (cmd/measure-bgp) shares: a LAN with FRR routers and nodes, each node
// running the speaker as its own process (cmd/bgpnode) so that it can be
// killed and restarted like a real speaker. Its external tests (package
// bgp_test, bird_test.go) run the herald-speaker daemons of a speaker lab
// against BIRD 2 as the router.
package bgp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// AS numbers of the lab: the routers' and the nodes'.
const (
	RouterASN = 64512
	NodeASN   = 64513
)

// The routes the tests and measurements advertise.
var (
	hostRoute  = netip.MustParsePrefix("203.0.113.130/32")
	hostRoute6 = netip.MustParsePrefix("2001:db8:200::5/128")
)

// BGPNodePackage is the speaker's host program.
const BGPNodePackage = "github.com/herald-dev/herald/e2e/bgp/cmd/bgpnode"

// router2HostNumber is the LAN host number of the second router (1 is the
// first; 2 and 3 are the control plane's and the client's in the shared plan).
const router2HostNumber = 4

// Lab is a LAN with one or two FRR routers and some nodes.
type Lab struct {
	*netlab.Lab
	// Routers are the FRR routers: 198.51.100.1 and, when asked for,
	// 198.51.100.4.
	Routers []*netlab.Router
	// Nodes are the nodes, numbered from 1: 198.51.100.11, .12, ...
	Nodes []*Node
}

// LabOptions size a Lab.
type LabOptions struct {
	Nodes   int
	Routers int // default 1
}

// RequireFRR calls netlab.Missing unless FRR's daemons and vtysh are installed.
func RequireFRR(t netlab.T) {
	t.Helper()
	netlab.RequireCommands(t, netlab.BGPDPath, netlab.BFDDPath, netlab.ZebraPath, "vtysh")
}

// NewLab builds the lab. The routers' BGP is not started: call
// Router.StartBGP with the configuration the test needs (see Neighbors).
func NewLab(t netlab.T, opts LabOptions) *Lab {
	t.Helper()
	RequireFRR(t)
	if opts.Routers == 0 {
		opts.Routers = 1
	}
	l := &Lab{Lab: netlab.New(t, netlab.Options{})}
	lan := l.AddBridge("lan")
	for i := range opts.Routers {
		n, name := netlab.RouterHostNumber, "router"
		if i == 1 {
			n, name = router2HostNumber, "router2"
		}
		v4, v6 := netlab.LANAddrs(n)
		h := l.AddHost(name)
		h.Attach(lan, "eth0", v4, v6)
		l.Routers = append(l.Routers, netlab.NewRouter(h))
	}
	bin := netlab.BuildGo(t, BGPNodePackage)
	for i := range opts.Nodes {
		v4, v6 := netlab.LANAddrs(netlab.FirstNodeHostNumber + i)
		h := l.AddHost(fmt.Sprintf("node%d", i+1))
		h.Attach(lan, "eth0", v4, v6)
		dir := filepath.Join(l.Dir(), h.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("create %s: %v", dir, err)
		}
		l.Nodes = append(l.Nodes, &Node{Host: h, Number: i + 1, dir: dir, bin: bin})
	}
	return l
}

// Router returns the first router.
func (l *Lab) Router() *netlab.Router { return l.Routers[0] }

// Neighbors returns a router neighbour entry per node, on the nodes' IPv4
// (or IPv6) addresses, each edited by edit when it is not nil.
func (l *Lab) Neighbors(v6 bool, edit func(n *Node, c *netlab.BGPNeighborConfig)) []netlab.BGPNeighborConfig {
	var out []netlab.BGPNeighborConfig
	for _, n := range l.Nodes {
		c := netlab.BGPNeighborConfig{Address: n.Addr4(), ASN: NodeASN}
		if v6 {
			c.Address = n.Addr6()
		}
		if edit != nil {
			edit(n, &c)
		}
		out = append(out, c)
	}
	return out
}

// Node is a lab host running the speaker as a process.
type Node struct {
	*netlab.Host
	// Number is the node's number, from 1.
	Number int
	dir    string
	bin    string
	proc   *netlab.Process
	gen    int // generation of the last state written
}

// Peer returns a speaker peer towards r from this node: eBGP with the lab's
// AS numbers, hold time 9 s, on r's address of the family of v6.
func (n *Node) Peer(name string, r *netlab.Router, v6 bool) speakerbgp.Peer {
	addr := r.Addr4()
	if v6 {
		addr = r.Addr6()
	}
	return speakerbgp.Peer{Name: name, Address: addr, PeerASN: RouterASN, MyASN: NodeASN, HoldTime: 9 * time.Second}
}

// Start writes d as the node's desired state and starts the speaker; it
// waits until the speaker has applied it. A running speaker is killed first.
func (n *Node) Start(t netlab.T, d speakerbgp.Desired) {
	t.Helper()
	if n.proc != nil && !n.proc.Exited() {
		if err := n.proc.Kill(); err != nil {
			t.Fatalf("%v", err)
		}
	}
	if err := n.writeState(d); err != nil {
		t.Fatalf("%v", err)
	}
	os.Remove(n.statusPath())
	n.proc = n.StartProcess(netlab.ProcessSpec{Name: "bgpnode", Args: []string{
		n.bin, "-state", n.statePath(), "-status", n.statusPath(), "-router-id", n.Addr4().String(),
	}})
	n.gen = 1
	if err := n.waitGeneration(t.Context(), n.gen); err != nil {
		t.Fatalf("%v", err)
	}
}

// StartedProcess returns the speaker's process, nil before Start.
func (n *Node) StartedProcess() *netlab.Process { return n.proc }

// Apply writes d as the node's desired state, signals the speaker, and waits
// until it has applied it.
func (n *Node) Apply(t netlab.T, d speakerbgp.Desired) {
	t.Helper()
	if err := n.writeState(d); err != nil {
		t.Fatalf("%v", err)
	}
	if err := n.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("%v", err)
	}
	n.gen++
	if err := n.waitGeneration(t.Context(), n.gen); err != nil {
		t.Fatalf("%v", err)
	}
}

// Kill kills the speaker with SIGKILL, as a node failure would, and waits
// until it is gone.
func (n *Node) Kill() error { return n.proc.Kill() }

// Stop stops the speaker with SIGTERM (it closes its sessions) and waits.
func (n *Node) Stop() error { return n.proc.Stop(10 * time.Second) }

func (n *Node) statePath() string  { return filepath.Join(n.dir, "state.json") }
func (n *Node) statusPath() string { return filepath.Join(n.dir, "status.json") }

func (n *Node) writeState(d speakerbgp.Desired) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode the state of %s: %w", n.Name(), err)
	}
	tmp := n.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write the state of %s: %w", n.Name(), err)
	}
	if err := os.Rename(tmp, n.statePath()); err != nil {
		return fmt.Errorf("write the state of %s: %w", n.Name(), err)
	}
	return nil
}

// NodeStatus is what cmd/bgpnode writes to its status file.
type NodeStatus struct {
	Written     time.Time               `json:"written"`
	Started     time.Time               `json:"started"`
	Applied     time.Time               `json:"applied"`
	SetError    string                  `json:"setError"`
	Generation  int                     `json:"generation"`
	SetDuration time.Duration           `json:"setDuration"`
	Peers       []speakerbgp.PeerStatus `json:"peers"`
	HeapInuse   uint64                  `json:"heapInuse"`
	Sys         uint64                  `json:"sys"`
}

// Peer returns the status of the peer named name.
func (s NodeStatus) Peer(name string) (speakerbgp.PeerStatus, bool) {
	i := slices.IndexFunc(s.Peers, func(p speakerbgp.PeerStatus) bool { return p.Name == name })
	if i < 0 {
		return speakerbgp.PeerStatus{}, false
	}
	return s.Peers[i], true
}

// errNoStatus reports a status file not written yet.
var errNoStatus = errors.New("no status yet")

// Status reads the speaker's last status.
func (n *Node) Status() (NodeStatus, error) {
	var st NodeStatus
	b, err := os.ReadFile(n.statusPath())
	if errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("%s: %w", n.Name(), errNoStatus)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parse the status of %s: %w", n.Name(), err)
	}
	return st, nil
}

func (n *Node) waitGeneration(ctx context.Context, gen int) error {
	return netlab.Poll(ctx, 30*time.Second, 20*time.Millisecond, func(context.Context) error {
		if n.proc.Exited() {
			return fmt.Errorf("bgpnode on %s exited (%v):\n%s", n.Name(), n.proc.Err(), tail(n.proc.Log(), 20))
		}
		st, err := n.Status()
		if err != nil {
			return err
		}
		if st.Generation < gen {
			return fmt.Errorf("bgpnode on %s applied generation %d, waiting for %d", n.Name(), st.Generation, gen)
		}
		if st.SetError != "" {
			return fmt.Errorf("bgpnode on %s: Set: %s", n.Name(), st.SetError)
		}
		return nil
	})
}

// WaitPeer waits until the node's peer named name satisfies ok, and returns
// its status.
func (n *Node) WaitPeer(t netlab.T, name string, timeout time.Duration, ok func(speakerbgp.PeerStatus) error) speakerbgp.PeerStatus {
	t.Helper()
	var ps speakerbgp.PeerStatus
	netlab.Eventually(t, timeout, func(context.Context) error {
		st, err := n.Status()
		if err != nil {
			return err
		}
		var found bool
		if ps, found = st.Peer(name); !found {
			return fmt.Errorf("%s: no status for peer %s: %+v", n.Name(), name, st.Peers)
		}
		if err := ok(ps); err != nil {
			return fmt.Errorf("%s, peer %s: %w (status %+v)", n.Name(), name, err, ps)
		}
		return nil
	})
	return ps
}

// Established is a WaitPeer condition.
func Established(ps speakerbgp.PeerStatus) error {
	if ps.State != speakerbgp.StateEstablished {
		return fmt.Errorf("state %s", ps.State)
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitEstablished waits until the router has every address in addrs as an
// Established neighbour.
func WaitEstablished(t netlab.T, r *netlab.Router, timeout time.Duration, addrs ...netip.Addr) {
	t.Helper()
	netlab.Eventually(t, timeout, func(ctx context.Context) error {
		for _, a := range addrs {
			n, ok, err := r.Neighbor(ctx, a)
			if err != nil {
				return err
			}
			if !ok || !n.Established() {
				return fmt.Errorf("router %s: neighbour %s not Established: %+v", r.Name(), a, n)
			}
		}
		return nil
	})
}

// SelectedNextHops returns the router's ECMP next hops for exactly prefix
// (none when it has no route).
func SelectedNextHops(ctx context.Context, r *netlab.Router, prefix netip.Prefix) ([]netip.Addr, error) {
	route, ok, err := r.Route(ctx, prefix)
	if err != nil || !ok {
		return nil, err
	}
	return route.SelectedNextHops(), nil
}

// WaitNextHops waits until the router forwards prefix over exactly want.
func WaitNextHops(t netlab.T, r *netlab.Router, prefix netip.Prefix, timeout time.Duration, want ...netip.Addr) {
	t.Helper()
	slices.SortFunc(want, netip.Addr.Compare)
	netlab.Eventually(t, timeout, func(ctx context.Context) error {
		got, err := SelectedNextHops(ctx, r, prefix)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("router %s: next hops of %s are %v, want %v", r.Name(), prefix, got, want)
		}
		return nil
	})
}

// PathState is a path as FRR reports it for one prefix, with the flags the
// netlab parser leaves out.
type PathState struct {
	Peer     netip.Addr
	NextHops []netip.Addr
	Stale    bool
	Valid    bool
}

// Paths returns the router's paths for exactly prefix, with their stale
// flags (graceful restart), or none.
func Paths(ctx context.Context, r *netlab.Router, prefix netip.Prefix) ([]PathState, error) {
	family := "ipv4"
	if prefix.Addr().Is6() {
		family = "ipv6"
	}
	out, err := r.Vtysh(ctx, fmt.Sprintf("show bgp %s unicast %s json", family, prefix))
	if err != nil {
		return nil, err
	}
	var d struct {
		Paths []struct {
			Stale    bool `json:"stale"`
			Valid    bool `json:"valid"`
			NextHops []struct {
				IP    string `json:"ip"`
				Scope string `json:"scope"`
			} `json:"nexthops"`
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return nil, fmt.Errorf("parse the paths of %s: %w: %s", prefix, err, out)
	}
	var paths []PathState
	for _, p := range d.Paths {
		ps := PathState{Stale: p.Stale, Valid: p.Valid}
		ps.Peer, _ = netip.ParseAddr(p.Peer.PeerID)
		for _, nh := range p.NextHops {
			if a, err := netip.ParseAddr(nh.IP); err == nil && nh.Scope != "link-local" && !a.IsLinkLocalUnicast() {
				ps.NextHops = append(ps.NextHops, a)
			}
		}
		paths = append(paths, ps)
	}
	return paths, nil
}

// AcceptedPrefixes returns how many prefixes of each family ("ipv4Unicast",
// "ipv6Unicast") the router accepted from the neighbour at addr.
func AcceptedPrefixes(ctx context.Context, r *netlab.Router, addr netip.Addr) (map[string]int, error) {
	n, ok, err := r.Neighbor(ctx, addr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("router %s has no neighbour %s", r.Name(), addr)
	}
	return n.AcceptedPrefixes, nil
}

// LastReset returns what FRR says about the neighbour at addr's last reset:
// every "last..." field of `show bgp neighbors ADDR json` (lastResetDueTo,
// lastNotificationReason, ...), as "key=value" joined with "; ".
func LastReset(ctx context.Context, r *netlab.Router, addr netip.Addr) (string, error) {
	out, err := r.Vtysh(ctx, fmt.Sprintf("show bgp neighbors %s json", addr))
	if err != nil {
		return "", err
	}
	var d map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return "", fmt.Errorf("parse neighbour %s: %w", addr, err)
	}
	n, ok := d[addr.String()]
	if !ok {
		return "", fmt.Errorf("router %s has no neighbour %s", r.Name(), addr)
	}
	var parts []string
	for k, v := range n {
		if s, ok := v.(string); ok && strings.HasPrefix(k, "last") {
			parts = append(parts, k+"="+s)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; "), nil
}
