// Package probe asks kube-proxy on this node whether it can serve: its
// node health check, and the healthCheckNodePort of each
// externalTrafficPolicy Local Service with an endpoint here (Prober,
// Targets). Its verdicts go to membership's metadata, so every speaker
// leaves a node that cannot serve out alike.
//
// It speaks HTTP to its own node only and reads no Kubernetes object.
package probe
