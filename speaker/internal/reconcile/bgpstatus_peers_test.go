package reconcile

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/speaker/bgp"
)

// TestPeersWithoutSource: the status of a peer the node cannot open names
// what the node lacks.
func TestPeersWithoutSource(t *testing.T) {
	tests := []struct {
		name string
		peer config.BGPPeer
		want string
	}{
		{"source address", config.BGPPeer{Name: "p", SourceAddress: netip.MustParseAddr("198.51.100.99")}, "this node has no address 198.51.100.99 (spec.sourceAddress)"},
		{"interface", config.BGPPeer{Name: "p", Interface: "unn0"}, "this node has no interface unn0 (spec.interface)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := peersWithoutSource([]config.BGPPeer{tt.peer})
			if len(got) != 1 || got[0].State != bgp.StateNotConfigured || !strings.HasPrefix(got[0].ConfigError, tt.want) {
				t.Errorf("peersWithoutSource = %+v, want NotConfigured starting %q", got, tt.want)
			}
		})
	}
}
