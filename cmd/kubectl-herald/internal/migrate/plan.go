package migrate

import (
	"net/netip"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Plan is what a migration would write, and what it cannot carry.
type Plan struct {
	// Source names what the plan migrates from ("MetalLB", "kube-vip", "Cilium LB-IPAM").
	Source string
	// The Herald resources to create, sorted by name.
	IPPools           []*v1alpha1.IPPool
	L2Advertisements  []*v1alpha1.L2Advertisement
	BGPAdvertisements []*v1alpha1.BGPAdvertisement
	BGPPeers          []*v1alpha1.BGPPeer
	// Services are every Service of type LoadBalancer, and every other
	// Service that carries the source's annotations, sorted by namespace
	// and name.
	Services []ServicePlan
	// Dropped are the settings not carried, each with the reason.
	Dropped []Dropped
	// Notes are what the user must do or know that the plan does not
	// write (copying a password Secret, a loadBalancerClass to serve).
	Notes []string
	// Problems make the migration unsafe (an address two pools claim, two
	// Services holding one address without sharing it, a value Herald's
	// schema refuses): while there is one, nothing may be applied.
	Problems []string
}

// ServicePlan is what the migration does to one Service.
type ServicePlan struct {
	Namespace, Name string
	// Now are the addresses in the Service's status.loadBalancer.ingress.
	Now []netip.Addr
	// After are the addresses the Service holds once Herald has adopted
	// them: Now, when nothing stands in the way (Problems is empty).
	After []netip.Addr
	// Pools are the Herald pools that hold After, in the same order ("" for
	// an address in no pool).
	Pools []string
	// Annotations are the herald.dev/ annotations to set; the source's own
	// annotations are left in place (they are inert once the source is
	// stopped, and they allow going back).
	Annotations map[string]string
	// Problems are why this Service would not keep its address.
	Problems []string
}

// Dropped is one setting not carried.
type Dropped struct {
	// Object is Kind/namespace/name of the source object, or
	// Service/namespace/name for an annotation.
	Object string
	// Field is the field path (spec.vrf) or the annotation.
	Field string
	// Value is the value as written.
	Value string
	// Reason says why Herald cannot carry it and what to do instead.
	Reason string
}

// Blocked reports whether the plan must not be applied: it has a problem,
// or drops a setting and dropping was not accepted.
func (p *Plan) Blocked(acceptDropped bool) bool {
	if len(p.Problems) > 0 {
		return true
	}
	for _, s := range p.Services {
		if len(s.Problems) > 0 {
			return true
		}
	}
	return len(p.Dropped) > 0 && !acceptDropped
}
