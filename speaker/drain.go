package speaker

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/herald-dev/herald/speaker/internal/drain"
	"github.com/herald-dev/herald/speaker/internal/heartbeat"
	"github.com/herald-dev/herald/speaker/internal/reconcile"
	"github.com/herald-dev/herald/speaker/internal/report"
)

// Defaults of the drain's mark and routing table (--drain-mark,
// --drain-route-table).
const (
	DefaultDrainMark       = 0x00100000
	DefaultDrainRouteTable = 18518
)

// kernelProbeTimeout is how long the drain waits for previous owners'
// kernels to answer an echo request before it counts them down. It delays
// a takeover only when membership, not the fast failure detector, found
// the previous owner gone (about a second already).
const kernelProbeTimeout = 100 * time.Millisecond

// startDrain returns the drain's forwarder, with what a previous run left
// removed, and the probe of previous owners' kernels; nil and nil when the
// drain is off or cannot work (logged, and herald_speaker_drain_available
// says 0): the speaker then works without it.
func startDrain(cfg Config, nodeIP netip.Addr, metrics *report.Metrics, log *slog.Logger) (*drain.Forwarder, reconcile.KernelsUp) {
	metrics.DrainAvailable.Set(0)
	if cfg.DrainWindow <= 0 {
		return nil, nil
	}
	f, err := drain.New(drain.Config{Mark: cfg.DrainMark, RouteTable: cfg.DrainRouteTable})
	if err != nil {
		log.Error("drain of moved addresses' connections is OFF: bad configuration", "err", err)
		return nil, nil
	}
	if err := f.Reset(); err != nil {
		if errors.Is(err, drain.ErrNotPermitted) {
			log.Error("drain of moved addresses' connections is OFF: --drain-window is set but the speaker lacks CAP_NET_ADMIN (deploy/components/drain adds it)", "err", err)
		} else {
			log.Error("drain of moved addresses' connections is OFF: cannot program the node", "err", err)
		}
		return nil, nil
	}
	echo, err := heartbeat.ListenEcho(nodeIP)
	if err != nil {
		log.Error("drain of moved addresses' connections is OFF: cannot ask previous owners' kernels whether they are up", "err", err)
		return nil, nil
	}
	metrics.DrainAvailable.Set(1)
	log.Info("draining moved addresses' connections to their previous owners", "window", cfg.DrainWindow,
		"mark", cfg.DrainMark, "routeTable", cfg.DrainRouteTable)
	return f, func(nodes map[string]netip.Addr) map[string]bool { return kernelsUp(echo, nodes, kernelProbeTimeout) }
}

// kernelsUp sends an echo request to each node and returns those whose
// kernel answered within timeout. Only the reconcile loop calls it.
func kernelsUp(echo *heartbeat.Echo, nodes map[string]netip.Addr, timeout time.Duration) map[string]bool {
	sent := time.Now()
	byAddr := map[netip.Addr]string{}
	for n, a := range nodes {
		if a.Is4() != echo.Is4() {
			continue
		}
		if err := echo.Send(a, sent); err == nil {
			byAddr[a] = n
		}
	}
	up := map[string]bool{}
	if err := echo.SetReadDeadline(sent.Add(timeout)); err != nil {
		return up
	}
	for len(up) < len(byAddr) {
		a, at, err := echo.Receive()
		if err != nil {
			break // the deadline
		}
		if n, ok := byAddr[a]; ok && !at.Before(sent) {
			up[n] = true
		}
	}
	return up
}
