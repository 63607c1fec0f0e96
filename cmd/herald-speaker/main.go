// Command herald-speaker runs Herald's speaker on one node: it announces
// the load-balancer addresses its node should announce, over ARP and NDP
// (layer 2), and keeps a SpeakerStatus record of them. Run it on every node,
// on the host network, with CAP_NET_RAW (a DaemonSet).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/herald-dev/herald/cmd/internal/daemon"
	"github.com/herald-dev/herald/speaker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "herald-speaker:", err)
		os.Exit(1)
	}
}

func run() error {
	o, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, logOpts, metricsAddr, gcPercent, takeover, startupWait := o.cfg, o.log, o.metricsAddr, o.gcPercent, o.takeover, o.startupWait

	if _, set := os.LookupEnv("GOGC"); !set && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}

	logger, err := daemon.NewLogger(os.Stderr, logOpts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	cfg.TakeoverDelay = takeover
	if takeover <= 0 {
		cfg.TakeoverDelay = -1 // speaker.Config: negative disables, zero is the default
	}
	cfg.StartupMemberWait = startupWait
	if startupWait <= 0 {
		cfg.StartupMemberWait = -1 // speaker.Config: negative turns it off, zero is the default
	}
	cfg.Logger = logger
	cfg.Registry = daemon.NewRegistry()
	cfg.Health = &speaker.Health{}
	endpoint := daemon.Endpoint{Addr: metricsAddr, Gatherer: cfg.Registry, Healthy: cfg.Health.Healthy, Ready: cfg.Health.Ready, Profiling: o.profiling}
	errc, err := endpoint.Serve(ctx)
	if err != nil {
		return err
	}
	go func() {
		for err := range errc {
			logger.Error("metrics endpoint", "err", err)
		}
	}()
	logger.Info("starting speaker", "node", cfg.NodeName, "loadBalancerClass", cfg.LoadBalancerClass)
	return speaker.Run(ctx, cfg)
}
