// Package speaker makes the controller's addresses reachable from its node:
// it decides which addresses this node announces (eligibility and election)
// and announces them over layer 2 (ARP and NDP) or BGP.
//
// It must never write allocations: it only reads Services and announces.
package speaker
