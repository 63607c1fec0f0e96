// Package ccmlab runs the herald-cloud-controller-manager binary as a process
// for the end-to-end tests: the upstream cloud-controller-manager command with
// Herald's provider, built as the other e2e tests build Herald's commands
// (netlab.BuildGo), against a real kube-apiserver.
package ccmlab

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
)

// Package is the command's main package.
const Package = "github.com/herald-dev/herald/cmd/herald-cloud-controller-manager"

// Names the manifests in deploy/cloud-controller-manager give the manager.
const (
	Namespace = "herald-system"
	LeaseName = "herald-cloud-controller-manager"
)

// stopTimeout bounds how long Stop waits for the process to exit.
const stopTimeout = 30 * time.Second

// Build builds the binary once per test binary run and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	return netlab.BuildGo(t, Package)
}

// Options configures Start.
type Options struct {
	// Binary is the manager's binary; default Build(t).
	Binary string
	// Kubeconfig is the manager's identity: its own client, the provider's
	// (the cloud-config names none), and the delegated authentication and
	// authorization of its HTTPS endpoint.
	Kubeconfig string
	// CloudConfig is the content of the cloud-config file (--cloud-config).
	CloudConfig string
	// Args are more flags. They come after the defaults, so they override
	// them, and before the flags that tie the process to this test (its
	// kubeconfig, cloud-config file and HTTPS address), which they cannot.
	Args []string
	// Name names the process in messages and its log file; default "ccm".
	Name string
}

// Manager is a running herald-cloud-controller-manager.
type Manager struct {
	Name string
	// Port is the HTTPS port on 127.0.0.1 (/healthz, /metrics).
	Port    int
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu  sync.Mutex
	err error
}

// DefaultArgs are the flags of deploy/cloud-controller-manager/deployment.yaml
// that do not depend on the pod, with leader election on its Lease.
var DefaultArgs = []string{
	"--cloud-provider=herald",
	"--controllers=service",
	"--leader-elect=true",
	"--leader-elect-resource-name=" + LeaseName,
	"--leader-elect-resource-namespace=" + Namespace,
}

// Start starts the manager; it does not wait for it to lead. t's cleanup
// kills it (and its process group) if it still runs, and logs the end of
// its log when t failed.
func Start(t testing.TB, opts Options) *Manager {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = Build(t)
	}
	if opts.Name == "" {
		opts.Name = "ccm"
	}
	dir := t.TempDir()
	cloudConfig := filepath.Join(dir, "cloud-config.yaml")
	if err := os.WriteFile(cloudConfig, []byte(opts.CloudConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Name: opts.Name, Port: freePort(t), logPath: filepath.Join(dir, opts.Name+".log"), done: make(chan struct{})}
	args := append(append([]string(nil), DefaultArgs...), opts.Args...)
	args = append(args,
		"--kubeconfig="+opts.Kubeconfig,
		"--authentication-kubeconfig="+opts.Kubeconfig,
		"--authorization-kubeconfig="+opts.Kubeconfig,
		"--cloud-config="+cloudConfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(m.Port),
		// Webhooks are off (no webhook is configured); keep their port free.
		"--webhook-secure-port=0",
	)
	logFile, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(opts.Binary, args...)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	// Its own process group, killed with the test binary if that dies.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("ccmlab: start %s: %v", opts.Binary, err)
	}
	go func() {
		err := m.cmd.Wait()
		logFile.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(m.done)
	}()
	t.Cleanup(func() {
		m.signal(syscall.SIGKILL)
		<-m.done
		if t.Failed() {
			t.Logf("ccmlab: end of the log of %s:\n%s", m.Name, m.LogTail(60))
		}
	})
	return m
}

// Done is closed when the process has exited.
func (m *Manager) Done() <-chan struct{} { return m.done }

// Err returns how the process ended (nil while it runs or after a clean exit).
func (m *Manager) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *Manager) signal(sig syscall.Signal) {
	select {
	case <-m.done:
	default:
		_ = syscall.Kill(-m.cmd.Process.Pid, sig)
	}
}

// Stop sends SIGTERM and waits for the process to exit, then SIGKILL.
func (m *Manager) Stop(t testing.TB) {
	t.Helper()
	m.signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(stopTimeout):
		t.Errorf("ccmlab: %s did not exit within %s of SIGTERM", m.Name, stopTimeout)
		m.Kill()
	}
}

// Kill kills the process without warning, as a crashed node would, and
// waits until it is gone.
func (m *Manager) Kill() {
	m.signal(syscall.SIGKILL)
	<-m.done
}

// Get fetches path from the manager's HTTPS endpoint (its certificate is
// self-signed, so it is not verified), with token as bearer when not empty.
func (m *Manager) Get(ctx context.Context, path, token string) (status int, body string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", m.Port, path), nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the manager's certificate is self-signed
	}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Log returns what the process has written so far.
func (m *Manager) Log() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// LogTail returns the last n lines of the log.
func (m *Manager) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(m.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
