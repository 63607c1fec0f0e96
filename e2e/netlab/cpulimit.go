package netlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cpuCgroupRoot is the cgroup v1 cpu controller's mount.
const cpuCgroupRoot = "/sys/fs/cgroup/cpu"

// CPULimit is a cgroup (v1, cpu controller) whose processes share a CPU
// quota: CPU starvation of a node's daemons.
type CPULimit struct {
	dir  string
	pids []int
}

// LimitCPU moves pids into a new cgroup named name (give it the lab's prefix)
// that may use percent of one CPU, until Remove. It fails when the machine has
// no cgroup v1 cpu controller.
func LimitCPU(name string, percent int, pids ...int) (*CPULimit, error) {
	if percent < 1 || percent > 100 {
		return nil, fmt.Errorf("netlab: CPU limit %d%%: want 1 to 100", percent)
	}
	dir := filepath.Join(cpuCgroupRoot, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("netlab: CPU limit: %w", err)
	}
	l := &CPULimit{dir: dir}
	const period = 100000 // µs
	for _, kv := range [][2]string{{"cpu.cfs_period_us", strconv.Itoa(period)}, {"cpu.cfs_quota_us", strconv.Itoa(period * percent / 100)}} {
		if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0o644); err != nil {
			_ = l.Remove()
			return nil, fmt.Errorf("netlab: CPU limit: %w", err)
		}
	}
	for _, pid := range pids {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			_ = l.Remove()
			return nil, fmt.Errorf("netlab: CPU limit: move pid %d: %w", pid, err)
		}
		l.pids = append(l.pids, pid)
	}
	return l, nil
}

// Remove moves the processes still in the cgroup back to the root cgroup and
// deletes it. It is safe to call more than once.
func (l *CPULimit) Remove() error {
	if l == nil || l.dir == "" {
		return nil
	}
	var errs []error
	data, err := os.ReadFile(filepath.Join(l.dir, "cgroup.procs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, f := range strings.Fields(string(data)) {
		if err := os.WriteFile(filepath.Join(cpuCgroupRoot, "cgroup.procs"), []byte(f), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("move pid %s back: %w", f, err))
		}
	}
	if err := os.Remove(l.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	l.dir = ""
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netlab: remove CPU limit: %w", err)
	}
	return nil
}
