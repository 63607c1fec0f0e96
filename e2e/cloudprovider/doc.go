// Package cloudprovider holds the integration test of Herald's
// k8s.io/cloud-provider implementation (package
// github.com/herald-dev/herald/controller/cloudprovider): the upstream
// service controller (k8s.io/cloud-provider/controllers/service), as a
// cloud-controller-manager runs it, drives Herald's provider against a real
// kube-apiserver and etcd (see e2e/controlplane).
//
// Run it with `cd e2e && go test -race ./cloudprovider/...`. It needs the
// control-plane binaries (`make binaries`); without them it skips, and fails
// under CI=true.
package cloudprovider
