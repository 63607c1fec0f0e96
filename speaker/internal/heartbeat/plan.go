package heartbeat

import (
	"net/netip"
	"slices"
)

// Plan is whom a node sends heartbeats to and whom it watches.
type Plan struct {
	// Send are the successors of the addresses this node owns, sorted.
	Send []string
	// Watch are the owners of the addresses this node succeeds to, sorted.
	Watch []string
}

// PlanOf returns node self's plan given every layer-2 address's owner and
// successor (decide.Desired.Owners and Successors). Cost: O(addresses).
func PlanOf(self string, owners, successors map[netip.Addr]string) Plan {
	send, watch := map[string]bool{}, map[string]bool{}
	for addr, owner := range owners {
		next := successors[addr]
		if owner == "" || next == "" || owner == next {
			continue
		}
		switch self {
		case owner:
			send[next] = true
		case next:
			watch[owner] = true
		}
	}
	return Plan{Send: sortedKeys(send), Watch: sortedKeys(watch)}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
