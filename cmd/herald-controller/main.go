// Command herald-controller runs Herald's controller: it allocates addresses
// from IPPools to Services of type LoadBalancer and to spec.externalIPs, and
// reports on Services and pools. See docs/controller.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

func main() {
	opts, err := parseFlags(os.Args[0], os.Args[1:], os.Stderr)
	if errors.Is(err, pflag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "herald-controller:", err)
		os.Exit(1)
	}
}
