// Package suite is Herald's end-to-end suite: the scenarios of issue 7, each run
// against the whole product in one lab (package productlab): the real control
// plane, kube-proxy on three nodes, herald-controller, herald-speaker on every
// node, pods, an FRR router and a client. Each scenario asserts what a user would
// check: a client's connections, the router's routes, the kernel's neighbour
// tables, Service status and events.
//
// The tests live in one TestSuite so the lab is built once. Each group of scenarios
// is a file that registers itself (see register in suite_test.go), brings the
// configuration it needs, and removes it when it ends, so the groups do not depend
// on each other's order.
package suite
