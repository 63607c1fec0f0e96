package ipam

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"go4.org/netipx"
)

// TestRetag: a frozen holder's new sharing terms apply when its sharers may
// share under them, and then decide who may join; they are kept otherwise.
func TestRetag(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.9")
	pool := PoolSpec{Name: "p", AutoAssign: true, Ranges: []netipx.IPRange{netipx.IPRangeFrom(addr, addr)}}
	frozen := Owner{Namespace: "a", Name: "frozen", UID: "1", Created: time.Unix(100, 0)}
	sharer := Owner{Namespace: "a", Name: "sharer", UID: "2", Created: time.Unix(200, 0)}
	joiner := Owner{Namespace: "a", Name: "joiner", UID: "3", Created: time.Unix(300, 0)}
	share := func(key string, port int32) *Sharing {
		return &Sharing{Key: key, Ports: []PortProto{{Protocol: "TCP", Port: port}}}
	}
	for _, tc := range []struct {
		name       string
		withSharer bool
		next       *Sharing
		changed    bool
		joinerOK   bool // whether joiner (key k, port 82) may then join
	}{
		{"key removed, alone: no one may join", false, nil, true, false},
		{"key changed, alone: the old key may not join", false, share("other", 80), true, false},
		{"ports changed, alone: still joinable", false, share("k", 81), true, true},
		{"same terms: nothing changes", false, share("k", 80), false, true},
		{"key removed, with a sharer: kept", true, nil, false, true},
		{"port taken by the sharer: kept", true, share("k", 81), false, true},
		{"port free beside the sharer: applied", true, share("k", 83), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			if err := a.SetPools([]PoolSpec{pool}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Allocate(Request{Owner: frozen, Kind: LoadBalancer, Families: []Family{IPv4}, Sharing: share("k", 80)}); err != nil {
				t.Fatal(err)
			}
			if tc.withSharer {
				if _, err := a.Allocate(Request{Owner: sharer, Kind: LoadBalancer, Families: []Family{IPv4}, Sharing: share("k", 81), Addresses: []netip.Addr{addr}}); err != nil {
					t.Fatal(err)
				}
			}
			if got := a.Retag(frozen, LoadBalancer, tc.next); got != tc.changed {
				t.Fatalf("Retag = %v, want %v", got, tc.changed)
			}
			_, err := a.Allocate(Request{Owner: joiner, Kind: LoadBalancer, Families: []Family{IPv4}, Sharing: share("k", 82), Addresses: []netip.Addr{addr}})
			if (err == nil) != tc.joinerOK {
				t.Fatalf("joiner's Allocate: %v, want success %v", err, tc.joinerOK)
			}
			if err != nil && !errors.Is(err, ErrInUse) && !errors.Is(err, ErrSharingRefused) {
				t.Fatalf("joiner's Allocate: %v, want ErrInUse or ErrSharingRefused", err)
			}
			h, _ := a.Lookup(addr)
			if h.Holders[0].Owner.UID != frozen.UID {
				t.Fatalf("holders = %+v, want frozen still first", h.Holders)
			}
		})
	}
	a := New()
	if a.Retag(frozen, LoadBalancer, nil) {
		t.Fatal("Retag of an owner holding nothing reported a change")
	}
}
