// Package report tells the world what this node's speaker does: its
// SpeakerStatus record (StatusWriter, the only writer of it, which also
// marks gone speakers' records not ready), its Prometheus metrics
// (Metrics) and its health for /healthz and /readyz (Health).
//
// It decides and announces nothing, and watches nothing: the loop hands it
// what to write.
package report
