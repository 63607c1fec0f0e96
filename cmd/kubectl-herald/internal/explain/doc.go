// Package explain says, in words, what Herald did with one Service and
// why (Service), and what the whole installation looks like (Status): the
// address and its pool or exactly why there is none, which nodes may
// announce it and why each other node may not, who announces it now over
// which protocol, interface and BGP sessions, and the node-side
// prerequisites that commonly break load balancers.
//
// It is pure: the objects come in (listed by kubectl-herald's command
// package), text comes out. Which nodes may announce is the speakers' own
// rule (speaker/eligibility), and which advertisements and peers apply is
// Herald's configuration model (config.Build): this package re-implements
// neither.
package explain
