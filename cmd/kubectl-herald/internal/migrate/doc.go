// Package migrate turns another load balancer's configuration (MetalLB's
// metallb.io resources and Service annotations; kube-vip's and Cilium
// LB-IPAM's, for a plan only) into Herald's resources and annotations, and
// says what it cannot carry and why.
//
// It is pure: objects come in (decoded YAML or what the API server
// listed), a Plan comes out. It reads no file, talks to no API server and
// writes nothing; kubectl-herald's command package does the I/O. Every
// field of a MetalLB resource is either carried, or reported in
// Plan.Dropped with the reason: the converters take the fields they carry
// out of a copy of the object and report whatever is left.
package migrate
