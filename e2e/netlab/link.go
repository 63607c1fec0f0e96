package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
)

// Bridge is a Linux bridge in the lab's switch namespace: a layer-2 segment that hosts
// join with Host.Attach. It floods multicast (no snooping) and runs no STP, like a plain
// switch, so neighbour discovery needs no MLD.
type Bridge struct {
	lab  *Lab
	name string
}

// Name returns the bridge's name.
func (b *Bridge) Name() string { return b.name }

// AddBridge creates a bridge named name in the switch namespace.
func (l *Lab) AddBridge(name string) *Bridge {
	l.t.Helper()
	if !hostNamePattern.MatchString(name) {
		l.t.Fatalf("netlab: bridge name %q: want 1-11 characters of [a-z0-9] starting with a letter", name)
	}
	sw := l.switchNS
	sw.MustRun("ip", "link", "add", "name", name, "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
	sw.MustRun("ip", "link", "set", "dev", name, "up")
	b := &Bridge{lab: l, name: name}
	l.mu.Lock()
	l.bridges = append(l.bridges, b)
	l.mu.Unlock()
	return b
}

// Link is one end of a veth pair in a host: either a host's port on a bridge (made by
// Attach) or one end of a point-to-point pair (made by Veth).
type Link struct {
	// Host is the host the interface is in.
	Host *Host
	// Name is the interface name in Host.
	Name string
	// MAC is the interface's hardware address.
	MAC net.HardwareAddr
	// Addrs are the addresses Attach or Veth gave the interface.
	Addrs []netip.Prefix
	// Bridge is the bridge the link is attached to, or nil for a point-to-point link.
	Bridge *Bridge
	// Port is the name of the peer interface: in the switch namespace for a bridge
	// port, in the peer host otherwise.
	Port string
}

// Attach connects the host to bridge b with a veth pair: ifname in the host, with the
// given addresses (usable at once: no duplicate address detection), and <host>-<n> as
// the bridge port in the switch namespace. The host's MAC on the link is locally
// administered and unique in the lab.
func (h *Host) Attach(b *Bridge, ifname string, addrs ...netip.Prefix) *Link {
	t := h.lab.t
	t.Helper()
	port := fmt.Sprintf("%s-%d", h.name, len(h.Links()))
	if len(port) > 15 || len(ifname) > 15 {
		t.Fatalf("netlab: interface names %q and %q: Linux allows at most 15 bytes", ifname, port)
	}
	sw := h.lab.switchNS
	mac := h.lab.nextMAC()
	h.MustRun("ip", "link", "add", "name", ifname, "address", mac, "type", "veth", "peer", "name", port, "netns", sw.ns)
	sw.MustRun("ip", "link", "set", "dev", port, "master", b.name, "up")
	l := &Link{Host: h, Name: ifname, Bridge: b, Port: port}
	h.setUpLink(l, addrs)
	return l
}

// Veth connects two hosts point to point: aIf in a and bIf in b. It returns a's end and
// b's end; addresses can be added with Host.AddAddr.
func (l *Lab) Veth(a *Host, aIf string, b *Host, bIf string) (*Link, *Link) {
	l.t.Helper()
	if len(aIf) > 15 || len(bIf) > 15 {
		l.t.Fatalf("netlab: interface names %q and %q: Linux allows at most 15 bytes", aIf, bIf)
	}
	a.MustRun("ip", "link", "add", "name", aIf, "address", l.nextMAC(), "type", "veth",
		"peer", "name", bIf, "address", l.nextMAC(), "netns", b.ns)
	la := &Link{Host: a, Name: aIf, Port: bIf}
	lb := &Link{Host: b, Name: bIf, Port: aIf}
	a.setUpLink(la, nil)
	b.setUpLink(lb, nil)
	return la, lb
}

// setUpLink switches DAD off on the interface, adds addrs, brings it up, reads its MAC
// and records it.
func (h *Host) setUpLink(l *Link, addrs []netip.Prefix) {
	t := h.lab.t
	t.Helper()
	h.Sysctl("net.ipv6.conf." + l.Name + ".accept_dad=0")
	for _, p := range addrs {
		h.AddAddr(l.Name, p)
	}
	h.MustRun("ip", "link", "set", "dev", l.Name, "up")
	mac, err := h.MAC(l.Name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	l.MAC = mac
	l.Addrs = append(l.Addrs, addrs...)
	h.mu.Lock()
	h.links = append(h.links, l)
	h.mu.Unlock()
}

// MAC returns the hardware address of the host's interface ifname.
func (h *Host) MAC(ifname string) (net.HardwareAddr, error) {
	out, err := h.Run(context.Background(), "ip", "-j", "link", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return nil, fmt.Errorf("netlab: MAC of %s on %s: unexpected ip output %q", ifname, h.name, out)
	}
	mac, err := net.ParseMAC(links[0].Address)
	if err != nil {
		return nil, fmt.Errorf("netlab: MAC of %s on %s: %w", ifname, h.name, err)
	}
	return mac, nil
}

// Detach takes the link's port off its bridge: the host keeps its carrier and addresses
// but its frames go nowhere and none reach it, as when a node fails or the switch port
// is cut. Attach undoes it.
func (l *Link) Detach() error {
	if l.Bridge == nil {
		return fmt.Errorf("netlab: link %s of %s is not a bridge port", l.Name, l.Host.name)
	}
	_, err := l.Host.lab.switchNS.Run(context.Background(), "ip", "link", "set", "dev", l.Port, "nomaster")
	return err
}

// Attach puts a detached link's port back on its bridge.
func (l *Link) Attach() error {
	if l.Bridge == nil {
		return fmt.Errorf("netlab: link %s of %s is not a bridge port", l.Name, l.Host.name)
	}
	_, err := l.Host.lab.switchNS.Run(context.Background(), "ip", "link", "set", "dev", l.Port, "master", l.Bridge.name)
	return err
}

// SetCarrier sets the far end of the link down (false) or up (true): the host's
// interface loses or regains its carrier, as when a cable is pulled.
func (l *Link) SetCarrier(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	far := l.Host.lab.switchNS
	if l.Bridge == nil {
		far = l.peerHost()
		if far == nil {
			return fmt.Errorf("netlab: peer of link %s of %s not found", l.Name, l.Host.name)
		}
	}
	_, err := far.Run(context.Background(), "ip", "link", "set", "dev", l.Port, state)
	return err
}

// peerHost finds the host holding the other end of a point-to-point link.
func (l *Link) peerHost() *Host {
	for _, h := range l.Host.lab.Hosts() {
		for _, o := range h.Links() {
			if o.Bridge == nil && o.Name == l.Port && o.Port == l.Name && o != l {
				return h
			}
		}
	}
	return nil
}
