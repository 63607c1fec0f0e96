package controlplane_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// The tests below run this test binary again as a child that starts a control plane,
// writes where it lives to a report file, and then ends badly; the parent checks that
// nothing the child started is left behind.
const (
	childModeEnv   = "HERALD_CONTROLPLANE_CHILD"
	childReportEnv = "HERALD_CONTROLPLANE_CHILD_REPORT"
)

// TestChild is the child's side. It does nothing unless the parent set childModeEnv.
func TestChild(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		t.Skip("run by TestCleanupWhenTheTestEndsBadly only")
	}
	cp := controlplane.StartForTest(t, controlplane.Options{SkipCRDs: true})
	if mode == "missing" {
		t.Fatal("StartForTest returned although HERALD_BIN_DIR holds no binaries")
	}
	report := fmt.Sprintf("%s\n%s\n", cp.Dir, strings.Trim(fmt.Sprint(cp.PIDs()), "[]"))
	if err := os.WriteFile(os.Getenv(childReportEnv), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "fail":
		t.Fatal("failing on purpose")
	case "panic":
		panic("panicking on purpose")
	case "hang":
		time.Sleep(time.Hour) // the parent kills this process
	}
}

func TestCleanupWhenTheTestEndsBadly(t *testing.T) {
	controlplane.RequireBinaries(t, "")
	for _, mode := range []string{"fail", "panic", "hang"} {
		t.Run(mode, func(t *testing.T) {
			report := filepath.Join(t.TempDir(), "report")
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childReportEnv+"="+report)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if mode == "hang" {
				// A test binary killed by -timeout or by a signal runs no cleanup: the
				// kernel must end the children (Pdeathsig), and the next Start removes
				// the directory.
				waitForFile(t, report, time.Minute)
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child (%s) ended with %v, want a failure exit; output:\n%s", mode, err, out.String())
			}
			dir, pids := readReport(t, report, out.String())
			if mode == "hang" {
				waitGone(t, pids, 10*time.Second)
				// Starting (and stopping) another control plane sweeps stale directories.
				cp, err := controlplane.Start(t.Context(), controlplane.Options{SkipCRDs: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := cp.Stop(); err != nil {
					t.Fatal(err)
				}
			}
			assertGone(t, dir, pids)
		})
	}
}

// TestMissingBinaries checks what a test sees when the binaries are missing: a skip
// naming them and the build command, or, under CI=true, a failure with that message.
func TestMissingBinaries(t *testing.T) {
	for _, tt := range []struct {
		ci       string
		wantExit bool   // whether the child must exit non-zero
		want     string // in the child's verbose output
	}{
		{ci: "", wantExit: false, want: "--- SKIP: TestChild"},
		{ci: "true", wantExit: true, want: "--- FAIL: TestChild"},
	} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), childModeEnv+"=missing", "HERALD_BIN_DIR="+t.TempDir(), "CI="+tt.ci)
			out, err := cmd.CombinedOutput()
			if gotExit := err != nil; gotExit != tt.wantExit {
				t.Errorf("child exited with %v, want a failure exit: %v", err, tt.wantExit)
			}
			for _, want := range []string{tt.want, "etcd, kube-apiserver, kube-proxy, kubectl not found", "make binaries"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func readReport(t *testing.T, path, childOutput string) (dir string, pids []int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("child wrote no report (%v); output:\n%s", err, childOutput)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("report %q: want two lines", data)
	}
	for _, f := range strings.Fields(lines[1]) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("report %q: %v", data, err)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("report %q: want two process ids", data)
	}
	return lines[0], pids
}

func waitForFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if data, err := os.ReadFile(path); err == nil && strings.Count(string(data), "\n") == 2 {
			return
		}
	}
	t.Fatalf("no report at %s after %v", path, timeout)
}

// waitGone waits until no process is left in the process groups pgids.
func waitGone(t *testing.T, pgids []int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, pgid := range pgids {
		for !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			if time.Now().After(deadline) {
				t.Fatalf("process group %d still runs %v after its owner died", pgid, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// assertGone checks that the process groups pgids are empty and dir does not exist.
func assertGone(t *testing.T, dir string, pgids []int) {
	t.Helper()
	for _, pgid := range pgids {
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists (kill -0: %v)", pgid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s still exists (stat: %v)", dir, err)
	}
}

func processPIDs(t *testing.T, cp *controlplane.ControlPlane) []int {
	t.Helper()
	pids := cp.PIDs()
	if len(pids) != 2 {
		t.Fatalf("PIDs() = %v, want etcd's and kube-apiserver's", pids)
	}
	for _, pgid := range pids {
		if err := syscall.Kill(-pgid, 0); err != nil {
			t.Fatalf("process group %d not running before Stop: %v", pgid, err)
		}
	}
	return pids
}

func exitStderr(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}

// TestFailedStartLeavesNothing makes kube-apiserver exit at once (an unknown flag) and
// checks that Start reports it with the apiserver's log, and that etcd, already started,
// is stopped and the directory removed.
func TestFailedStartLeavesNothing(t *testing.T) {
	controlplane.RequireBinaries(t, "")
	before := ownedTempDirs(t)
	cp, err := controlplane.Start(t.Context(), controlplane.Options{SkipCRDs: true, ExtraAPIServerArgs: []string{"--no-such-flag"}})
	if err == nil {
		cp.Stop()
		t.Fatal("Start succeeded with an unknown kube-apiserver flag")
	}
	if !strings.Contains(err.Error(), "kube-apiserver exited") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("Start error does not say that kube-apiserver exited and why:\n%v", err)
	}
	if children := childProcesses(t); len(children) > 0 {
		t.Errorf("child processes left running: %v", children)
	}
	if after := ownedTempDirs(t); len(after) > len(before) {
		t.Errorf("temporary directories left: before %v, after %v", before, after)
	}
}

// ownedTempDirs lists the control-plane directories this test process owns.
func ownedTempDirs(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(os.TempDir(), "herald-controlplane-*", "owner.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range matches {
		if data, err := os.ReadFile(m); err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(os.Getpid()) {
			dirs = append(dirs, filepath.Dir(m))
		}
	}
	return dirs
}

// childProcesses lists the command lines of the running children of this process.
func childProcesses(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var children []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", os.Getpid())) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		children = append(children, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return children
}
