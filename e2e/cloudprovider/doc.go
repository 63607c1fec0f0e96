// Package cloudprovider holds the integration tests of Herald's
// k8s.io/cloud-provider implementation (package
// github.com/herald-dev/herald/controller/cloudprovider) against a real
// kube-apiserver and etcd (see e2e/controlplane):
//
//   - TestUpstreamServiceController runs the upstream service controller
//     (k8s.io/cloud-provider/controllers/service) in this process with the
//     provider, and checks each address and its AddressClaim;
//   - TestCloudControllerManagerBinary runs the herald-cloud-controller-manager
//     binary (ccmlab) as deploy/overlays/cloud-controller-manager does, beside
//     herald-controller serving another class and real speakers in network
//     namespaces (e2e/speaker/speakerlab), which announce what it allocates.
//
// Run them with `cd e2e && CI=true go test -count=1 -p 1 ./cloudprovider/...`
// as root. They need the control-plane binaries (`make binaries`) and the
// lab's commands; without them they skip, and fail under CI=true.
package cloudprovider
