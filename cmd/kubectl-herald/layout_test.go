package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestPureCore holds the plugin's architecture: the packages that decide
// (migrate, explain, poolplan) import no client, file, socket or clock, so
// that all their I/O stays in internal/cli. migrate, which needs nothing
// of the product's daemons, does not even depend on client-go.
func TestPureCore(t *testing.T) {
	const base = "github.com/herald-dev/herald/cmd/kubectl-herald/internal/"
	forbiddenImports := []string{"k8s.io/client-go", "os", "os/exec", "net", "net/http", "time", "log", "log/slog"}
	for _, pkg := range []string{"migrate", "explain", "poolplan"} {
		out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, base+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, imp := range strings.Fields(string(out)) {
			if slices.Contains(forbiddenImports, imp) || strings.HasPrefix(imp, "k8s.io/client-go/") {
				// time is allowed for durations only in migrate (BFD, hold times).
				if imp == "time" && pkg == "migrate" {
					continue
				}
				t.Errorf("%s imports %s: decisions take their inputs as arguments; I/O belongs in internal/cli", pkg, imp)
			}
		}
	}
	out, err := exec.Command("go", "list", "-deps", base+"migrate").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "k8s.io/client-go") {
		t.Error("migrate depends on client-go: it should need only the API types")
	}
}
