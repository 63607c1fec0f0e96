// Command lab brings Herald up end to end on one machine (make lab) and tears it
// down (make lab-down).
//
//	lab up     check the machine, install and build what is missing, start the lab in
//	           the background, print its report
//	lab down   stop the lab and remove everything it made; safe to run twice
//	lab pods   (make lab-pods) the same checks and builds, then, in the foreground,
//	           Herald as real pods (e2e/pods): deploy/default applied unchanged on
//	           -nodes nodes (default 1) each running containerd and a kubelet, a demo
//	           Service the client reaches, a report; SIGINT or SIGTERM removes it all
//
// "up" first decides from what it finds (preflight) whether the lab can run: root, no
// route of the machine overlapping the lab's ranges, no lab running, the commands it
// needs or apt-get to install them. A problem stops it before it changes anything.
// Then it installs the missing Debian packages (.ci/install-deps) while it builds the
// missing control-plane binaries (e2e/controlplane/build/build.sh), with progress.
//
// The lab is a real etcd and kube-apiserver on the machine's loopback, and network
// namespaces built by netlab: an FRR router, a client, and three nodes, each running
// herald-speaker and the real kube-proxy, with pods behind node1 and node2 (no kubelet
// runs: the lab writes the Node objects and EndpointSlices). herald-controller runs in
// the control-plane host. Both run as deploy/default says (productlab.Options.Manifests). The lab applies examples/ and reports, for each Service, its
// address, who announces it and how, and which pod a TCP connection from the client
// reached.
//
// "up" starts a background process ("lab serve") that builds and keeps the lab: it
// holds the apiserver forwarder into the lab, so it must stay running. Its pid, logs,
// the control plane's data and kubeconfig and the report live in StateDir. "down"
// sends it SIGTERM (it then stops every process and deletes the namespaces), and
// removes whatever is left: processes by pid, namespaces by the lab's prefix, the
// state directory.
//
// Root is required: the lab creates network namespaces.
package main

import (
	"fmt"
	"os"
)

// StateDir holds the running lab's pid file, prefix, logs, control-plane data and
// report.
const StateDir = "/run/herald-lab"

func main() {
	if len(os.Args) < 2 || (len(os.Args) != 2 && os.Args[1] != "pods") {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "pods":
		err = podsLab(os.Args[2:])
	case "up":
		err = up()
	case "down":
		err = down()
	case "serve":
		err = serve()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lab up|down|pods [-nodes N]   (as root: sudo make lab, sudo make lab-down, sudo make lab-pods)")
	os.Exit(2)
}

// requireRoot fails with a clear message unless the process runs as root.
func requireRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: the lab creates network namespaces, links and processes in them; run it with sudo (sudo make lab, sudo make lab-down)", what)
	}
	return nil
}
