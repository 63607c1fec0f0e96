package decide

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
)

// Event reasons the speaker records on Services. They are stable CamelCase
// words, safe to match on.
const (
	// EventAnnouncing: this node started announcing an address of the
	// Service (it is the new announcing node).
	EventAnnouncing = "Announcing"
	// EventWithdrawn: this node stopped announcing an address and no other
	// node is eligible to take it.
	EventWithdrawn = "AnnouncementWithdrawn"
	// EventAddressConflict: another machine answered ARP/NDP for an address
	// this node announces; the message says who keeps it.
	EventAddressConflict = "AddressConflict"
)

// OwnershipChange is a change of this node's layer-2 announcements.
type OwnershipChange struct {
	Addr netip.Addr
	// Gained is true when this node started announcing Addr, false when
	// it stopped.
	Gained bool
	// Previous is the node that announced Addr before, as this node saw it
	// ("" for none or unknown); Next the node announcing it now.
	Previous, Next string
	// Services are the Services of Addr: the new ones when gained, the old
	// ones when lost.
	Services []ServiceKey
	// Interfaces are where Addr is now announced (gained only).
	Interfaces []string
}

// OwnershipChanges compares two consecutive desired states of node self.
// Only the node that takes an address reports it (Gained), so one change
// of announcing node makes one event; the node that loses an address
// reports it only when no node takes it (Next is ""), since then there is
// no new announcer to tell. Sorted by address.
//
// When next's Layer2 is prev's own map (Incremental returns a map it did
// not change as it was), nothing changed: O(1). Otherwise O(A) for A
// addresses announced.
func OwnershipChanges(prev, next Desired, self string) []OwnershipChange {
	if sameMap(prev.Layer2, next.Layer2) {
		return nil
	}
	var out []OwnershipChange
	for a, e := range next.Layer2 {
		if _, had := prev.Layer2[a]; had {
			continue
		}
		p := prev.Owners[a]
		if p == self {
			p = ""
		}
		out = append(out, OwnershipChange{Addr: a, Gained: true, Previous: p, Next: self, Services: e.Services, Interfaces: e.Interfaces})
	}
	for a, e := range prev.Layer2 {
		if _, has := next.Layer2[a]; has {
			continue
		}
		if n := next.Owners[a]; n == "" {
			out = append(out, OwnershipChange{Addr: a, Previous: self, Services: e.Services})
		}
	}
	slices.SortFunc(out, func(x, y OwnershipChange) int { return x.Addr.Compare(y.Addr) })
	return out
}

// Reason returns the event reason of the change.
func (c OwnershipChange) Reason() string {
	if c.Gained {
		return EventAnnouncing
	}
	return EventWithdrawn
}

// Message returns the event message of the change.
func (c OwnershipChange) Message() string {
	proto := "NDP"
	if c.Addr.Is4() {
		proto = "ARP"
	}
	if !c.Gained {
		return fmt.Sprintf("Node %s stopped announcing %s: no node is eligible to announce it (no ready endpoint where allowed, or every eligible node is excluded or down).", c.Previous, c.Addr)
	}
	prev := "no node announced it before"
	if c.Previous != "" {
		prev = "taking over from node " + c.Previous
	}
	return fmt.Sprintf("Node %s announces %s over %s on %s, %s.", c.Next, c.Addr, proto, strings.Join(c.Interfaces, ", "), prev)
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
