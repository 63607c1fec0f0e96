// Command kubectl-herald is the kubectl plugin of Herald (kubectl herald):
// it migrates from MetalLB without changing an address, explains why a
// Service has or lacks an address and who announces it, shows the
// installation on one screen, and plans a pool change. See docs/plugin.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
