// Package drain programs the node's kernel so that, for a while after a
// planned move, the connections still open through the previous node keep
// working (issue 18; docs/figures.md, "Planned moves"): a layer-2 address
// this node took over, or a BGP address another node stopped advertising
// while this one goes on (decide.PlanDrains says which).
//
// The client's neighbour entry (or the router's multipath choice) changes at
// once, but its open TCP connections live in the previous node's connection
// tracking, where kube-proxy NATed them. Here, kube-proxy would pick such a connection up
// mid-stream and NAT it to a pod that knows nothing of it: the client gets a
// reset. For each drained address (decide.Drain) the Forwarder has the
// kernel:
//
//   - mark, before NAT, the connections that begin here with a TCP segment
//     without SYN (connection tracking's loose pick-up: state new), and
//     every later packet of them;
//   - give the marked ones an identity destination NAT, at a priority just
//     before kube-proxy's, so that kube-proxy's DNAT is skipped (the kernel
//     applies the first NAT binding a connection gets);
//   - route the marked packets, by a policy rule (fwmark) and a routing
//     table of its own, to the previous node's address, whose connection
//     tracking forwards them as before; the replies go from there to the
//     client directly (or its router);
//   - not send ICMP redirects while it drains, or clients would learn a
//     route to the previous node.
//
// New connections (SYN) are never drained: kube-proxy here serves them.
//
// Everything lives in an nftables table of its own (Table), a routing table
// and one rule per family: kube-proxy's chains are not touched, so neither
// its resyncs nor its iptables backend (legacy or nf_tables) matter. The
// Forwarder is level-triggered: Set programs the whole desired state, Reset
// removes what a crashed run left, Close removes everything. It needs
// CAP_NET_ADMIN; without it the calls return an error that is
// ErrNotPermitted.
//
// Known limits: the node must forward (net.ipv4.ip_forward, as any
// kube-proxy node), and a filter FORWARD chain with a drop policy must
// accept the drained packets; the mark bit and the routing table number
// must be unused by other software on the node (flags of the speaker).
package drain
