// Package heartbeat is the speaker's fast failure detector for layer 2.
//
// Membership (SWIM gossip, package membership) declares a dead speaker in
// two to five probe intervals plus suspicion: about a second. A client
// notices all of it, since nothing else answers for the dead node's
// addresses. The physical floor is a few heartbeat intervals: a node that
// hears from its peer every 25 ms can tell it is gone in under 200 ms.
//
// Sending heartbeats all to all costs n² packets; they are not needed.
// For each layer-2 address every speaker computes the same ranking
// (decide.Desired.Owners and Successors): the owner announces it, and
// when the owner goes the successor, and only it, takes the address. So
// each owner sends heartbeats to the successors of its addresses, and each
// successor watches the owners of the addresses it would take (PlanOf):
// the one node that must act on a death is the one that notices it, with
// no agreement round. A node sends to at most as many peers as it owns
// addresses, and to none when it owns none.
//
// A successor that hears nothing from a watched owner for Timeout presumes
// it dead (Detector): its speaker leaves the owner out of the live members
// it elects among, takes the owner's addresses it succeeds to, and sends
// its gratuitous ARP/NDP. The other speakers go on with membership's view;
// they were not going to announce those addresses anyway.
//
// Before presuming, the successor asks the owner's kernel: from ProbeAfter
// of silence on it sends an ICMP echo request every interval (Echo). A
// kernel answers in its network stack even when every process on the node
// is starved of CPU, so an owner whose kernel answered a probe sent in the
// last Timeout is up, and is spared: its speaker stalled or stopped, or its
// heartbeats are lost, and membership decides. Only an owner silent on both
// counts (link cut, node down) is presumed dead, and only once four probes
// went unanswered: a successor that was starved itself sent none, so it has
// no evidence of a death when it wakes.
//
// The verdict is a presumption, bounded on every side:
//
//   - A node is watched only after a heartbeat arrived from it since the
//     watch began (armed): a peer that sends none (an older speaker, a
//     closed port) is left to membership, never presumed dead.
//   - One heartbeat from the node clears its verdict: a false alarm moves
//     the addresses back at the next heartbeat.
//   - When membership agrees (the node is no longer a live member), the
//     verdict is dropped and membership decides from then on; when it
//     still sees the node alive Confirm after the verdict, the verdict is
//     dropped too and the node disarmed until it is heard again, so
//     heartbeats lost on a path membership still uses cannot keep an
//     address on two nodes.
//   - A sender keeps sending for Grace to peers that left its plan, so a
//     successor whose view lags the owner's does not take a silence for a
//     death.
//
// The trade-off is the one of any failure detector: Timeout against false
// alarms. With heartbeats every 25 ms and a 175 ms timeout, seven
// heartbeats in a row must be lost (with 10% packet loss, one chance in
// ten million per window) or the sender starved of CPU for 150 ms, and
// then its kernel must leave four probes in a row unanswered too.
// docs/speaker.md and docs/figures.md give the measurements.
//
// Heartbeats and echo replies are not authenticated: a forged one can only
// delay fast detection, after which membership (encrypted when keys are set) still
// declares the node dead; a verdict needs silence, which a third party
// cannot forge. Packets whose source is not the member's address are
// ignored.
package heartbeat
