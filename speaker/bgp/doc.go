// Package bgp advertises a node's load-balancer addresses to BGP routers
// through an embedded GoBGP v4 server (github.com/osrg/gobgp/v4), with native
// BFD for fast failure detection.
//
// Its entry point is the Speaker, which takes the whole desired state (the
// peers, and the routes to advertise to each with their attributes) and
// applies the difference: Set is idempotent. RoutesByPeer is the pure function
// that turns the addresses a node announces and the advertisements selecting
// them into routes per peer (host routes or aggregates, with merged
// attributes); PeerFromConfig and AdvertisementFromConfig translate the
// validated configuration model.
//
// The package owns the GoBGP server and nothing else: which addresses a node
// announces (eligibility) is decided by package speaker, and exporting status
// and counters (Kubernetes status, Prometheus) is the daemon's job. It does
// not import Prometheus and does not log on its own: GoBGP's log records are
// routed into the *slog.Logger given to New, and problems of a peer are
// reported in that peer's PeerStatus, never as an error that would stop the
// other peers.
//
// How the desired state maps onto GoBGP: GoBGP has one global RIB shared by
// all peers, so every prefix is added once, tagged with one internal
// community per (peer, family, next hop, attributes) export group it belongs
// to. One export policy statement per group accepts the tagged paths for that
// group's peer and replaces the tags with the group's real communities, large
// communities, local preference and next hop; everything else is rejected.
// Groups never change meaning, so changing which peers get a prefix, or with
// which attributes, is a re-advertisement of that prefix alone: no soft reset.
package bgp
