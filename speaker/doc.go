// Package speaker makes the controller's addresses reachable from its node:
// it decides which addresses this node announces (eligibility and election)
// and announces them over layer 2 (ARP and NDP) or BGP.
//
// The decisions are pure functions: EligibleNodes applies kube-proxy's
// health-check semantics and the node exclusions; AnnouncingNode, Ranking,
// Outranks and SharedCandidates implement the layer-2 election by rendezvous
// hashing. Package speaker/layer2 carries a node's share out on the wire.
// Speaker liveness (gossip membership, so failover does not depend on the
// API server and API load does not grow with Services) is proposed in
// docs/speaker.md.
//
// It must never write allocations: it only reads Services and announces.
package speaker
