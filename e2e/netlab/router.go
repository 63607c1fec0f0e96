package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Router is a host that runs FRR: bgpd, and zebra and bfdd when BFD or installed
// routes are asked for. The daemons are this lab's own processes (never the frr
// package's service), run as the frr user with their configuration, pid files and vty
// sockets in the router's state directory; vtysh reaches them with --vty_socket.
type Router struct {
	*Host
	dir     string
	cfg     BGPConfig
	daemons []*Process
}

// NewRouter makes h a router. StartBGP starts its daemons.
func NewRouter(h *Host) *Router {
	return &Router{Host: h, dir: filepath.Join(h.lab.stateDir, h.name)}
}

// Dir returns the directory holding the daemons' configuration, pid files and vty
// sockets.
func (r *Router) Dir() string { return r.dir }

// Config returns the configuration the daemons were last started with.
func (r *Router) Config() BGPConfig { return r.cfg }

// StartBGP renders cfg, checks it with bgpd's dry run, and starts the daemons: bgpd
// alone with -Z (no zebra) unless cfg uses BFD or InstallRoutes, in which case zebra,
// bfdd and bgpd run together, joined by a zserv socket of their own. It waits until
// every daemon answers on its vty socket. Daemons already running are stopped first,
// so StartBGP also restarts with a new configuration.
func (r *Router) StartBGP(cfg BGPConfig) {
	t := r.lab.t
	t.Helper()
	RequireCommands(t, BGPDPath, "vtysh")
	if cfg.needsZebra() {
		RequireCommands(t, ZebraPath, BFDDPath)
	}
	if err := r.startBGP(t.Context(), cfg); err != nil {
		t.Fatalf("%v", err)
	}
}

func (r *Router) startBGP(ctx context.Context, cfg BGPConfig) error {
	r.StopBGP()
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = r.Addr4()
	}
	conf, err := renderBGPConfig(r.name, cfg, r.localEnd)
	if err != nil {
		return err
	}
	bfddConf := conf.bfdd
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("netlab: clear router directory: %w", err)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("netlab: create router directory: %w", err)
	}
	uid, gid, err := frrIDs()
	if err != nil {
		return err
	}
	files := map[string]string{"bgpd.conf": conf.bgpd}
	zebra := cfg.needsZebra()
	if zebra {
		files["zebra.conf"] = "hostname " + r.name + "\nlog stdout informational\n"
		if bfddConf == "" {
			bfddConf = "hostname " + r.name + "\nlog stdout informational\n"
		}
		files["bfdd.conf"] = bfddConf
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("netlab: write %s: %w", name, err)
		}
	}
	if err := chownTree(r.dir, uid, gid); err != nil {
		return err
	}
	if err := r.dryRun(ctx); err != nil {
		return err
	}

	common := func(daemon string) []string {
		return []string{"-u", "frr", "-g", "frr", "-P", "0", "--log", "stdout",
			"--vty_socket", r.dir,
			"-i", filepath.Join(r.dir, daemon+".pid"),
			"-f", filepath.Join(r.dir, daemon+".conf")}
	}
	zserv := filepath.Join(r.dir, "zserv.api")
	type daemon struct {
		name string
		args []string
	}
	var daemons []daemon
	if zebra {
		daemons = append(daemons,
			daemon{"zebra", append([]string{ZebraPath, "-z", zserv}, common("zebra")...)},
			daemon{"bfdd", append([]string{BFDDPath, "-z", zserv, "--bfdctl", filepath.Join(r.dir, "bfdd.sock")}, common("bfdd")...)},
			daemon{"bgpd", append([]string{BGPDPath, "-z", zserv}, common("bgpd")...)})
	} else {
		daemons = append(daemons, daemon{"bgpd", append([]string{BGPDPath, "-Z"}, common("bgpd")...)})
	}
	for _, d := range daemons {
		p, err := r.startProcess(ProcessSpec{Name: d.name, Args: d.args})
		if err != nil {
			return err
		}
		r.daemons = append(r.daemons, p)
		if err := r.waitVty(ctx, p); err != nil {
			return err
		}
		if d.name == "bfdd" {
			if err := r.configureBFDSessions(ctx, conf.bfdSessions); err != nil {
				return err
			}
		}
	}
	r.cfg = cfg
	return nil
}

// localEnd returns the router's address and interface towards peer: the link whose
// subnet holds peer, else the router's first address of peer's family.
func (r *Router) localEnd(peer netip.Addr) localEnd {
	for _, l := range r.Links() {
		for _, p := range l.Addrs {
			if p.Masked().Contains(peer) {
				return localEnd{addr: p.Addr(), ifname: l.Name}
			}
		}
	}
	for _, a := range r.Addrs() {
		if a.Is4() == peer.Is4() {
			return localEnd{addr: a}
		}
	}
	return localEnd{}
}

// configureBFDSessions adds the static BFD sessions to bfdd, retrying until bfdd
// knows their interfaces and lists every one.
func (r *Router) configureBFDSessions(ctx context.Context, sessions []bfdSession) error {
	if len(sessions) == 0 {
		return nil
	}
	args := []string{"configure terminal", "bfd"}
	for _, s := range sessions {
		args = append(args, s.command(), "profile "+s.profile, "exit")
	}
	return Poll(ctx, 10*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
		if _, err := r.vtysh(ctx, "bfdd", args...); err != nil {
			return err
		}
		out, err := r.vtysh(ctx, "bfdd", "show bfd peers json")
		if err != nil {
			return err
		}
		peers, err := parseBFDPeers([]byte(out))
		if err != nil {
			return err
		}
		for _, s := range sessions {
			if !slices.ContainsFunc(peers, func(p BFDPeer) bool {
				return p.Peer == s.peer && p.Local == s.local && p.Interface == s.ifname
			}) {
				return fmt.Errorf("netlab: bfdd has no session %q yet: %+v", s.command(), peers)
			}
		}
		return nil
	})
}

// dryRun checks bgpd.conf with bgpd -C, which exits 0 even on errors but names the
// offending lines.
func (r *Router) dryRun(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, BGPDPath, "-C", "-Z", "-u", "frr", "-g", "frr",
		"--vty_socket", r.dir, "-f", filepath.Join(r.dir, "bgpd.conf")).CombinedOutput()
	if err != nil || strings.Contains(string(out), "config line") {
		return fmt.Errorf("%w: bgpd rejects the configuration (%v):\n%s\nconfiguration:\n%s",
			ErrBadBGPConfig, err, out, mustRead(filepath.Join(r.dir, "bgpd.conf")))
	}
	return nil
}

// waitVty waits until the daemon's vty socket answers.
func (r *Router) waitVty(ctx context.Context, p *Process) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	sock := filepath.Join(r.dir, p.name+".vty")
	for {
		if _, err := os.Stat(sock); err == nil {
			if _, err := r.vtysh(ctx, p.name, "show version"); err == nil {
				return nil
			}
		}
		select {
		case <-p.Done():
			return fmt.Errorf("netlab: %s exited (%v):\n%s", p.name, p.Err(), tailFile(p.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("netlab: %s's vty socket %s does not answer: %w\n%s", p.name, sock, ctx.Err(), tailFile(p.logPath, 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StopBGP stops the router's daemons (SIGTERM, then SIGKILL).
func (r *Router) StopBGP() {
	for i := len(r.daemons) - 1; i >= 0; i-- {
		_ = r.daemons[i].Stop(3 * time.Second)
	}
	r.daemons = nil
}

// Daemons returns the running daemons' processes (bgpd last).
func (r *Router) Daemons() []*Process { return r.daemons }

// Vtysh runs vtysh commands against the router's daemons and returns the output.
func (r *Router) Vtysh(ctx context.Context, commands ...string) (string, error) {
	return r.vtysh(ctx, "", commands...)
}

// vtysh runs commands; daemon, when set, restricts vtysh to that daemon (-d).
func (r *Router) vtysh(ctx context.Context, daemon string, commands ...string) (string, error) {
	args := []string{"--vty_socket", r.dir}
	if daemon != "" {
		args = append(args, "-d", daemon)
	}
	for _, c := range commands {
		args = append(args, "-c", c)
	}
	// vtysh can hang on a daemon that is busy starting or stopping: bound each call.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "vtysh", args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("netlab: vtysh %s: %w: %s", strings.Join(commands, "; "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// frrIDs returns the uid and gid of the frr user the daemons run as.
func frrIDs() (int, int, error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return 0, 0, fmt.Errorf("netlab: FRR's user: %w (install the Debian package frr)", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("netlab: FRR's user ids: %w", err)
	}
	return uid, gid, nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("netlab: chown %s: %w", path, err)
		}
		return nil
	})
}

func mustRead(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// Neighbors returns the router's BGP neighbours, sorted by address.
func (r *Router) Neighbors(ctx context.Context) ([]BGPNeighbor, error) {
	out, err := r.vtysh(ctx, "bgpd", "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return parseNeighbors([]byte(out))
}

// Neighbor returns the neighbour at addr; false when the router has none.
func (r *Router) Neighbor(ctx context.Context, addr netip.Addr) (BGPNeighbor, bool, error) {
	ns, err := r.Neighbors(ctx)
	if err != nil {
		return BGPNeighbor{}, false, err
	}
	for _, n := range ns {
		if n.Address == addr {
			return n, true, nil
		}
	}
	return BGPNeighbor{}, false, nil
}

// Routes returns the router's BGP table for family, sorted by prefix, in one vtysh
// call: paths carry next hops, best and multipath flags, AS path, origin, local
// preference and MED, but not communities (use Route for those).
func (r *Router) Routes(ctx context.Context, family Family) ([]BGPRoute, error) {
	out, err := r.vtysh(ctx, "bgpd", fmt.Sprintf("show bgp %s unicast json", family))
	if err != nil {
		return nil, err
	}
	return parseBGPTable([]byte(out))
}

// Route returns every path the router has for exactly prefix, with communities and
// large communities; false when it has none.
func (r *Router) Route(ctx context.Context, prefix netip.Prefix) (BGPRoute, bool, error) {
	out, err := r.vtysh(ctx, "bgpd", fmt.Sprintf("show bgp %s unicast %s json", FamilyOf(prefix.Addr()), prefix.Masked()))
	if err != nil {
		return BGPRoute{}, false, err
	}
	return parseBGPPrefix([]byte(out))
}

// BFDPeers returns bfdd's sessions, sorted by peer address. It is an error to call it
// on a router whose configuration needs no BFD (bfdd does not run).
func (r *Router) BFDPeers(ctx context.Context) ([]BFDPeer, error) {
	if !r.cfg.needsZebra() {
		return nil, fmt.Errorf("netlab: router %s runs no bfdd: no neighbour has BFD", r.name)
	}
	out, err := r.vtysh(ctx, "bfdd", "show bfd peers json")
	if err != nil {
		return nil, err
	}
	return parseBFDPeers(bytes.TrimSpace([]byte(out)))
}

// KernelNextHops returns the gateways of the router's kernel route to exactly prefix
// (what zebra installed, so what the router forwards over), sorted and without
// repeats; none when the kernel has no such route.
func (r *Router) KernelNextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	family := "-4"
	if prefix.Addr().Is6() {
		family = "-6"
	}
	out, err := r.Run(ctx, "ip", "-j", family, "route", "show", "exact", prefix.String())
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
