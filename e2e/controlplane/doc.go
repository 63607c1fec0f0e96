// Package controlplane runs a real Kubernetes control plane, etcd and kube-apiserver built
// from source at pinned versions, for Herald's integration tests and for the lab.
//
// StartForTest gives a test its own control plane: etcd and kube-apiserver on free ports in
// a fresh temporary directory, authentication by a static token file (an admin in
// system:masters and a few ordinary users for RBAC tests), service-account tokens signed by
// a generated key pair, RBAC and Node authorization, dual-stack service ranges, TLS with a
// generated CA, and Herald's CRDs from deploy/crds installed and Established. Everything it
// started is stopped (the whole process group) and its directory removed when the test
// ends, fails or panics. Start and Stop do the same for programs (the lab), optionally in a
// directory that persists across runs.
//
// No kube-controller-manager, scheduler or kubelet runs: nothing creates the default
// ServiceAccount of a namespace, finishes a namespace deletion, or writes EndpointSlices.
// Tests write the objects those components would write.
//
// The binaries come from build/build.sh (make binaries), which builds them through the Go
// module proxy into a directory keyed by version (see BinDir). A test that finds them
// missing skips with the command to run, and fails under CI=true.
//
// # Why this package lives in the e2e module
//
// Tests that need real processes (this control plane, network namespaces, FRR) live in the
// e2e module, github.com/herald-dev/herald/e2e, which replaces the product module with the
// working tree. Cross-component and integration tests therefore import this package from
// the e2e module rather than from the product's own test files: the product module keeps
// only unit tests and its dependency graph carries none of the harness's dependencies, and
// the heavy Kubernetes build lives in two more modules still (build/kube and build/etcd), so
// not even the e2e module's graph includes kube-apiserver's.
package controlplane
