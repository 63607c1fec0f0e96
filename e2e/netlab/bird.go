package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// BirdRouter is a host that runs BIRD 2 (Debian package bird2): one bird process of
// this lab's own (never the package's service), run as root in the host's namespace
// with its configuration, control socket and pid file in the router's state
// directory. Its kernel protocols install the routes it learns into the host's kernel
// table, so the host forwards over them; birdc reaches it through the control socket
// from outside the namespace.
type BirdRouter struct {
	*Host
	dir  string
	cfg  BirdConfig
	proc *Process
}

// NewBirdRouter makes h a BIRD router. Start starts BIRD.
func NewBirdRouter(h *Host) *BirdRouter {
	return &BirdRouter{Host: h, dir: filepath.Join(h.lab.stateDir, h.name)}
}

// Dir returns the directory holding bird.conf, the control socket and the pid file.
func (r *BirdRouter) Dir() string { return r.dir }

// Config returns the configuration BIRD was last started with.
func (r *BirdRouter) Config() BirdConfig { return r.cfg }

// Process returns the running bird process, nil before Start.
func (r *BirdRouter) Process() *Process { return r.proc }

func (r *BirdRouter) socket() string { return filepath.Join(r.dir, "bird.ctl") }

// Start renders cfg, checks it with bird -p, starts bird, and waits until it answers
// on its control socket. A running bird is stopped first, so Start also restarts with
// a new configuration.
func (r *BirdRouter) Start(cfg BirdConfig) {
	t := r.lab.t
	t.Helper()
	RequireCommands(t, BirdPath, BirdcPath)
	if err := r.start(t.Context(), cfg); err != nil {
		t.Fatalf("%v", err)
	}
}

func (r *BirdRouter) start(ctx context.Context, cfg BirdConfig) error {
	r.Stop()
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = r.Addr4()
	}
	conf, err := renderBirdConfig(r.name, cfg, r.localEnd)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("netlab: clear router directory: %w", err)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("netlab: create router directory: %w", err)
	}
	confPath := filepath.Join(r.dir, "bird.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("netlab: write bird.conf: %w", err)
	}
	if out, err := exec.CommandContext(ctx, BirdPath, "-p", "-c", confPath).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: bird rejects the configuration (%v):\n%s\nconfiguration:\n%s", ErrBadBGPConfig, err, out, conf)
	}
	p, err := r.startProcess(ProcessSpec{Name: "bird", Args: []string{BirdPath, "-f", "-c", confPath,
		"-s", r.socket(), "-P", filepath.Join(r.dir, "bird.pid")}})
	if err != nil {
		return err
	}
	r.proc = p
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if _, err := r.Birdc(ctx, "show", "status"); err == nil {
			break
		}
		select {
		case <-p.Done():
			return fmt.Errorf("netlab: bird exited (%v):\n%s", p.Err(), tailFile(p.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("netlab: bird's control socket %s does not answer: %w\n%s", r.socket(), ctx.Err(), tailFile(p.logPath, 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.cfg = cfg
	return nil
}

// Stop stops bird (SIGTERM, then SIGKILL).
func (r *BirdRouter) Stop() {
	if r.proc != nil {
		_ = r.proc.Stop(3 * time.Second)
		r.proc = nil
	}
}

// Birdc runs one birdc command (its words as args) with reply codes (-v) and returns
// the output, which the Parse functions of this package read.
func (r *BirdRouter) Birdc(ctx context.Context, args ...string) (string, error) {
	// birdc waits forever for a bird that accepted but does not answer: bound each call.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, BirdcPath, append([]string{"-v", "-s", r.socket()}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("netlab: birdc %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()+" "+stdout.String()))
	}
	return stdout.String(), nil
}

// Protocols returns BIRD's protocols (`show protocols`).
func (r *BirdRouter) Protocols(ctx context.Context) ([]BirdProtocol, error) {
	out, err := r.Birdc(ctx, "show", "protocols")
	if err != nil {
		return nil, err
	}
	return parseBirdProtocols(out)
}

// Neighbor returns the BGP protocol of the neighbour at addr; false when BIRD has none.
func (r *BirdRouter) Neighbor(ctx context.Context, addr netip.Addr) (BirdProtocol, bool, error) {
	ps, err := r.Protocols(ctx)
	if err != nil {
		return BirdProtocol{}, false, err
	}
	name := birdProtocolName(addr)
	for _, p := range ps {
		if p.Name == name {
			return p, true, nil
		}
	}
	return BirdProtocol{}, false, nil
}

// NeighborAddr returns the address of the neighbour whose BGP protocol is named name.
func (r *BirdRouter) NeighborAddr(name string) (netip.Addr, bool) {
	for _, n := range r.cfg.Neighbors {
		if birdProtocolName(n.Address) == name {
			return n.Address, true
		}
	}
	return netip.Addr{}, false
}

// Routes returns every route BIRD has for exactly prefix (one per neighbour that
// announces it, with attributes), or none.
func (r *BirdRouter) Routes(ctx context.Context, prefix netip.Prefix) ([]BirdRoute, error) {
	out, err := r.Birdc(ctx, "show", "route", "all", prefix.Masked().String())
	if err != nil {
		return nil, err
	}
	return parseBirdRoutes(out)
}

// BFDSessions returns BIRD's BFD sessions (`show bfd sessions`), sorted by peer.
func (r *BirdRouter) BFDSessions(ctx context.Context) ([]BirdBFDSession, error) {
	out, err := r.Birdc(ctx, "show", "bfd", "sessions")
	if err != nil {
		return nil, err
	}
	return parseBirdBFDSessions(out)
}
