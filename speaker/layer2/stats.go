package layer2

import "sync/atomic"

// Stats is a snapshot of an Announcer's counters, for the caller to export
// as metrics. Counters only grow, except Announced.
type Stats struct {
	// ARP counts IPv4 traffic, NDP IPv6 traffic.
	ARP, NDP ProtocolStats
	// Announced is the number of addresses currently owned.
	Announced int
	// EventsDropped counts Conflict and error events that were discarded
	// because the caller did not drain the channel in time.
	EventsDropped uint64
}

// ProtocolStats counts the traffic of one protocol (ARP or NDP).
type ProtocolStats struct {
	// Requests counts ARP requests or neighbour solicitations received,
	// answered or not.
	Requests uint64
	// Replies counts ARP replies or solicited neighbour advertisements sent.
	Replies uint64
	// Gratuitous counts gratuitous ARP packets or unsolicited neighbour
	// advertisements sent.
	Gratuitous uint64
	// Conflicts counts packets showing another MAC claiming an owned address.
	Conflicts uint64
	// SendErrors counts packets that could not be sent.
	SendErrors uint64
	// SocketErrors counts sockets that failed to open or failed while
	// reading; each is retried.
	SocketErrors uint64
	// Drops counts received packets not answered, by reason. Every reason
	// in DropReasons is present.
	Drops map[DropReason]uint64
}

// counters are the live, concurrently updated form of ProtocolStats.
type counters struct {
	requests, replies, gratuitous, conflicts, sendErrors, socketErrors atomic.Uint64
	drops                                                              [numDropReasons]atomic.Uint64
}

func (c *counters) snapshot() ProtocolStats {
	s := ProtocolStats{
		Requests:     c.requests.Load(),
		Replies:      c.replies.Load(),
		Gratuitous:   c.gratuitous.Load(),
		Conflicts:    c.conflicts.Load(),
		SendErrors:   c.sendErrors.Load(),
		SocketErrors: c.socketErrors.Load(),
		Drops:        make(map[DropReason]uint64, len(DropReasons)),
	}
	for _, r := range DropReasons {
		s.Drops[r] = c.drops[r].Load()
	}
	return s
}
