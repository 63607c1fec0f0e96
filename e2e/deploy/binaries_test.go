package deploy

import (
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// helpFlag matches a flag in pflag's usage: "  -x, --name type   text" or "      --name".
var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)`)

// TestBinariesMatchManifests builds each command the way make images does
// (CGO_ENABLED=0, -trimpath), checks that the binary is statically linked, so that it runs
// in the image, which has no libc, and checks that it accepts every flag that any install
// in deploy/ passes to it.
func TestBinariesMatchManifests(t *testing.T) {
	bins := controlplane.RequireBinaries(t, "")
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	for _, tt := range []struct{ command, kind, workload string }{
		{"herald-controller", "Deployment", controllerWorkload},
		{"herald-speaker", "DaemonSet", speakerWorkload},
		{"herald-cloud-controller-manager", "Deployment", ccmWorkload},
	} {
		t.Run(tt.command, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(root, "cmd", tt.command)); err != nil {
				msg := fmt.Sprintf("cmd/%s does not exist, but deploy/ runs it: %v", tt.command, err)
				if os.Getenv("CI") == "true" {
					t.Fatal(msg)
				}
				t.Skip(msg)
			}
			bin := filepath.Join(t.TempDir(), tt.command)
			build := exec.CommandContext(t.Context(), goTool, "build", "-trimpath", "-o", bin, "./cmd/"+tt.command)
			build.Dir = root
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("CGO_ENABLED=0 go build ./cmd/%s: %v\n%s", tt.command, err, out)
			}
			checkStatic(t, bin)

			help, err := exec.CommandContext(t.Context(), bin, "--help").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --help: %v\n%s", tt.command, err, help)
			}
			accepted := map[string]bool{}
			for _, m := range helpFlag.FindAllStringSubmatch(string(help), -1) {
				accepted[m[1]] = true
			}
			if len(accepted) == 0 {
				t.Fatalf("%s --help lists no flags:\n%s", tt.command, help)
			}
			for _, install := range installs {
				objs := render(t, bins.Kubectl, filepath.Join(deployDir(t), install))
				if tt.command == "herald-cloud-controller-manager" && !hasObject(objs, tt.kind, tt.workload) {
					continue // only some installs run it
				}
				for _, name := range flagNames(args(t, find(t, objs, tt.kind, tt.workload))) {
					if !accepted[name] {
						t.Errorf("deploy/%s passes --%s to %s, which has no such flag; its flags: %v",
							install, name, tt.command, sortedKeys(accepted))
					}
				}
			}
		})
	}
}

// checkStatic fails t unless the ELF file at path asks for no program interpreter and no
// shared library.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked: it has a program interpreter", filepath.Base(path))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", filepath.Base(path), libs)
	}
}

func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
