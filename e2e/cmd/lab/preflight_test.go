package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPreflight(t *testing.T) {
	ready := machine{Root: true, Apt: true, BinariesBuilt: true}
	with := func(change func(*machine)) machine {
		m := ready
		change(&m)
		return m
	}
	tests := []struct {
		name string
		m    machine
		// problems are substrings, one per problem, in order.
		problems     []string
		wantPackages []string
		wantBuild    bool
	}{
		{name: "ready machine: nothing to do", m: ready},
		{name: "binaries missing: build them", m: with(func(m *machine) { m.BinariesBuilt = false }), wantBuild: true},
		{
			name: "commands missing with apt: install their packages once each",
			m: with(func(m *machine) {
				m.MissingCommands = []string{"tcpdump", "ip6tables", "iptables", "/usr/lib/frr/bgpd", "/usr/sbin/birdc", "/usr/sbin/bird"}
			}),
			wantPackages: []string{"bird2", "frr", "iptables", "tcpdump"},
		},
		{
			name:     "commands missing without apt: say which packages",
			m:        with(func(m *machine) { m.Apt = false; m.MissingCommands = []string{"ndisc6", "arping"} }),
			problems: []string{"commands not found: arping (arping), ndisc6 (ndisc6), and no apt-get to install them: install the packages arping ndisc6"},
		},
		{
			name:     "not root",
			m:        with(func(m *machine) { m.Root = false; m.BinariesBuilt = false }),
			problems: []string{"not root: the lab creates network namespaces"},
		},
		{
			name: "routes overlap the lab's ranges",
			m: with(func(m *machine) {
				m.OverlappingRoutes = []string{"198.51.100.0/25 dev eth1", "2001:db8:5::/48 dev eth2"}
			}),
			problems: []string{"the machine's routes 198.51.100.0/25 dev eth1, 2001:db8:5::/48 dev eth2 overlap the lab's ranges 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32"},
		},
		{
			name:     "routes cannot be listed",
			m:        with(func(m *machine) { m.RoutesErr = errors.New("exec: ip: not found") }),
			problems: []string{"cannot list the machine's routes (exec: ip: not found)"},
		},
		{
			name:     "a lab runs already",
			m:        with(func(m *machine) { m.RunningLab = 4242 }),
			problems: []string{"a lab is already running (pid 4242, state in /run/herald-lab); use it, or run sudo make lab-down first"},
		},
		{
			name: "every problem at once, and nothing installed or built",
			m: machine{Root: false, MissingCommands: []string{"arping"}, OverlappingRoutes: []string{"203.0.113.0/24 dev br0"},
				RunningLab: 7},
			problems: []string{"not root", "203.0.113.0/24 dev br0", "pid 7", "commands not found: arping (arping)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := preflight(tt.m)
			if len(got.Problems) != len(tt.problems) {
				t.Fatalf("problems: got %d, want %d:\n%s", len(got.Problems), len(tt.problems), strings.Join(got.Problems, "\n"))
			}
			for i, want := range tt.problems {
				if !strings.Contains(got.Problems[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got.Problems[i], want)
				}
			}
			if diff := cmp.Diff(tt.wantPackages, got.Packages); diff != "" {
				t.Errorf("packages (-want +got):\n%s", diff)
			}
			if got.BuildBinaries != tt.wantBuild {
				t.Errorf("build binaries = %v, want %v", got.BuildBinaries, tt.wantBuild)
			}
		})
	}
}

// TestRequiredCommandsHavePackages keeps every command the lab needs tied to a
// package that .ci/install-deps installs.
func TestRequiredCommandsHavePackages(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, ".ci", "install-deps"))
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	for cmd, pkg := range requiredCommands {
		if pkg == "util-linux" { // essential in Debian: always installed
			continue
		}
		if !strings.Contains(script, " "+pkg+" ") && !strings.Contains(script, "("+pkg+" ") && !strings.Contains(script, " "+pkg+")") {
			t.Errorf("%s comes from the Debian package %s, which .ci/install-deps does not install", cmd, pkg)
		}
	}
}
