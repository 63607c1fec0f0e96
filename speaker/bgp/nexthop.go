package bgp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// errNoNextHop is wrapped when the interface towards a peer has no address of
// the wanted family.
var errNoNextHop = errors.New("no address of that family on the interface")

// kernelNextHop finds the node's address of the wanted family on the
// interface it reaches peer through: the interface holding source, or, when
// source is the zero Addr, the one holding the address the kernel would send
// from (learned by connecting a UDP socket, which sends nothing).
func kernelNextHop(peer, source netip.Addr, v6 bool) (netip.Addr, error) {
	if !source.IsValid() {
		conn, err := net.Dial("udp", net.JoinHostPort(peer.String(), strconv.Itoa(DefaultPort)))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("find the route to %v: %w", peer, err)
		}
		local := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		conn.Close()
		source = local
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		var list []netip.Addr
		holds := false
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip == source.WithZone("") {
				holds = true
			}
			list = append(list, ip)
		}
		if !holds {
			continue
		}
		if hop, ok := pickNextHop(list, v6); ok {
			return hop, nil
		}
		return netip.Addr{}, fmt.Errorf("interface %s (holding %v): %w", ifc.Name, source, errNoNextHop)
	}
	return netip.Addr{}, fmt.Errorf("no interface holds the source address %v", source)
}
