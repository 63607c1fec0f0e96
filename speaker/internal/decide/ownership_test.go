package decide

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOwnershipChanges(t *testing.T) {
	web := []ServiceKey{{"default", "web"}}
	entry := Layer2Entry{Interfaces: []string{"eth0"}, Services: web}
	tests := []struct {
		name       string
		prev, next Desired
		want       []OwnershipChange
	}{
		{
			name: "unchanged: nothing",
			prev: Desired{Layer2: map[netip.Addr]Layer2Entry{lbV4: entry}, Owners: map[netip.Addr]string{lbV4: "n1"}},
			next: Desired{Layer2: map[netip.Addr]Layer2Entry{lbV4: entry}, Owners: map[netip.Addr]string{lbV4: "n1"}},
		},
		{
			name: "taking over from another node",
			prev: Desired{Owners: map[netip.Addr]string{lbV4: "n2"}},
			next: Desired{Layer2: map[netip.Addr]Layer2Entry{lbV4: entry}, Owners: map[netip.Addr]string{lbV4: "n1"}},
			want: []OwnershipChange{{Addr: lbV4, Gained: true, Previous: "n2", Next: "n1", Services: web, Interfaces: []string{"eth0"}}},
		},
		{
			name: "first announcement, and taking back an address this node had held back",
			prev: Desired{Owners: map[netip.Addr]string{lbV6: "n1"}},
			next: Desired{Layer2: map[netip.Addr]Layer2Entry{lbV4: entry, lbV6: entry}, Owners: map[netip.Addr]string{lbV4: "n1", lbV6: "n1"}},
			want: []OwnershipChange{
				{Addr: lbV4, Gained: true, Next: "n1", Services: web, Interfaces: []string{"eth0"}},
				{Addr: lbV6, Gained: true, Next: "n1", Services: web, Interfaces: []string{"eth0"}},
			},
		},
		{
			name: "losing to another node: that node reports it",
			prev: Desired{Layer2: map[netip.Addr]Layer2Entry{lbV4: entry}, Owners: map[netip.Addr]string{lbV4: "n1"}},
			next: Desired{Owners: map[netip.Addr]string{lbV4: "n2"}},
		},
		{
			name: "withdrawn with nobody to take over",
			prev: Desired{Layer2: map[netip.Addr]Layer2Entry{lbV4: entry}, Owners: map[netip.Addr]string{lbV4: "n1"}},
			next: Desired{Owners: map[netip.Addr]string{lbV4: ""}},
			want: []OwnershipChange{{Addr: lbV4, Previous: "n1", Services: web}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := OwnershipChanges(tt.prev, tt.next, "n1")
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("OwnershipChanges (-want +got):\n%s", diff)
			}
		})
	}
	msg := OwnershipChange{Addr: lbV4, Gained: true, Previous: "n2", Next: "n1", Interfaces: []string{"eth0"}}.Message()
	if want := "Node n1 announces 198.51.100.130 over ARP on eth0, taking over from node n2."; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
}
