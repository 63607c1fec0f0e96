package ipam

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"
)

// TestAdoptOutranksAge: Import keeps a contested address with the older
// owner, Adopt gives it to the adopter whatever the ages, and both keep
// sharers that may share; Addresses reports the sharing terms held.
func TestAdoptOutranksAge(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.7")
	pool := PoolSpec{Name: "p", AutoAssign: true, Ranges: []netipx.IPRange{netipx.IPRangeFrom(addr, addr)}}
	old := Owner{Namespace: "a", Name: "old", UID: "1", Created: time.Unix(100, 0)}
	young := Owner{Namespace: "a", Name: "young", UID: "2", Created: time.Unix(200, 0)}
	sharer := Owner{Namespace: "a", Name: "sharer", UID: "3", Created: time.Unix(300, 0)}
	share := func(port int32) *Sharing {
		return &Sharing{Key: "k", Ports: []PortProto{{Protocol: "TCP", Port: port}}}
	}

	for _, tc := range []struct {
		name      string
		adopt     bool
		wantOwner Owner
	}{
		{"import: the older keeps it", false, old},
		{"adopt: the claim wins", true, young},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			if err := a.SetPools([]PoolSpec{pool}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Allocate(Request{Owner: old, Kind: LoadBalancer, Families: []Family{IPv4}}); err != nil {
				t.Fatal(err)
			}
			op := a.Import
			if tc.adopt {
				op = a.Adopt
			}
			res, err := op(Request{Owner: young, Kind: LoadBalancer, Pool: "p"}, []netip.Addr{addr})
			if tc.adopt {
				if err != nil || len(res.Displaced) != 1 || res.Displaced[0].Owner.UID != old.UID {
					t.Fatalf("Adopt = %+v, %v; want old displaced", res, err)
				}
			} else if !errors.Is(err, ErrInUse) {
				t.Fatalf("Import = %+v, %v; want ErrInUse", res, err)
			}
			h, ok := a.Lookup(addr)
			if !ok || len(h.Holders) != 1 || h.Holders[0].Owner.UID != tc.wantOwner.UID {
				t.Fatalf("Lookup = %+v, want held by %s", h, tc.wantOwner.Name)
			}
			if got := a.InUse("p"); got != 1 {
				t.Fatalf("InUse = %d, want 1", got)
			}
		})
	}

	t.Run("adopt keeps a sharer that may share", func(t *testing.T) {
		a := New()
		if err := a.SetPools([]PoolSpec{pool}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Allocate(Request{Owner: old, Kind: LoadBalancer, Families: []Family{IPv4}, Sharing: share(80)}); err != nil {
			t.Fatal(err)
		}
		res, err := a.Adopt(Request{Owner: sharer, Kind: LoadBalancer, Pool: "p", Sharing: share(443)}, []netip.Addr{addr})
		if err != nil || len(res.Displaced) != 0 {
			t.Fatalf("Adopt = %+v, %v; want no displacement", res, err)
		}
		got, ok := a.Addresses(sharer, LoadBalancer)
		if !ok {
			t.Fatal("sharer holds nothing")
		}
		if d := cmp.Diff(share(443), got.Sharing); d != "" {
			t.Fatalf("Addresses().Sharing (-want +got):\n%s", d)
		}
		if h, _ := a.Lookup(addr); len(h.Holders) != 2 {
			t.Fatalf("Lookup = %+v, want two holders", h)
		}
	})
}
