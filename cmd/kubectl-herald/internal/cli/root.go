// Package cli is kubectl-herald's thin I/O shell: it parses the command
// line, reads objects from files and the API server, hands them to the
// pure packages (migrate, explain, poolplan), prints what they say, and
// applies a migration when asked.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
)

// FieldManager is the field manager of everything kubectl-herald writes.
const FieldManager = "kubectl-herald"

// errReported is returned by a command that already printed why it failed.
var errReported = errors.New("failed")

// clients are the API clients a command uses; built on first use so that
// --help and offline plans need no cluster.
type clients struct {
	config  clientcmd.ClientConfig
	rest    *rest.Config
	kube    kubernetes.Interface
	herald  heraldclient.Interface
	dynamic dynamic.Interface
}

func (c *clients) init() error {
	if c.kube != nil {
		return nil
	}
	cfg, err := c.config.ClientConfig()
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-herald"
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if c.herald, err = heraldclient.NewForConfig(cfg); err != nil {
		return err
	}
	if c.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	c.rest = cfg
	return nil
}

// namespace is the namespace the kubeconfig and -n select.
func (c *clients) namespace() (string, error) {
	ns, _, err := c.config.Namespace()
	return ns, err
}

// Main runs kubectl-herald with args and returns the exit code: 0 on
// success, 1 when the command failed (it says why on stderr), 2 for a
// usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errReported):
		return 1
	case cmd != nil && isUsage(err):
		fmt.Fprintf(stderr, "kubectl herald: %v\nSee 'kubectl herald %s --help'.\n", err, cmd.Name())
		return 2
	}
	fmt.Fprintf(stderr, "kubectl herald: %v\n", err)
	return 1
}

// usageError marks an error in the command line.
type usageError struct{ error }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	c := &clients{}
	root := &cobra.Command{
		Use: "kubectl-herald",
		// kubectl runs the plugin as "kubectl herald".
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl herald"},
		Short:       "Herald's kubectl plugin: migrate from MetalLB, explain a Service, show status, plan a pool change",
		Long: `kubectl herald helps run Herald, the bare-metal LoadBalancer for Kubernetes.

  migrate metallb   plan (and with --apply, perform) the move from MetalLB: every
                    Service keeps its address; every setting not carried is listed
  explain svc NAME  why a Service has its address or none, who announces it and
                    why each other node does not, and node-side prerequisites
  status            pools, speakers, BGP sessions and every problem, on one screen
  plan -f FILE      what applying changed IPPools or advertisements would do to the
                    Services in use, before anything is applied

See docs/plugin.md and docs/migration.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	loading := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{}
	root.PersistentFlags().StringVar(&loading.ExplicitPath, "kubeconfig", "", "path to the kubeconfig file")
	clientcmd.BindOverrideFlags(overrides, root.PersistentFlags(), clientcmd.RecommendedConfigOverrideFlags(""))
	c.config = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, overrides)
	root.AddCommand(newMigrate(c), newExplain(c), newStatus(c), newPlan(c))
	return root
}
