// Package plugin tests kubectl-herald, the kubectl plugin, end to end: the
// binary, built from cmd/kubectl-herald, run against a real kube-apiserver
// and etcd (migrate, with MetalLB's own CRDs installed, then Herald's real
// controller adopting the addresses), and against the product lab (explain,
// by its output text, for the main reasons a Service is pending or
// unannounced).
//
// The seam for a run of a real MetalLB (its controller and speaker, built
// from go.universe.tf/metallb, announcing in the network lab while a client
// connects, then migrated) is migrateAndHandOver in migrate_test.go: the
// MetalLB daemons would replace writeMetalLBStatuses, and stopping them
// comes before startController. That run is not written yet.
package plugin
