package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one program the control plane started, in its own process group so that Stop
// reaches everything it forked, with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has been waited for
	waitErr error         // set before done is closed
}

// startProcess starts argv (after wrap, when not nil) with env added to this process's
// environment, and stdout and stderr appended to logPath. The process leads a new process group, and the kernel kills it with SIGKILL if
// the thread that started it dies, so a test binary killed by its timeout leaves nothing.
func startProcess(name string, argv, env []string, wrap func([]string) []string, dir, logPath string) (*process, error) {
	if wrap != nil {
		argv = wrap(append([]string(nil), argv...))
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("controlplane: open %s log: %w", name, err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("controlplane: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals the whole process group with SIGTERM, waits up to grace for the leader to
// exit, then sends SIGKILL to the group. A grace of zero kills at once. It waits for the
// leader in any case, so no zombie is left.
func (p *process) stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid // the leader's pid is the group's id (Setpgid)
	if grace > 0 && !p.exited() {
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("controlplane: signal %s: %w", p.name, err)
		}
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Kill the group even when the leader has exited: a child may still run.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("controlplane: kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// logTail returns the last lines of the process's log, for error messages, leaving out
// the dump of every flag's value that kube-apiserver starts with.
func (p *process) logTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", filepath.Base(p.logPath), err)
	}
	var kept [][]byte
	for line := range bytes.Lines(data) {
		if !bytes.Contains(line, []byte("] FLAG: --")) {
			kept = append(kept, line)
		}
	}
	kept = kept[max(0, len(kept)-lines):]
	return string(bytes.TrimRight(bytes.Join(kept, nil), "\n"))
}
