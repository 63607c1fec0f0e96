// Package membership keeps the set of live speakers by SWIM gossip among
// them (github.com/hashicorp/memberlist), and the metadata each publishes:
// the MACs of its interfaces and kube-proxy's verdicts (Meta). See the
// speaker package doc for why gossip and not Leases.
//
// It reads no Kubernetes object: the caller passes the addresses to join.
package membership
