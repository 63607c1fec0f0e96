// Package ipam owns Herald's address bookkeeping: which address belongs to which
// owner (a Service's load-balancer ingress or an external IP), from which pool.
//
// It is pure and goroutine-safe. It must not import Kubernetes, logging or
// metrics packages: callers translate their objects into requests, and export
// Stats themselves.
package ipam
