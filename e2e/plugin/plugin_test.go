package plugin

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// PluginPackage is the plugin's main package.
const PluginPackage = "github.com/herald-dev/herald/cmd/kubectl-herald"

// plugin runs the kubectl-herald binary against one API server.
type plugin struct {
	bin, kubeconfig string
}

func newPlugin(t *testing.T, cfg *rest.Config) *plugin {
	t.Helper()
	p := &plugin{bin: netlab.BuildGo(t, PluginPackage), kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	if err := controlplane.WriteKubeconfig(p.kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs the plugin with args and returns its stdout, stderr and exit code.
func (p *plugin) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, append([]string{"--kubeconfig=" + p.kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run kubectl-herald %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}
