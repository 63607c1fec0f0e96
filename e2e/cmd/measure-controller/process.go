package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// controllerProcess is a running herald-controller.
type controllerProcess struct {
	cmd         *exec.Cmd
	started     time.Time
	metricsAddr string
	logPath     string
	done        chan struct{}
	err         error
}

// startControllerProcess runs bin with args, its output into logPath, in
// its own process group, killed if this process dies.
func startControllerProcess(bin string, args []string, logPath, metricsAddr string) (*controllerProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &controllerProcess{cmd: cmd, metricsAddr: metricsAddr, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls /readyz every 5 ms until it answers 200, and returns the
// time since the process started.
func (p *controllerProcess) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return 0, fmt.Errorf("herald-controller exited: %v", p.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + p.metricsAddr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("herald-controller not ready within %s", timeout)
}

// metric returns the sum of the samples of a metric whose labels contain
// every one of labels (for example `kind="Service"`).
func (p *controllerProcess) metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		matches := true
		for _, l := range labels {
			matches = matches && strings.Contains(rest, l)
		}
		if !matches {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s%v not found", name, labels)
	}
	return sum, nil
}

// stop sends SIGTERM and waits for the process to exit.
func (p *controllerProcess) stop(timeout time.Duration) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("herald-controller did not exit within %s of SIGTERM", timeout)
	}
}

// kill kills the process group and waits.
func (p *controllerProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// usage is a process's resource use.
type usage struct {
	CPU        time.Duration // user+system
	RSS, HWM   uint64        // VmRSS and VmHWM, bytes
	GoHeapUsed float64       // go_memstats_heap_inuse_bytes, when known
}

// procUsage reads pid's CPU time and memory from /proc.
func procUsage(pid int) (usage, error) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return usage{}, err
	}
	st, err := proc.Stat()
	if err != nil {
		return usage{}, err
	}
	status, err := proc.NewStatus()
	if err != nil {
		return usage{}, err
	}
	return usage{CPU: time.Duration(st.CPUTime() * float64(time.Second)), RSS: status.VmRSS, HWM: status.VmHWM}, nil
}

// usage reads the controller's resource use.
func (p *controllerProcess) usage() (usage, error) {
	u, err := procUsage(p.cmd.Process.Pid)
	if err != nil {
		return u, err
	}
	if h, err := p.metric("go_memstats_heap_inuse_bytes"); err == nil {
		u.GoHeapUsed = h
	}
	return u, nil
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
