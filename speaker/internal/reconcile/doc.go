// Package reconcile is the speaker's loop: one goroutine (Loop.Run) that
// gathers the inputs (package kubeinput's summaries, membership's live
// speakers, this node's interfaces, held-back addresses, kube-proxy's
// verdicts), computes this node's desired state (package decide), hands
// it to every announcer (speaker/layer2, speaker/bgp), resolves layer-2
// conflicts, records events and hands the status to package report.
//
// The loop is the only owner of its state (the fields of Loop below the
// line). Its clients and informers are made by the caller and passed in
// (New and Deps, as in kubernetes/sample-controller), so tests drive it
// with fake clientsets; the informers' handlers only mark what changed
// (Changes).
package reconcile
