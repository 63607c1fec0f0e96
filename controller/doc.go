// Package controller is Herald's single writer of address allocations. It
// watches Services and IPPools, drives the ipam package, and writes
// status.loadBalancer.ingress, spec.externalIPs (when asked to allocate one),
// events, pool status and metrics.
//
// It must not announce addresses: that is the speaker's job.
package controller
