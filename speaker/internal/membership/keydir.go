package membership

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadKeyDir reads the gossip key Secret as the kubelet mounts it: one
// file per data entry. The kubelet swaps a new version in at once (the
// entries link into the directory "..data" links to), so the files are
// read from where "..data" points at the time, never half of one version
// and half of the next. A directory without "..data" is read as it is.
// Files whose names start with "." are skipped.
func ReadKeyDir(dir string) (map[string][]byte, error) {
	base := dir
	if target, err := os.Readlink(filepath.Join(dir, "..data")); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		base = target
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("membership: read gossip key directory: %w", err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(base, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("membership: read gossip key directory: %w", err)
		}
		out[e.Name()] = b
	}
	return out, nil
}
