// Package metallb builds a real MetalLB (its controller and speaker, from the
// Go module go.universe.tf/metallb) and knows how the network labs run it
// (run.go: its CRDs, its speakers' Pod objects, their command lines): the
// migration test in e2e/plugin starts it, lets it announce, then hands its
// Services over to Herald; measure-failover -speaker metallb measures its
// speaker beside Herald's.
//
// The module that pins MetalLB is build/ (its own go.mod and go.sum, outside
// the e2e module's dependency graph). Build compiles the two binaries once
// per MetalLB version into ${HERALD_CACHE:-$HOME/.cache/herald}/metallb, so
// that only the first run on a machine pays for the build (one to four
// minutes); the MetalLB CRDs come from the same module, as MetalLB ships them.
package metallb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/herald-dev/herald/e2e/netlab"
)

const (
	// Version is the MetalLB release build/go.mod pins. v0.15.3 is the newest
	// that builds from the Go module proxy: v0.16's frr-k8s dependency is not
	// served there.
	Version = "v0.15.3"
	// Module is MetalLB's Go module.
	Module = "go.universe.tf/metallb"
	// ControllerPackage and SpeakerPackage are MetalLB's two daemons.
	ControllerPackage = Module + "/controller"
	SpeakerPackage    = Module + "/speaker"
)

// Binaries are the built daemons and the directory of MetalLB's CRDs
// (config/crd/bases of the module).
type Binaries struct {
	Controller, Speaker string
	CRDDir              string
}

var (
	buildMu sync.Mutex
	built   *Binaries
)

// Build returns MetalLB's binaries, building them on first use, and fails t
// when they cannot be built (without network access to the module proxy on a
// machine whose module cache lacks MetalLB, say): a test that needs MetalLB
// never skips.
func Build(t netlab.T) Binaries {
	t.Helper()
	b, err := build()
	if err != nil {
		t.Fatalf("metallb: %v", err)
	}
	return b
}

func build() (Binaries, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if built != nil {
		return *built, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return Binaries{}, fmt.Errorf("the go command is not in PATH: %w", err)
	}
	mod, err := buildModuleDir()
	if err != nil {
		return Binaries{}, err
	}
	// The key is the version and the module's go.sum: a changed pin rebuilds.
	sum, err := os.ReadFile(filepath.Join(mod, "go.sum"))
	if err != nil {
		return Binaries{}, err
	}
	h := sha256.Sum256(sum)
	dir := filepath.Join(netlab.CacheDir(), "metallb", Version+"-"+hex.EncodeToString(h[:4]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	b := Binaries{Controller: filepath.Join(dir, "controller"), Speaker: filepath.Join(dir, "speaker")}
	for _, p := range []struct{ pkg, out string }{{ControllerPackage, b.Controller}, {SpeakerPackage, b.Speaker}} {
		if _, err := os.Stat(p.out); err == nil {
			continue
		}
		tmp := fmt.Sprintf("%s.%d.tmp", p.out, os.Getpid())
		cmd := exec.Command(goTool, "build", "-mod=readonly", "-o", tmp, p.pkg)
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			return Binaries{}, fmt.Errorf("go build %s (in %s): %w\n%s", p.pkg, mod, err, out)
		}
		if err := os.Rename(tmp, p.out); err != nil {
			return Binaries{}, err
		}
	}
	// go mod download names the module's directory in the module cache (and
	// fetches it when the cache was cleaned since the binaries were built).
	cmd := exec.Command(goTool, "mod", "download", "-json", Module)
	cmd.Dir = mod
	out, err := cmd.Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("go mod download %s: %w\n%s", Module, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return Binaries{}, fmt.Errorf("go mod download %s: no directory (%v, %s): %s", Module, err, info.Error, out)
	}
	b.CRDDir = filepath.Join(info.Dir, "config", "crd", "bases")
	built = &b
	return b, nil
}

// buildModuleDir returns build/, found from this source file.
func buildModuleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot find the build module: no caller information")
	}
	dir := filepath.Join(filepath.Dir(file), "build")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the build module: %w", err)
	}
	return dir, nil
}
