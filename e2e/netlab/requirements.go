package netlab

import (
	"os"
	"os/exec"
	"strings"
)

// Paths of BIRD 2, the second router the lab runs (Debian package bird2).
const (
	BirdPath  = "/usr/sbin/bird"
	BirdcPath = "/usr/sbin/birdc"
)

// Paths of the FRR daemons the router runs (Debian package frr).
const (
	BGPDPath  = "/usr/lib/frr/bgpd"
	BFDDPath  = "/usr/lib/frr/bfdd"
	ZebraPath = "/usr/lib/frr/zebra"
)

// Missing reports a missing prerequisite: under CI=true it fails t, otherwise it skips
// t, with msg either way.
func Missing(t T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("netlab: missing prerequisite (CI=true, so this fails instead of skipping): %s", msg)
	}
	skipper, ok := t.(interface{ Skip(args ...any) })
	if !ok {
		t.Fatalf("netlab: missing prerequisite: %s", msg)
	}
	skipper.Skip("netlab: missing prerequisite: " + msg)
}

// RequireRoot calls Missing unless the test runs as root (network namespaces need it).
func RequireRoot(t T) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "the network lab needs root (run the tests as root, e.g. sudo -E go test ./...)")
	}
}

// RequireCommands calls Missing unless every named command is found in PATH or, for an
// absolute path, is an executable file. The message names the Debian packages to
// install (.ci/install-deps installs them).
func RequireCommands(t T, names ...string) {
	t.Helper()
	if missing := MissingCommands(names...); len(missing) > 0 {
		Missing(t, "commands not found: "+strings.Join(missing, ", ")+
			" (Debian packages iproute2, procps, frr, bird2, arping, ndisc6, iputils-ping, tcpdump, iptables, conntrack: run bash .ci/install-deps)")
	}
}

// MissingCommands returns those of names not found in PATH or, for an absolute path,
// not an executable file, in the order given.
func MissingCommands(names ...string) []string {
	var missing []string
	for _, n := range names {
		if strings.HasPrefix(n, "/") {
			if st, err := os.Stat(n); err != nil || st.Mode()&0o111 == 0 {
				missing = append(missing, n)
			}
			continue
		}
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing
}
