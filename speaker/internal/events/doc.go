// Package events is the speaker's event recorder: it writes core/v1 Events
// about Services and BGPPeers through a Sink (the speaker's narrow API
// client, package kubeclient).
//
// It replaces client-go's tools/record, whose correlator builds its
// patches with the strategic merge patch machinery and so links
// kube-openapi and gnostic's OpenAPI descriptors into the speaker: 4 to
// 5 MB of executable that every speaker maps. It keeps what the speaker
// used of it:
//
//   - Event never blocks: events wait in a bounded queue (QueueSize), and
//     one goroutine writes them; when the queue is full the event is
//     dropped and counted (DropQueueFull).
//   - A repeat of an event (same object, type, reason and message) within
//     Window of the last write bumps count and lastTimestamp of the Event
//     already written, with a JSON merge patch, instead of creating
//     another (Correlator). An Event the API server no longer has (its
//     time to live passed) is created again.
//   - Each object (kind, namespace, name, UID, API version) and event type
//     has a token bucket: Burst events, then one per Refill (client-go's
//     spam filter, with its defaults: 25, then one per 5 minutes). Events
//     over it are dropped and counted (DropRateLimited).
//   - Close stops taking events and writes the queued ones until its
//     context is done; what is left is dropped and counted (DropShutdown).
//
// What it leaves out of client-go's: the aggregation of events that differ
// only by message into one "(combined from similar events)" Event (the
// speaker's messages name a node and an address, and the per-object rate
// limit bounds them), and the retries of a failed write for up to two
// minutes (a write that fails MaxAttempts times is dropped and counted,
// DropWriteFailed, so a slow API server cannot hold the queue).
//
// The decisions (which Event to create or bump, which to drop) are pure
// (Correlator, given the time); Recorder is the queue and the writes.
package events
