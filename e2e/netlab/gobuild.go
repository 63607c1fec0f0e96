package netlab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Import paths of the lab's helper programs, for BuildGo.
const (
	// PodServerPackage answers every TCP connection with the pod's name and the
	// client's address (see ParsePodReply).
	PodServerPackage = "github.com/herald-dev/herald/e2e/netlab/cmd/podserver"
	// ARPClaimPackage claims IPv4 addresses with gratuitous ARP from a host, as a
	// rogue or compromised node does.
	ARPClaimPackage = "github.com/herald-dev/herald/e2e/netlab/cmd/arpclaim"
	// BGPPeerPackage is a small GoBGP v4 speaker for the lab's own BGP test.
	BGPPeerPackage = "github.com/herald-dev/herald/e2e/netlab/cmd/bgppeer"
)

var (
	buildMu    sync.Mutex
	builtPaths = map[string]string{}
)

// BuildGo builds the main package pkg (an import path the e2e module resolves, for
// example "github.com/herald-dev/herald/cmd/speaker") once per test binary run and
// returns the binary's path, in ${HERALD_CACHE:-$HOME/.cache/herald}/netlab/bin under a
// name made from pkg and the checkout's e2e directory. Go's
// build cache makes a rebuild of an unchanged package cheap. A build error fails t.
func BuildGo(t T, pkg string) string {
	t.Helper()
	p, err := buildGo(pkg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

func buildGo(pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builtPaths[pkg]; ok {
		return p, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("netlab: build %s: the go command is not in PATH: %w", pkg, err)
	}
	// The name depends on the checkout too: labs run from two checkouts at once (a
	// worktree and main, or CI beside a developer) must each run their own build.
	modDir := e2eModuleDir()
	sum := sha256.Sum256([]byte(pkg + "\x00" + modDir))
	dir := filepath.Join(CacheDir(), "netlab", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("netlab: build %s: %w", pkg, err)
	}
	out := filepath.Join(dir, path.Base(pkg)+"-"+hex.EncodeToString(sum[:4]))
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	cmd := exec.Command(goTool, "build", "-o", tmp, pkg)
	cmd.Dir = modDir
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("netlab: go build %s: %w\n%s", pkg, err, b)
	}
	// Rename is atomic: a test binary running in parallel keeps whichever file it
	// started.
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("netlab: build %s: %w", pkg, err)
	}
	builtPaths[pkg] = out
	return out, nil
}

// CacheDir returns ${HERALD_CACHE:-$HOME/.cache/herald}.
func CacheDir() string {
	if d := os.Getenv("HERALD_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "herald-cache")
	}
	return filepath.Join(home, ".cache", "herald")
}

// e2eModuleDir returns the e2e module's directory, found from this source file (the
// current directory when the source is not where it was built).
func e2eModuleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		dir := filepath.Dir(filepath.Dir(file))
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/herald-dev/herald/e2e\n") {
			return dir
		}
	}
	return ""
}
