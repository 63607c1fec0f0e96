package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-dev/herald/e2e/netlab"
)

// TestUpRefusesBadInput runs `lab up` as a user would on a machine that cannot hold
// the lab, and checks that it stops at once with a clear message and leaves nothing
// behind: no state directory (the lab creates it before its first namespace or
// process, so none of those either). The overlapping route lives in a network
// namespace of the test's own, so the machine's routes are never touched.
func TestUpRefusesBadInput(t *testing.T) {
	netlab.RequireRoot(t)
	netlab.RequireCommands(t, "ip", "setpriv")
	// A directory any user can reach: the "not root" case runs the binary as nobody.
	dir, err := os.MkdirTemp("", "herald-lab-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "lab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	ns := "hlpf" + hex.EncodeToString(suffix)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "route", "add", "198.51.100.0/25", "dev", "lo")

	tests := []struct {
		name string
		cmd  []string
		want string
	}{
		{
			name: "routes overlap the lab's ranges",
			cmd:  []string{"ip", "netns", "exec", ns, bin, "up"},
			want: "the machine's routes 198.51.100.0/25 dev lo overlap the lab's ranges",
		},
		{
			name: "not root",
			cmd:  []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "up"},
			want: "not root: the lab creates network namespaces",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stateBefore := os.Stat(StateDir)
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(tt.cmd[0], tt.cmd[1:]...)
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
			err := cmd.Run()
			if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
				t.Fatalf("lab up: %v, want exit status 1\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "nothing was changed") {
				t.Errorf("lab up said:\n%s\nwant %q and \"nothing was changed\"", &stderr, tt.want)
			}
			if _, stateAfter := os.Stat(StateDir); os.IsNotExist(stateBefore) && !os.IsNotExist(stateAfter) {
				t.Errorf("lab up left %s behind", StateDir)
			}
		})
	}
}
