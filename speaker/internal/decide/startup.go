package decide

import (
	"slices"
	"time"
)

// SpeakerRecord is what a node's SpeakerStatus record says of its
// speaker, as the start-up wait reads it.
type SpeakerRecord struct {
	// Node is the record's node.
	Node string
	// Lost is true when a surviving speaker marked the record not ready
	// because membership lost this node's speaker (reason
	// SpeakerNotAlive): a crash or a node failure that the running cluster
	// already saw, and no restart since (a restarted speaker rewrites its
	// record).
	Lost bool
}

// StartupView is what a starting speaker knows, before its first
// reconcile, of the speakers it may expect.
type StartupView struct {
	// Self is this node.
	Self string
	// Nodes are the names of the cluster's Nodes that have an address to
	// join.
	Nodes []string
	// Records are the SpeakerStatus records, one per node whose speaker
	// ever wrote one (a record goes with its Node). Empty on a first
	// install, or when they could not be read.
	Records []SpeakerRecord
	// Alive are the live members, this node included; Started those of
	// them, other than this node, whose reconcile loop runs.
	Alive   map[string]bool
	Started map[string]bool
	// Waited is how long this speaker has waited; Bound how long it may
	// wait at most (zero or negative: not at all).
	Waited, Bound time.Duration
}

// StartupOutcome says whether a starting speaker goes on waiting, and why
// it stopped.
type StartupOutcome int

const (
	// StartupWaiting: some expected speakers are not members yet.
	StartupWaiting StartupOutcome = iota
	// StartupOff: the wait is turned off.
	StartupOff
	// StartupRunning: a member already reconciles, so the cluster runs
	// and the join brought this speaker its membership.
	StartupRunning
	// StartupJoined: every expected speaker is a member.
	StartupJoined
	// StartupBound: the bound passed before every expected speaker
	// joined.
	StartupBound
)

// String returns the outcome's name in logs and metrics.
func (o StartupOutcome) String() string {
	switch o {
	case StartupWaiting:
		return "waiting"
	case StartupOff:
		return "off"
	case StartupRunning:
		return "running"
	case StartupJoined:
		return "joined"
	case StartupBound:
		return "bound"
	}
	return "unknown"
}

// StartupVerdict is StartupWait's answer.
type StartupVerdict struct {
	Outcome StartupOutcome
	// Expected are the speakers this one waits for, Missing those of them
	// that are not members yet; both sorted.
	Expected, Missing []string
}

// StartupWait decides whether a starting speaker may run its first
// reconcile, or goes on waiting for the speakers it can expect. Without
// the wait, the first speaker of a cluster that starts at once (a
// whole-cluster restart, a first install) joins membership alone and
// claims every address until the others join, then hands them back:
// conflicts for every address, churn, and that speaker's memory peak.
//
// A speaker that found a running member (Started) stops at once: the
// running cluster holds the addresses, and the join brought this speaker
// the cluster's membership, so a restart in a live cluster is never
// delayed, whatever the records say. Otherwise it expects the speakers of
// the Nodes that have a record, except those marked lost (the cluster saw
// them die), and every other Node when there is no record at all (a
// first install). It stops when all of them are members, or when the
// bound passed: a record can be stale (a node that died with the whole
// cluster, a speaker since removed from its node), and that speaker would
// never come.
func StartupWait(v StartupView) StartupVerdict {
	if v.Bound <= 0 {
		return StartupVerdict{Outcome: StartupOff}
	}
	if len(v.Started) > 0 {
		return StartupVerdict{Outcome: StartupRunning}
	}
	nodes := map[string]bool{}
	for _, n := range v.Nodes {
		nodes[n] = true
	}
	var expected []string
	if len(v.Records) == 0 {
		for n := range nodes {
			if n != v.Self {
				expected = append(expected, n)
			}
		}
	} else {
		for _, r := range v.Records {
			if r.Node != v.Self && nodes[r.Node] && !r.Lost {
				expected = append(expected, r.Node)
			}
		}
	}
	slices.Sort(expected)
	expected = slices.Compact(expected)
	var missing []string
	for _, n := range expected {
		if !v.Alive[n] {
			missing = append(missing, n)
		}
	}
	out := StartupVerdict{Expected: expected, Missing: missing}
	switch {
	case len(missing) == 0:
		out.Outcome = StartupJoined
	case v.Waited >= v.Bound:
		out.Outcome = StartupBound
	default:
		out.Outcome = StartupWaiting
	}
	return out
}
