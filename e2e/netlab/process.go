package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcessSpec describes a long-running process to start in a host.
type ProcessSpec struct {
	// Name names the process in messages and its log file, <host>-<name>.log in the
	// lab's Dir (a second process of the same name gets <host>-<name>.2.log).
	Name string
	// Args is the command line; Args[0] is looked up in PATH.
	Args []string
	// Env is added to the test process's environment.
	Env []string
	// Dir is the working directory; default the current one.
	Dir string
	// KeepSys enters the host's network namespace with nsenter instead of `ip netns
	// exec`, which mounts a fresh /sys in a mount namespace of its own and so hides the
	// cgroup hierarchies under /sys/fs/cgroup (a kubelet and its container runtime need
	// them). The process then shares the machine's mount namespace: it must make its
	// own (unshare --mount) before it mounts anything.
	KeepSys bool
}

// Process is a process started in a host, in its own process group. Its standard
// output and error go to its log file. The lab stops it (SIGTERM to the group, then
// SIGKILL) when it closes, and a process left over by a crashed test binary is killed
// by the kernel (parent-death signal) or by the next run's CleanLeftovers.
type Process struct {
	host    *Host
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu  sync.Mutex
	err error
}

// Start starts argv in the host as a process named name; see StartProcess.
func (h *Host) Start(name string, argv ...string) *Process {
	h.lab.t.Helper()
	return h.StartProcess(ProcessSpec{Name: name, Args: argv})
}

// StartProcess starts spec in the host's namespace and fails the test if it cannot be
// started. It does not wait for the process to be ready.
func (h *Host) StartProcess(spec ProcessSpec) *Process {
	t := h.lab.t
	t.Helper()
	p, err := h.startProcess(spec)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

func (h *Host) startProcess(spec ProcessSpec) (*Process, error) {
	if spec.Name == "" || len(spec.Args) == 0 {
		return nil, errors.New("netlab: a process needs a name and a command line")
	}
	logPath := h.lab.logPath(h.name, spec.Name)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netlab: create log of %s: %w", spec.Name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "# %s: %s\n", h.ns, strings.Join(spec.Args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns}, spec.Args...)...)
	if spec.KeepSys {
		cmd = exec.Command("nsenter", append([]string{"--net=" + filepath.Join("/run/netns", h.ns), "--"}, spec.Args...)...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = spec.Dir
	if len(spec.Env) > 0 {
		cmd.Env = append(os.Environ(), spec.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !h.lab.keep {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	p := &Process{host: h, name: spec.Name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	h.lab.mu.Lock()
	if h.lab.closed {
		h.lab.mu.Unlock()
		return nil, fmt.Errorf("netlab: start %s: the lab is closed", spec.Name)
	}
	if err := spawn(cmd); err != nil {
		h.lab.mu.Unlock()
		return nil, fmt.Errorf("netlab: start %s in %s: %w", spec.Name, h.name, err)
	}
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

var spawnRequests = make(chan spawnRequest)
var spawnerOnce sync.Once

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// spawn starts cmd from one OS thread that lives as long as the test binary. The
// parent-death signal fires when the thread that forked the child exits, so forking
// from a thread the Go runtime might end would kill children early.
func spawn(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: this thread stays until exit
			for r := range spawnRequests {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}

// Name returns the process's name.
func (p *Process) Name() string { return p.name }

// Host returns the host the process runs in.
func (p *Process) Host() *Host { return p.host }

// Pid returns the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the path of the process's log file.
func (p *Process) LogPath() string { return p.logPath }

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the process's exit error (nil for status 0) once it has exited, and nil
// before.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("netlab: signal %s: %w", p.name, err)
	}
	return nil
}

// Kill sends SIGKILL to the process's group and waits until the process has exited.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM to the process's group, waits up to grace for it to exit, then
// kills the group. It returns the process's exit error, or an error saying it had to be
// killed.
func (p *Process) Stop(grace time.Duration) error {
	return p.stop(grace)
}

func (p *Process) stop(grace time.Duration) error {
	if p.Exited() {
		// Not even the group is signalled: once its members are gone, the id may be
		// reused by someone else's process.
		return p.Err()
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL) // stragglers of the group
		return p.Err()
	case <-time.After(grace):
	}
	_ = p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("netlab: %s (pid %d) survives SIGKILL", p.name, p.Pid())
	}
	return fmt.Errorf("netlab: %s did not stop within %v and was killed", p.name, grace)
}

// WaitLog waits until the process's log contains substr. It fails early when the
// process exits.
func (p *Process) WaitLog(ctx context.Context, substr string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.Log(), substr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: %s: waiting for %q in its log: %w", p.name, substr, ctx.Err())
		case <-p.done:
			if strings.Contains(p.Log(), substr) {
				return nil
			}
			return fmt.Errorf("netlab: %s exited (%v) before logging %q", p.name, p.Err(), substr)
		case <-tick.C:
		}
	}
}
