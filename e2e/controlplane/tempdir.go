package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	tempDirPrefix = "herald-controlplane-"
	ownerFile     = "owner.pid"
)

// makeTempDir makes a fresh directory for one control plane, recording the pid of its
// owner, after removing the directories of owners that no longer run: a test binary killed
// by its timeout cannot remove its own.
func makeTempDir() (string, error) {
	removeStaleTempDirs()
	dir, err := os.MkdirTemp("", tempDirPrefix)
	if err != nil {
		return "", fmt.Errorf("controlplane: make temporary directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("controlplane: write owner file: %w", err)
	}
	return dir, nil
}

// removeStaleTempDirs removes the temporary directories whose owner process has exited.
// Their etcd and kube-apiserver died with the owner (Pdeathsig). Errors are ignored: this
// is housekeeping, and a directory it cannot judge is left alone.
func removeStaleTempDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range matches {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}
