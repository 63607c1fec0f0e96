package decide

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

func TestPeersForNode(t *testing.T) {
	peer := func(name, address, source string) *v1alpha1.BGPPeer {
		return &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.BGPPeerSpec{PeerAddress: address, PeerASN: 65001, MyASN: 65000, SourceAddress: source,
				NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"peer-" + name: "yes"}}}}}
	}
	unnumbered := func(p *v1alpha1.BGPPeer, ifname string) *v1alpha1.BGPPeer {
		p.Spec.Interface = ifname
		return p
	}
	m := config.Build(config.Snapshot{BGPPeers: []*v1alpha1.BGPPeer{
		peer("any", "198.51.100.1", ""), peer("lan", "198.51.100.2", "198.51.100.11"),
		peer("loopback", "203.0.113.1", "203.0.113.250"), peer("other-node", "198.51.100.3", "198.51.100.12"),
		unnumbered(peer("unnumbered", "", ""), "eth0"), unnumbered(peer("other-link", "", ""), "eth9"),
	}})
	ifaces := append([]NodeInterface{{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("203.0.113.250/32")}}}, testNodeInterfaces...)
	names := func(ps []config.BGPPeer) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	tests := []struct {
		name              string
		peers             []string // the peers that select the node
		ifaces            []NodeInterface
		want, wantMissing []string
	}{
		{"no source address: always", []string{"any"}, nil, []string{"any"}, nil},
		{"the node's LAN address", []string{"lan"}, ifaces, []string{"lan"}, nil},
		{"an address on the loopback", []string{"loopback"}, ifaces, []string{"loopback"}, nil},
		{"another node's address: no session", []string{"any", "other-node"}, ifaces, []string{"any"}, []string{"other-node"}},
		{"no interfaces known: no session from a source address", []string{"lan"}, nil, nil, []string{"lan"}},
		{"unnumbered over an interface the node has", []string{"unnumbered"}, ifaces, []string{"unnumbered"}, nil},
		{"unnumbered over an interface the node lacks: no session", []string{"any", "other-link"}, ifaces, []string{"any"}, []string{"other-link"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels := map[string]string{}
			for _, p := range tt.peers {
				labels["peer-"+p] = "yes"
			}
			got, missing := peersForNode(m, labels, tt.ifaces)
			if diff := cmp.Diff(tt.want, names(got)); diff != "" {
				t.Errorf("usable peers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMissing, names(missing)); diff != "" {
				t.Errorf("peers without their source address (-want +got):\n%s", diff)
			}
		})
	}
}
