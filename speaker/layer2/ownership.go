package layer2

import (
	"net"
	"net/netip"
)

// ownership is an immutable snapshot of what this node announces, and where.
// Responders load it once per packet; the Announcer replaces it with one
// atomic pointer swap, so an address starts or stops being answered on every
// interface at the same instant.
type ownership struct {
	// byIface maps an interface name to the addresses announced on it.
	byIface map[string]map[netip.Addr]struct{}
	// all holds every announced address.
	all map[netip.Addr]struct{}
	// macs holds the link-layer addresses of this node's announcing
	// interfaces, as strings of raw bytes: a frame from any of them is ours,
	// even when it arrives on another interface of the same segment.
	macs map[string]struct{}
}

var emptyOwnership = &ownership{}

func (o *ownership) ownedOn(iface string, a netip.Addr) bool {
	_, ok := o.byIface[iface][a]
	return ok
}

func (o *ownership) isSelf(mac net.HardwareAddr) bool {
	_, ok := o.macs[string(mac)]
	return len(mac) > 0 && ok
}

// targetReason says whether a request for target arriving on iface is ours
// to answer.
func (o *ownership) targetReason(iface string, target netip.Addr) DropReason {
	if _, ok := o.all[target]; !ok {
		return DropNotOwned
	}
	if !o.ownedOn(iface, target) {
		return DropWrongInterface
	}
	return answered
}
