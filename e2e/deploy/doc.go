// Package deploy tests Herald's installation manifests (deploy/) against a real
// kube-apiserver and etcd: the kustomize base and every overlay apply with the kubectl we
// build, server-side and client-side, and every object they declare is accepted; each
// component's service account, impersonated, can do its job under the RBAC the manifests
// grant and is refused what it must not do; the real controller allocates an address
// under that RBAC; and the binaries build static and accept every flag the manifests pass.
//
// The package holds tests only. It reads deploy/ and examples/ and changes neither.
package deploy
