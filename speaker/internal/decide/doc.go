// Package decide holds the speaker's decisions, as pure functions of their
// inputs: which nodes may announce a Service (EligibleNodes), which node
// announces an address at layer 2 (AnnouncingNode, Ranking, Outranks,
// SharedCandidates: rendezvous hashing), on which interfaces
// (ChooseInterfaces), when a new node's endpoints have settled
// (SettleTracker), who keeps an address in a conflict (ResolveConflict,
// HoldBack), and one node's whole desired state (Compute, and Incremental,
// which recomputes only what changed).
//
// It imports only the standard library and Herald's configuration model:
// no client, socket, clock, logger or metric. Time comes in as arguments;
// the Kubernetes objects come in as the summaries Service, Endpoint and
// NodeState. The speaker's TestLayout holds this rule.
package decide
