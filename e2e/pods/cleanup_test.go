package pods

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/herald-dev/herald/e2e/netlab"
)

// TestRemoveStaleCgroups: the cgroup root of a lab whose test binary died (no network
// namespace of its prefix is left) is removed from every hierarchy, and the process in
// it killed; so is nothing of a live lab's.
func TestRemoveStaleCgroups(t *testing.T) {
	netlab.RequireRoot(t)
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	const root = "/hlzz9zz-node1" // a prefix no lab has: no /run/netns/hlzz9zz-*
	t.Cleanup(func() { _ = removeCgroups(hierarchies, root) })
	for _, h := range hierarchies {
		if err := os.MkdirAll(filepath.Join(h, root, "kubepods"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	procs := filepath.Join(hierarchies[0], root, "kubepods", "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := removeStaleCgroups(); err != nil {
		t.Fatal(err)
	}
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join(h, root)); !os.IsNotExist(err) {
			t.Errorf("%s%s is still there (%v)", h, root, err)
		}
	}
	if err := <-done; err == nil {
		t.Errorf("the process in the stale cgroup exited by itself, want it killed")
	}
}
