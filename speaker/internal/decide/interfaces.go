package decide

import (
	"net"
	"net/netip"
	"slices"
	"strings"
)

// NodeInterface describes one of the node's network interfaces, as far as
// choosing where to announce goes. The caller gathers it (net.Interfaces and
// netlink); ChooseInterfaces is pure.
type NodeInterface struct {
	// Name is the interface name.
	Name string
	// Flags are the interface flags (up, broadcast, loopback, ...).
	Flags net.Flags
	// Prefixes are the interface's addresses with their prefix lengths.
	Prefixes []netip.Prefix
	// Enslaved is true for a bridge port or bond member: the kernel hands
	// its frames to the master, so a socket on it never sees ARP or NDP.
	Enslaved bool
}

// containerPrefixes are name prefixes of interfaces created by container
// runtimes, CNI plugins and kube-proxy. Announcing on them would answer for
// load-balancer addresses inside pod or overlay networks.
var containerPrefixes = []string{
	"veth", "cali", "flannel", "cni", "docker", "kube-ipvs", "kube-bridge",
	"kube-dummy", "cilium_", "lxc", "vxlan", "tunl", "weave", "vethwe",
	"genev_sys", "ovs-system", "antrea-", "nodelocaldns", "tun", "virbr",
}

// IsContainerInterface reports whether name looks like an interface made by
// a container runtime, a CNI plugin or kube-proxy (veth*, cali*, flannel*,
// cni*, docker*, kube-ipvs*, cilium_*, lxc*, vxlan*, ...).
func IsContainerInterface(name string) bool {
	return slices.ContainsFunc(containerPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// canAnnounce reports whether ARP and NDP can work on i at all: it is up,
// broadcast-capable (not a point-to-point tunnel), not loopback, and not a
// bridge port or bond member.
func canAnnounce(i NodeInterface) bool {
	return i.Flags&net.FlagUp != 0 && i.Flags&net.FlagBroadcast != 0 &&
		i.Flags&net.FlagLoopback == 0 && !i.Enslaved
}

// ChooseInterfaces returns, sorted, the interfaces on which this node should
// answer for addr:
//
//   - When allowed (an L2Advertisement's interface list) is not empty, the
//     listed interfaces that exist and can announce. Naming an interface
//     overrides the container-interface heuristic, but not the rule that it
//     must be up, broadcast-capable, not loopback and not enslaved.
//   - Otherwise the interfaces whose subnet contains addr, among those that
//     can announce and are not container interfaces. Host routes (/32,
//     /128) do not count: kube-proxy in IPVS mode puts every load-balancer
//     address on kube-ipvs0 as a /32.
//   - Otherwise every interface that can announce and is not a container
//     interface.
//
// Cost: O(interfaces x prefixes).
func ChooseInterfaces(ifaces []NodeInterface, addr netip.Addr, allowed []string) []string {
	addr = addr.Unmap().WithZone("")
	var out []string
	if len(allowed) > 0 {
		for _, i := range ifaces {
			if canAnnounce(i) && slices.Contains(allowed, i.Name) {
				out = append(out, i.Name)
			}
		}
		return sortedUnique(out)
	}

	var all []string
	for _, i := range ifaces {
		if !canAnnounce(i) || IsContainerInterface(i.Name) {
			continue
		}
		all = append(all, i.Name)
		for _, p := range i.Prefixes {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
			if p.IsValid() && p.Bits() < addr.BitLen() && p.Contains(addr) {
				out = append(out, i.Name)
				break
			}
		}
	}
	if len(out) > 0 {
		return sortedUnique(out)
	}
	return sortedUnique(all)
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
