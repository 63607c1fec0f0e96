package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// requiredCommands are the programs the lab runs, each with the Debian package that
// provides it (.ci/install-deps installs them all).
var requiredCommands = map[string]string{
	"ip":               "iproute2",
	"sysctl":           "procps",
	"arping":           "arping",
	"ndisc6":           "ndisc6",
	"ping":             "iputils-ping",
	"iptables":         "iptables",
	"ip6tables":        "iptables",
	"iptables-restore": "iptables",
	"conntrack":        "conntrack",
	"tcpdump":          "tcpdump",
	"vtysh":            "frr",
	netlab.BGPDPath:    "frr",
	netlab.BFDDPath:    "frr",
	netlab.ZebraPath:   "frr",
	netlab.BirdPath:    "bird2",
	netlab.BirdcPath:   "bird2",
	"flock":            "util-linux",
	"setpriv":          "util-linux",
	"unshare":          "util-linux",
}

// machine is what preflight decides from, as inspectMachine finds it.
type machine struct {
	// Root says whether the lab runs as root.
	Root bool
	// Apt says whether apt-get and dpkg-query are here to install missing packages.
	Apt bool
	// MissingCommands are the keys of requiredCommands not found.
	MissingCommands []string
	// OverlappingRoutes are the machine's routes (as "dst dev") that overlap the lab's
	// ranges; RoutesErr is why they could not be listed.
	OverlappingRoutes []string
	RoutesErr         error
	// RunningLab is the pid of a lab that runs already, 0 when none does.
	RunningLab int
	// BinariesBuilt says whether etcd, kube-apiserver, kube-proxy and kubectl are in the
	// cache.
	BinariesBuilt bool
}

// plan is what preflight decided: the problems that stop the lab before it changes
// anything, or the packages to install and whether to build the control-plane binaries.
type plan struct {
	// Problems each say what is wrong and how to fix it. Any problem stops the lab.
	Problems []string
	// Packages are the Debian packages to install (sorted, each once).
	Packages []string
	// BuildBinaries says whether the control-plane binaries must be built.
	BuildBinaries bool
}

// preflight decides, from m alone, whether the lab can start and what it must install
// and build first. It is called before anything is installed, built or created, so a
// problem leaves the machine as it was.
func preflight(m machine) plan {
	var p plan
	if !m.Root {
		p.Problems = append(p.Problems, "not root: the lab creates network namespaces, links and processes in them, "+
			"and installs Debian packages; run it with sudo (sudo make lab)")
	}
	switch {
	case m.RoutesErr != nil:
		p.Problems = append(p.Problems, fmt.Sprintf("cannot list the machine's routes (%v): is iproute2 installed?", m.RoutesErr))
	case len(m.OverlappingRoutes) > 0:
		p.Problems = append(p.Problems, fmt.Sprintf("the machine's routes %s overlap the lab's ranges %v: "+
			"the lab's addresses would clash with them; remove those routes or run the lab on another machine",
			strings.Join(m.OverlappingRoutes, ", "), rangesText()))
	}
	if m.RunningLab != 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("a lab is already running (pid %d, state in %s); "+
			"use it, or run sudo make lab-down first", m.RunningLab, StateDir))
	}
	if len(m.MissingCommands) > 0 {
		var cmds []string
		for _, c := range m.MissingCommands {
			pkg := requiredCommands[c]
			cmds = append(cmds, c+" ("+pkg+")")
			if !slices.Contains(p.Packages, pkg) {
				p.Packages = append(p.Packages, pkg)
			}
		}
		slices.Sort(p.Packages)
		slices.Sort(cmds)
		if !m.Apt {
			p.Problems = append(p.Problems, fmt.Sprintf("commands not found: %s, and no apt-get to install them: "+
				"install the packages %s with your distribution's package manager",
				strings.Join(cmds, ", "), strings.Join(p.Packages, " ")))
		}
	}
	p.BuildBinaries = !m.BinariesBuilt
	if len(p.Problems) > 0 {
		p.Packages, p.BuildBinaries = nil, false
	}
	return p
}

func rangesText() string {
	var s []string
	for _, r := range netlab.DocumentationRanges {
		s = append(s, r.String())
	}
	return strings.Join(s, ", ")
}

// inspectMachine gathers what preflight decides from. It only reads.
func inspectMachine() machine {
	m := machine{Root: os.Geteuid() == 0, MissingCommands: missingCommands()}
	_, errApt := exec.LookPath("apt-get")
	_, errDpkg := exec.LookPath("dpkg-query")
	m.Apt = errApt == nil && errDpkg == nil
	m.OverlappingRoutes, m.RoutesErr = netlab.OverlappingRoutes()
	if pid, ok := runningPid(); ok {
		m.RunningLab = pid
	}
	_, err := controlplane.FindBinaries("")
	m.BinariesBuilt = err == nil
	return m
}

// missingCommands returns the keys of requiredCommands that are not found, sorted.
func missingCommands() []string {
	names := slices.Sorted(maps.Keys(requiredCommands))
	return netlab.MissingCommands(names...)
}
