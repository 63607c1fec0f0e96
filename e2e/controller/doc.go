// Package controller holds the integration tests of Herald's controller
// against a real kube-apiserver and etcd (see e2e/controlplane): allocation
// for LoadBalancer and externalIPs Services, events and conditions, every
// bad-input case, pool status and deletion, restarts and leader election.
//
// Run them with `cd e2e && go test -race ./controller/...`. They need the
// control-plane binaries (`make binaries`); without them they skip, and fail
// under CI=true.
package controller
