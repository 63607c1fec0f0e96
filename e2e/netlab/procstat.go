package netlab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcStat is what the labs and the measurement commands read of a
// process's /proc/PID/stat.
type ProcStat struct {
	// State is the process state: R, S, D, Z...
	State byte
	// PPid is the parent's pid.
	PPid int
	// CPU is the user and system CPU time used so far.
	CPU time.Duration
	// StartTicks is the start time in clock ticks since boot (field 22),
	// which tells a recycled pid from the process that had it.
	StartTicks uint64
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ: 100 on every
// Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// ReadProcStat reads /proc/pid/stat.
func ReadProcStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat parses a /proc/PID/stat line. The command name (field 2)
// may hold spaces and parentheses: the fields after the last ')' are well
// formed, the first of them field 3 (state).
func parseProcStat(s string) (ProcStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("netlab: /proc stat %q: no command name", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("netlab: /proc stat %q: %d fields after the command name, want 20 or more", s, len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err3 := strconv.ParseUint(f[12], 10, 64) // field 15
	start, err4 := strconv.ParseUint(f[19], 10, 64) // field 22
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return ProcStat{}, fmt.Errorf("netlab: /proc stat %q: %w", s, err)
		}
	}
	return ProcStat{State: f[0][0], PPid: ppid, CPU: time.Duration(utime+stime) * clockTick, StartTicks: start}, nil
}
