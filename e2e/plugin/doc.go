// Package plugin tests kubectl-herald, the kubectl plugin, end to end: the
// binary, built from cmd/kubectl-herald, run against a real kube-apiserver
// and etcd (migrate, with MetalLB's own CRDs installed, then Herald's real
// controller adopting the addresses), and against the product lab (explain,
// by its output text, for the main reasons a Service is pending or
// unannounced).
//
// TestMigrateRealMetalLB (metallb_test.go) runs a real MetalLB, its
// controller and speakers built from go.universe.tf/metallb by package
// e2e/metallb, in the product lab with layer-2 and BGP Services, then hands
// them over to Herald with migrate --apply while a client connects every
// 10 ms, and logs the client-observed outage per address.
package plugin
