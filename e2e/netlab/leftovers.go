package netlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerKept is the owner file's content for a lab made with Options.Keep.
const ownerKept = "keep"

// currentOwner identifies this process: its pid and its start time in clock ticks since
// boot, so that a recycled pid is not mistaken for the owner.
func currentOwner() string {
	pid := os.Getpid()
	return fmt.Sprintf("%d %d", pid, processStartTime(pid))
}

// processStartTime returns the process's start time (ProcStat.StartTicks),
// or 0 when the process is gone.
func processStartTime(pid int) uint64 {
	st, err := ReadProcStat(pid)
	if err != nil {
		return 0
	}
	return st.StartTicks
}

// ownerAlive reports whether the owner recorded as content (see currentOwner) still runs.
// A kept lab counts as alive.
func ownerAlive(content string) bool {
	content = strings.TrimSpace(content)
	if content == ownerKept {
		return true
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(content, "%d %d", &pid, &start); err != nil || pid <= 0 {
		return false
	}
	return start != 0 && processStartTime(pid) == start
}

// CleanLeftovers removes what crashed runs left behind: every lab whose owner process is
// dead, and every namespace named like a lab's (see Lab.Prefix) that has no owner file.
// Labs of live processes and kept labs are left alone. New calls it.
func CleanLeftovers() error {
	owners, _ := filepath.Glob(filepath.Join(StateRoot, "*.owner"))
	var errs []error
	for _, f := range owners {
		prefix := strings.TrimSuffix(filepath.Base(f), ".owner")
		b, err := os.ReadFile(f)
		if err != nil {
			continue // removed meanwhile
		}
		if ownerAlive(string(b)) {
			continue
		}
		errs = append(errs, destroyPrefix(prefix))
	}
	for _, ns := range listNetns() {
		m := prefixPattern.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		if _, err := os.Stat(ownerFile(m[1])); errors.Is(err, os.ErrNotExist) {
			errs = append(errs, destroyPrefix(m[1]))
		}
	}
	return errors.Join(errs...)
}

// Destroy removes the lab with the given prefix (make lab-down): it kills every process
// in its namespaces, deletes the namespaces and its state.
func Destroy(prefix string) error {
	if !prefixPattern.MatchString(prefix + "-") {
		return fmt.Errorf("netlab: %q is not a lab prefix", prefix)
	}
	return destroyPrefix(prefix)
}

// listNetns returns the names of the named network namespaces.
func listNetns() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// destroyPrefix kills every process in the namespaces <prefix>-*, deletes them, and
// removes the prefix's state directory and owner file.
func destroyPrefix(prefix string) error {
	var namespaces []string
	inodes := map[uint64]bool{}
	for _, ns := range listNetns() {
		if !strings.HasPrefix(ns, prefix+"-") {
			continue
		}
		namespaces = append(namespaces, ns)
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err == nil {
			inodes[st.Ino] = true
		}
	}
	var errs []error
	if len(inodes) > 0 {
		if err := killNetnsProcesses(inodes); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range namespaces {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("netlab: delete namespace %s: %w: %s", ns, err, strings.TrimSpace(string(out))))
		}
	}
	if err := os.RemoveAll(filepath.Join(StateRoot, prefix)); err != nil {
		errs = append(errs, fmt.Errorf("netlab: remove state of %s: %w", prefix, err))
	}
	if err := os.Remove(ownerFile(prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("netlab: remove owner file of %s: %w", prefix, err))
	}
	return errors.Join(errs...)
}

// killNetnsProcesses SIGKILLs every process (other than this one) whose network
// namespace is one of inodes, and waits up to five seconds until none is left.
func killNetnsProcesses(inodes map[uint64]bool) error {
	self := os.Getpid()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := netnsProcesses(inodes, self)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netlab: processes %v survive SIGKILL", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// netnsProcesses returns the pids, other than self, whose network namespace is one of
// inodes. Zombies are left out: they hold no namespace and cannot be killed.
func netnsProcesses(inodes map[uint64]bool, self int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
			continue
		}
		if inodes[st.Ino] {
			pids = append(pids, pid)
		}
	}
	return pids
}
