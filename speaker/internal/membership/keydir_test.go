package membership

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadKeyDir reads a directory laid out as the kubelet mounts a
// Secret (entries linking through "..data" into a timestamped directory),
// before and after the kubelet swaps a new version in.
func TestReadKeyDir(t *testing.T) {
	dir := t.TempDir()
	version := func(name string, data map[string]string) {
		t.Helper()
		v := filepath.Join(dir, name)
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, d := range data {
			if err := os.WriteFile(filepath.Join(v, k), []byte(d), 0o400); err != nil {
				t.Fatal(err)
			}
			_ = os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k))
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[string]string {
		t.Helper()
		m, err := ReadKeyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}
	version("..2025_06_01_00_00_00.1", map[string]string{"key": "A"})
	if diff := cmp.Diff(map[string]string{"key": "A"}, read()); diff != "" {
		t.Errorf("first version (-want +got):\n%s", diff)
	}
	version("..2025_06_01_00_01_00.2", map[string]string{"key": "A", "key-2": "B", "primary": "key"})
	if diff := cmp.Diff(map[string]string{"key": "A", "key-2": "B", "primary": "key"}, read()); diff != "" {
		t.Errorf("second version (-want +got):\n%s", diff)
	}
	// The third version drops "key": its link in dir dangles until the
	// kubelet cleans up, and is not read.
	version("..2025_06_01_00_02_00.3", map[string]string{"key-2": "B", "primary": "key-2"})
	if diff := cmp.Diff(map[string]string{"key-2": "B", "primary": "key-2"}, read()); diff != "" {
		t.Errorf("third version (-want +got):\n%s", diff)
	}

	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "key"), []byte("A"), 0o400); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadKeyDir(plain); err != nil || string(m["key"]) != "A" || len(m) != 1 {
		t.Errorf("plain directory: %q, %v", m, err)
	}
	if _, err := ReadKeyDir(filepath.Join(plain, "missing")); err == nil {
		t.Error("missing directory: no error")
	}
}
