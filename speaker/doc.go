// Package speaker makes the controller's addresses reachable from its node:
// it decides which addresses this node announces (eligibility and election)
// and announces them over layer 2 (ARP and NDP) or BGP.
//
// This package holds only Config, Run and the wiring; the work is done by
// packages whose imports TestLayout checks (docs/speaker.md draws them):
//
//   - internal/decide: the decisions, pure functions of their inputs
//     (eligibility, election, settling, conflicts, interfaces, the desired
//     state and its incremental recomputation). Standard library and the
//     configuration model only.
//   - internal/kubeinput: informers, transforms, and the summaries of
//     Services, EndpointSlices, AddressClaims and Nodes that decide reads.
//   - internal/membership: the live speakers (gossip) and their metadata.
//   - internal/probe: kube-proxy's health checks on this node.
//   - internal/reconcile: the loop, the only owner of its state, which
//     hands the desired state to the announcers.
//   - internal/report: the SpeakerStatus record, metrics and health.
//   - layer2 and bgp: the announcers; they import nothing from here.
//
// # Liveness: why gossip membership
//
// Failover time is failure detection plus a reconcile plus the first
// gratuitous packet, so liveness decides it. The speakers keep a SWIM
// membership among themselves (github.com/hashicorp/memberlist) on the host
// network, tuned for a LAN: each probes a random member every 200 ms, with a
// 100 ms timeout, 3 indirect probes and a TCP fallback, a failed member is
// suspect for 4 x max(1, log10 N) probe intervals (800 ms up to 10 nodes;
// up to three times that while one member alone suspects) before it is
// declared dead, and the news goes to 4 members every 100 ms. A killed
// speaker or a failed node is thus detected in about 1 to 1.5 s. A dead
// node's layer-2 addresses move sooner: the fast failure detector
// (internal/heartbeat) presumes an owner dead after 175 ms without its
// heartbeats, and membership confirms it; the measured client-observed
// outage is in docs/figures.md. A speaker that stops cleanly (SIGTERM) leaves the
// membership, which the others apply at once, and keeps answering for 300
// ms so its successor's gratuitous burst overlaps its last answers.
//
// Kubernetes Leases were rejected: detecting a failure in a second needs
// every node to renew about twice a second, a write load on etcd that grows
// with the nodes and never stops, and failover would stop whenever the API
// server is unreachable. With gossip, the API load is only the informers
// (watches, whose cost follows changes, not time; of the SpeakerStatus
// records, its own only) and one SpeakerStatus write per node per change
// (coalesced, at most one a second), independent of the number of Services; and a speaker that cannot reach the API keeps
// its caches, its announcements and its membership, so failover between
// speakers keeps working through an API outage.
//
// Speakers find each other through the Node objects' InternalIPs (plus
// --memberlist-join), rejoin every 2 s the nodes whose speaker is not a live
// member (so a partition heals), and may encrypt the traffic with a shared
// key. Each member publishes the MACs of its interfaces, so a layer-2
// conflict can be traced to a node, and kube-proxy's verdicts when probing
// is on, so every speaker leaves a node whose data plane cannot serve out
// alike.
//
// # Split brain
//
// Two speakers answering for one address (a partition, views out of step)
// are seen on the wire by the layer2 package; Outranks, which needs nothing
// but the two names, tells both which one keeps it: the winner re-announces,
// the loser holds the address back (see decide.HoldBack and the loop's conflict handling).
//
// It must never write allocations: it only reads Services and their
// AddressClaims and announces, and writes its own SpeakerStatus and events.
// An address is announced for a Service only while its claim lists the
// Service's UID; no condition message is parsed.
package speaker
