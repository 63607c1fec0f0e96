// Package soak is the chaos soak's core (issue 14): what it observes of the
// product from outside (Snapshot: the API objects a user can read and what a
// client on the LAN and the router see on the wire), the invariants it checks
// over a sequence of snapshots (Checker, a pure function of the snapshots and
// of the changes the soak itself made), the client outages it tolerates
// (Outages), and the seeded sequence of changes and faults it makes (Plan).
//
// The I/O around it (building the lab, applying operations, reading the API,
// ARP, NDP and FRR) lives in observe.go and run.go; cmd/soak is the command.
// Nothing here reads a component's logs or metrics: the soak judges Herald
// only by what users and the network see.
package soak
