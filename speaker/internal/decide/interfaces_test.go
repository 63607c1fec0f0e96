package decide

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestChooseInterfaces(t *testing.T) {
	const upBcast = net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	node := []NodeInterface{
		{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Prefixes: prefixes("2001:db8:ffff::1/128")},
		{Name: "eth0", Flags: upBcast, Prefixes: prefixes("198.51.100.2/25", "2001:db8:1::2/64", "fe80::1/64")},
		{Name: "eth1", Flags: upBcast, Prefixes: prefixes("198.51.100.130/25")},
		{Name: "br0", Flags: upBcast, Prefixes: prefixes("203.0.113.2/26")},
		{Name: "eth2", Flags: upBcast, Enslaved: true, Prefixes: prefixes("203.0.113.3/26")},
		{Name: "docker0", Flags: upBcast, Prefixes: prefixes("203.0.113.65/26")},
		{Name: "kube-ipvs0", Flags: upBcast, Prefixes: prefixes("203.0.113.200/32", "2001:db8:ff::1/128")},
		{Name: "veth1a2b", Flags: upBcast},
		{Name: "cali0123", Flags: upBcast},
		{Name: "flannel.1", Flags: upBcast},
		{Name: "wg0", Flags: net.FlagUp | net.FlagPointToPoint, Prefixes: prefixes("203.0.113.129/26")},
		{Name: "eth3", Flags: net.FlagBroadcast, Prefixes: prefixes("203.0.113.193/26")},
	}
	fallback := []string{"br0", "eth0", "eth1"}
	tests := []struct {
		name    string
		ifaces  []NodeInterface
		addr    string
		allowed []string
		want    []string
	}{
		{name: "IPv4 in eth0's subnet", ifaces: node, addr: "198.51.100.10", want: []string{"eth0"}},
		{name: "IPv4 in eth1's subnet", ifaces: node, addr: "198.51.100.200", want: []string{"eth1"}},
		{name: "a bridge is used, its port is not", ifaces: node, addr: "203.0.113.10", want: []string{"br0"}},
		{name: "IPv6 in eth0's subnet", ifaces: node, addr: "2001:db8:1::10", want: []string{"eth0"}},
		{name: "IPv4-mapped IPv6 counts as IPv4", ifaces: node, addr: "::ffff:198.51.100.10", want: []string{"eth0"}},
		{name: "no subnet: every usable non-container interface", ifaces: node, addr: "2001:db8:ee::1", want: fallback},
		{name: "a container bridge's subnet does not count", ifaces: node, addr: "203.0.113.70", want: fallback},
		{name: "kube-ipvs0's host route does not count", ifaces: node, addr: "203.0.113.200", want: fallback},
		{name: "IPv6 host route does not count", ifaces: node, addr: "2001:db8:ff::1", want: fallback},
		{name: "point-to-point and down interfaces never count", ifaces: node, addr: "203.0.113.130", want: fallback},
		{name: "down interface's subnet", ifaces: node, addr: "203.0.113.230", want: fallback},
		{name: "allowed list restricts", ifaces: node, addr: "198.51.100.10", allowed: []string{"eth1"}, want: []string{"eth1"}},
		{name: "allowed list keeps every listed interface", ifaces: node, addr: "198.51.100.10", allowed: []string{"eth1", "eth0"}, want: []string{"eth0", "eth1"}},
		{
			name:   "allowed list may name a container interface, never an unusable one",
			ifaces: node, addr: "198.51.100.10",
			allowed: []string{"eth2", "lo", "docker0", "eth3", "wg0", "missing"},
			want:    []string{"docker0"},
		},
		{name: "allowed list naming nothing usable", ifaces: node, addr: "198.51.100.10", allowed: []string{"missing"}, want: nil},
		{name: "no interfaces", addr: "198.51.100.10", want: nil},
		{
			name:   "several interfaces on the subnet",
			ifaces: []NodeInterface{{Name: "b", Flags: upBcast, Prefixes: prefixes("198.51.100.1/24")}, {Name: "a", Flags: upBcast, Prefixes: prefixes("198.51.100.2/24")}},
			addr:   "198.51.100.10",
			want:   []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChooseInterfaces(tt.ifaces, netip.MustParseAddr(tt.addr), tt.allowed)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ChooseInterfaces(%s) mismatch (-want +got):\n%s", tt.addr, diff)
			}
		})
	}
}

func TestIsContainerInterface(t *testing.T) {
	for name, want := range map[string]bool{
		"veth0": true, "cali12ab": true, "flannel.1": true, "cni0": true, "docker0": true,
		"kube-ipvs0": true, "cilium_host": true, "lxc1234": true, "vxlan.calico": true,
		"eth0": false, "ens3": false, "bond0": false, "br0": false, "enp1s0f0.100": false,
	} {
		if got := IsContainerInterface(name); got != want {
			t.Errorf("IsContainerInterface(%q) = %v, want %v", name, got, want)
		}
	}
}
