// Package netlab builds network labs out of Linux network namespaces for Herald's
// integration tests, failover measurements and `make lab`: hosts joined by bridges, an
// FRR router, a client with ARP/NDP/TCP probes, nodes running the real kube-proxy, and
// pods behind the nodes. It needs root, iproute2, procps, and for the parts that use
// them FRR, BIRD 2, arping, ndisc6, tcpdump and iptables (.ci/install-deps installs them).
// When one is missing a test skips, or fails under CI=true, saying what to install.
//
// # Owns, and must not touch
//
// A lab owns the namespaces named <prefix>-<host> (prefix "hl" and five random
// characters, one per lab), the links inside them, the processes it starts, its owner
// file and state directory under StateRoot, and its log directory. It never adds a link,
// address or route to the machine's own network namespace: the bridges live in the
// lab's switch namespace (<prefix>-sw), and the apiserver, which the control-plane
// harness runs on the machine's loopback, is reached from the lab through a TCP
// forwarder whose listening sockets sit in the control-plane host. New refuses to build
// a lab when a route of the machine overlaps the documentation ranges it uses
// (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32; see the address plan variables).
//
// # Lifetime
//
// Everything is removed by name or id in t's cleanup, whether the test passed or not:
// processes first (SIGTERM to each process group, then SIGKILL), then anything else
// still running in the lab's namespaces, then the namespaces (which takes their links
// with them). A process also dies with the test binary (parent-death signal). A lab
// left by a crashed run (its owner process is dead) is removed when the next lab is made
// (CleanLeftovers). On failure the last lines of every process log are printed.
//
// # Layers
//
//   - Lab, Host, Bridge, Link, Process: any topology. Host.Run and Host.Start run
//     commands in a host through `ip netns exec`; Host.Do runs Go code on a thread that
//     has entered the host's namespace, which is how Host.DialContext, Host.Listen,
//     Host.Connect and Host.HTTPClient make their sockets there. Link.Detach cuts a host
//     off its bridge (node failure) and Link.Attach puts it back.
//   - Router: FRR's bgpd from a generated configuration, alone with -Z, or with zebra
//     and bfdd when BFD or installed routes are asked for (bgpd reaches bfdd only through
//     zebra: with -Z there is no BFD). Neighbors, Routes, Route and BFDPeers parse
//     vtysh's JSON.
//   - BirdRouter: BIRD 2 from a generated configuration (birdconfig.go): a BGP protocol
//     per neighbour, static BFD sessions, and kernel protocols that install the learned
//     routes, merged into multipath routes for ECMP, into the router's kernel table.
//     Protocols, Routes and BFDSessions parse birdc's replies with their reply codes
//     (birdc -v, birdreply.go). Host.KernelNextHops reads either router's kernel table.
//   - Cluster: the standard lab (router, control-plane host, client, nodes on one LAN,
//     pods behind the nodes), with Node objects, EndpointSlices and Service status
//     written for the missing kubelet and controllers, and kube-proxy on every node.
//
// Helper programs (a pod server, a GoBGP test peer) are built with BuildGo, once per
// test binary, into ${HERALD_CACHE:-$HOME/.cache/herald}/netlab/bin.
package netlab
