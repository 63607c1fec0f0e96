package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KubernetesVersion is the version of k8s.io/kubernetes that build/kube/go.mod pins and
// that the binaries in BinDir were built from. TestVersionsMatchBuildModules keeps the two
// in step.
const KubernetesVersion = "v1.37.1"

// EtcdVersion is the version of go.etcd.io/etcd/server/v3 that build/etcd/go.mod pins.
const EtcdVersion = "v3.6.7"

// ContainerdVersion and CNIPluginsVersion are the versions of
// github.com/containerd/containerd/v2 and github.com/containernetworking/plugins that
// build/containerd/go.mod pins: the pods lab's runtime (e2e/pods), in RuntimeBinDir.
const (
	ContainerdVersion = "v2.4.2"
	CNIPluginsVersion = "v1.9.1"
)

// BuildCommand is what a developer runs to build the binaries, quoted in error messages.
const BuildCommand = "make binaries"

// ErrBinariesMissing reports that a binary the control plane needs has not been built.
var ErrBinariesMissing = errors.New("controlplane: binaries missing")

// Binaries are the paths of the programs the control plane and its tests run.
type Binaries struct {
	// Dir is the directory holding all of them.
	Dir string
	// Etcd, KubeAPIServer, KubeProxy and Kubectl are the paths of the binaries.
	Etcd, KubeAPIServer, KubeProxy, Kubectl string
}

// RuntimeBinDir returns where build/build.sh puts containerd, its runc shim, ctr and the
// CNI plugins: ${HERALD_CACHE:-$HOME/.cache/herald}/bin/containerd-<v>-cni-<v>.
func RuntimeBinDir() string {
	return filepath.Join(filepath.Dir(cacheBinDir()), "containerd-"+ContainerdVersion+"-cni-"+CNIPluginsVersion)
}

// cacheBinDir is BinDir without $HERALD_BIN_DIR.
func cacheBinDir() string {
	cache := os.Getenv("HERALD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache", "herald")
	}
	return filepath.Join(cache, "bin", KubernetesVersion+"-"+EtcdVersion)
}

// BinDir returns where the binaries are looked for: $HERALD_BIN_DIR when set, otherwise
// ${HERALD_CACHE:-$HOME/.cache/herald}/bin/<KubernetesVersion>-<EtcdVersion>, the directory
// build/build.sh fills.
func BinDir() string {
	if dir := os.Getenv("HERALD_BIN_DIR"); dir != "" {
		return dir
	}
	return cacheBinDir()
}

// FindBinaries returns the binaries in dir (BinDir() when dir is empty). It returns an
// error wrapping ErrBinariesMissing, naming every missing binary and the command that
// builds them, unless all four are executable files.
func FindBinaries(dir string) (Binaries, error) {
	if dir == "" {
		dir = BinDir()
	}
	b := Binaries{
		Dir:           dir,
		Etcd:          filepath.Join(dir, "etcd"),
		KubeAPIServer: filepath.Join(dir, "kube-apiserver"),
		KubeProxy:     filepath.Join(dir, "kube-proxy"),
		Kubectl:       filepath.Join(dir, "kubectl"),
	}
	var missing []string
	for _, path := range []string{b.Etcd, b.KubeAPIServer, b.KubeProxy, b.Kubectl} {
		info, err := os.Stat(path)
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			missing = append(missing, filepath.Base(path))
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%w: %s not found in %s: run `%s` in the repository root (or set HERALD_BIN_DIR)",
			ErrBinariesMissing, strings.Join(missing, ", "), dir, BuildCommand)
	}
	return b, nil
}
