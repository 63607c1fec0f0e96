package netlab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// StateRoot holds one owner file per lab (<prefix>.owner: the owning process's pid and
// start time) and one short-pathed state directory per lab (<prefix>/: FRR's sockets,
// configurations and logs; unix socket paths must stay under 108 bytes).
const StateRoot = "/run/herald-netlab"

// prefixPattern matches the names of a lab's namespaces: "hl", five characters of
// [a-z0-9], a dash, the host name.
var prefixPattern = regexp.MustCompile(`^(hl[a-z0-9]{5})-`)

// hostNamePattern is what a host or bridge name may look like. Names stay short because
// the bridge-side end of a host's link is named <host>-<n> and Linux interface names
// have at most 15 bytes.
var hostNamePattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,10}$`)

// Options configures New.
type Options struct {
	// Dir receives the process logs; default t.TempDir().
	Dir string
	// Keep leaves the lab running after t's cleanup (make lab): nothing is torn down,
	// and the owner file marks the lab as kept so that no later run cleans it as a
	// leftover. Destroy removes it.
	Keep bool
}

// Lab is a set of network namespaces (hosts), bridges joining them, and processes
// running in them, all named with one per-run prefix and all removed, by name or id,
// in t's cleanup, whether or not the test passed.
type Lab struct {
	t        T
	prefix   string
	dir      string
	stateDir string
	keep     bool
	switchNS *Host // holds the bridges, so no link touches the machine's own namespace

	mu        sync.Mutex
	hosts     []*Host
	bridges   []*Bridge
	procs     []*Process
	closers   []func() // run before processes are stopped, last first
	logNames  map[string]int
	closed    bool
	macSerial int
}

// New builds an empty lab: it checks prerequisites (root, the ip command) and the
// address plan, removes leftovers of crashed runs, and creates the namespace that holds
// the bridges. Everything is torn down in t's cleanup.
func New(t T, opts Options) *Lab {
	t.Helper()
	RequireRoot(t)
	RequireCommands(t, "ip", "sysctl")
	if err := CheckAddressPlan(); err != nil {
		t.Fatalf("%v", err)
	}
	if err := CleanLeftovers(); err != nil {
		t.Fatalf("%v", err)
	}
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	l := &Lab{t: t, dir: dir, keep: opts.Keep, logNames: map[string]int{}}
	var err error
	if l.prefix, err = claimPrefix(opts.Keep); err != nil {
		t.Fatalf("%v", err)
	}
	l.stateDir = filepath.Join(StateRoot, l.prefix)
	if err := os.MkdirAll(l.stateDir, 0o755); err != nil {
		t.Fatalf("netlab: create state directory: %v", err)
	}
	if !opts.Keep {
		t.Cleanup(l.Close)
	}
	sw, err := l.newHost("sw")
	if err != nil {
		t.Fatalf("%v", err)
	}
	// The switch namespace only bridges: keep bridged frames out of its netfilter hooks
	// (the sysctls exist only when br_netfilter is loaded, hence -e).
	_, _ = sw.Run(context.Background(), "sysctl", "-e", "-q", "-w",
		"net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0",
		"net.bridge.bridge-nf-call-arptables=0")
	l.switchNS = sw
	return l
}

// Prefix returns the lab's per-run prefix; every namespace is named <prefix>-<host>.
func (l *Lab) Prefix() string { return l.prefix }

// Dir returns the directory holding the process logs.
func (l *Lab) Dir() string { return l.dir }

// StateDir returns the lab's short-pathed state directory under StateRoot.
func (l *Lab) StateDir() string { return l.stateDir }

// T returns the T the lab was made with.
func (l *Lab) T() T { return l.t }

// Hosts returns the lab's hosts (not the switch namespace) in creation order.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hosts)
}

// Host returns the host named name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// AddHost creates a host: a network namespace <prefix>-<name> with loopback up, IPv6
// duplicate address detection off and forwarding on (hosts route for their pods).
func (l *Lab) AddHost(name string) *Host {
	l.t.Helper()
	if !hostNamePattern.MatchString(name) || name == "sw" {
		l.t.Fatalf("netlab: host name %q: want 1-11 characters of [a-z0-9] starting with a letter, not \"sw\"", name)
	}
	if l.Host(name) != nil {
		l.t.Fatalf("netlab: host %q exists already", name)
	}
	h, err := l.newHost(name)
	if err != nil {
		l.t.Fatalf("%v", err)
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	return h
}

func (l *Lab) newHost(name string) (*Host, error) {
	ns := l.prefix + "-" + name
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("netlab: create namespace %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
	}
	h := &Host{lab: l, name: name, ns: ns}
	ctx := context.Background()
	if _, err := h.Run(ctx, "ip", "link", "set", "dev", "lo", "up"); err != nil {
		return nil, err
	}
	if _, err := h.Run(ctx, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.arp_ignore=0"); err != nil {
		return nil, err
	}
	return h, nil
}

// nextMAC returns a locally administered MAC address unique within the lab.
func (l *Lab) nextMAC() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.macSerial++
	return fmt.Sprintf("02:68:6c:00:%02x:%02x", byte(l.macSerial>>8), byte(l.macSerial))
}

// onClose registers f to run when the lab closes, before processes are stopped.
func (l *Lab) onClose(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, f)
}

// logPath returns a fresh log file path for a process named name on host.
func (l *Lab) logPath(host, name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := host + "-" + name
	l.logNames[key]++
	if n := l.logNames[key]; n > 1 {
		key = fmt.Sprintf("%s.%d", key, n)
	}
	return filepath.Join(l.dir, key+".log")
}

// Close tears the lab down: it stops every process it started (whole process groups),
// kills anything else still running in its namespaces, deletes the namespaces (which
// deletes their links) and the state directory. When t failed, it first logs the tail of
// every process log. New registers Close with t.Cleanup; calling it again does nothing.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	closers, procs := l.closers, l.procs
	l.mu.Unlock()

	if l.t.Failed() {
		l.dumpLogs()
	}
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(3 * time.Second)
	}
	for _, h := range append(l.Hosts(), l.switchNS) {
		if h != nil {
			h.closeNSFile()
		}
	}
	if err := destroyPrefix(l.prefix); err != nil {
		l.t.Logf("%v", err)
	}
}

// dumpLogs logs the last lines of every process log and FRR log of the lab.
func (l *Lab) dumpLogs() {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.mu.Unlock()
	for _, p := range procs {
		l.t.Logf("netlab: last lines of %s:\n%s", p.logPath, tailFile(p.logPath, 40))
	}
	logs, _ := filepath.Glob(filepath.Join(l.stateDir, "*", "*.log"))
	for _, f := range logs {
		l.t.Logf("netlab: last lines of %s:\n%s", f, tailFile(f, 40))
	}
}

// claimPrefix picks an unused prefix and writes its owner file, before any namespace
// exists, so that a namespace with a prefix and no owner file is always a leftover.
func claimPrefix(keep bool) (string, error) {
	if err := os.MkdirAll(StateRoot, 0o755); err != nil {
		return "", fmt.Errorf("netlab: create %s: %w", StateRoot, err)
	}
	owner := currentOwner()
	if keep {
		owner = ownerKept
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for range 100 {
		b := make([]byte, 5)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("netlab: random prefix: %w", err)
		}
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		prefix := "hl" + string(b)
		f, err := os.OpenFile(ownerFile(prefix), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("netlab: write owner file: %w", err)
		}
		_, werr := f.WriteString(owner + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", fmt.Errorf("netlab: write owner file: %w", werr)
		}
		return prefix, nil
	}
	return "", errors.New("netlab: no free prefix after 100 tries")
}

func ownerFile(prefix string) string { return filepath.Join(StateRoot, prefix+".owner") }

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
