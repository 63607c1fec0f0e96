package controlplane

import (
	"context"
	"errors"
	"os"
	"testing"
)

// Owner is what StartOwned needs of the test or program that owns a control plane:
// testing.TB and netlab.T both have it.
type Owner interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// StartOwned starts a control plane with opts and stops it in t's cleanup. A failure to
// start is fatal to t; a failure to stop is logged.
func StartOwned(ctx context.Context, t Owner, opts Options) *ControlPlane {
	t.Helper()
	cp, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Logf("stop the control plane: %v", err)
		}
	})
	return cp
}

// StartForTest starts a control plane for t and stops it, removing its directory, when t
// and its subtests end, whether they passed, failed or panicked. When the binaries are
// missing it skips t with the command that builds them, or fails t when the environment
// variable CI is "true". Any other start-up failure fails t.
func StartForTest(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	RequireBinaries(t, opts.BinDir)
	cp, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	return cp
}

// RequireBinaries returns the binaries in dir (BinDir() when empty). When one is missing
// it fails t under CI=true and skips t otherwise, with a message naming what is missing
// and the command that builds it.
func RequireBinaries(t testing.TB, dir string) Binaries {
	t.Helper()
	bins, err := FindBinaries(dir)
	if errors.Is(err, ErrBinariesMissing) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bins
}
