package controller

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

// holderKind is the ipam Kind of a claim holder.
func holderKind(h config.ClaimHolder) ipam.Kind {
	if h.ExternalIP {
		return ipam.ExternalIP
	}
	return ipam.LoadBalancer
}

// holderAs is the AddressHolder.As of an ipam Kind.
func holderAs(k ipam.Kind) string {
	if k == ipam.ExternalIP {
		return v1alpha1.HolderExternalIP
	}
	return v1alpha1.HolderLoadBalancer
}

// holderSharing returns the sharing terms a claim records for h, or nil.
func holderSharing(h config.ClaimHolder) *ipam.Sharing {
	if h.SharingKey == "" {
		return nil
	}
	s := &ipam.Sharing{Key: h.SharingKey, BackendKey: h.BackendKey, Namespaces: h.SharingNamespaces}
	for _, p := range h.Ports {
		s.Ports = append(s.Ports, ipam.PortProto{Protocol: p.Protocol, Port: p.Port})
	}
	return s
}

// ImportClaims restores every allocation the AddressClaims record, exactly
// as recorded (pool, sharing terms), then, like Import, the allocations that
// Services' statuses record for addresses no claim records (a cluster
// upgraded from a release without claims), oldest Service first. A claim
// outranks a status: an address whose claim lists another Service is not
// imported for a Service whose status names it.
//
// services must be listed after claims, so that every holder a claim lists
// had its Service created before the list: a holder whose Service is not
// among services (or is another Service under the same name) is gone, is not
// imported, and is reported in ImportReport.Stale. Call it once, after
// SetModel and before any Ensure. Cost: O(C + S log S) plus one ipam.Import
// per holder and per status allocation.
func (c *Core) ImportClaims(claims []config.Claim, services []*corev1.Service) ImportReport {
	byKey := make(map[string]*corev1.Service, len(services))
	for _, s := range services {
		if s != nil {
			byKey[s.Namespace+"/"+s.Name] = s
		}
	}
	type holding struct {
		owner ipam.Owner
		kind  ipam.Kind
		pool  string
		share *ipam.Sharing
		addrs []netip.Addr
	}
	holdings := map[string]*holding{}
	var rep ImportReport
	claimed := make(map[netip.Addr]bool, len(claims))
	for _, cl := range claims {
		claimed[cl.Addr] = true
		rep.Claims++
		for _, h := range cl.Holders {
			svc := byKey[h.Namespace+"/"+h.Name]
			if svc == nil || string(svc.UID) != h.UID {
				rep.Stale = append(rep.Stale, StaleHolder{Claim: cl, Holder: h})
				continue
			}
			k := h.UID + "/" + holderAs(holderKind(h))
			hd := holdings[k]
			if hd == nil {
				hd = &holding{owner: OwnerOf(svc), kind: holderKind(h), pool: cl.Pool, share: holderSharing(h)}
				holdings[k] = hd
			}
			hd.addrs = append(hd.addrs, cl.Addr)
		}
	}
	keys := make([]string, 0, len(holdings))
	for k := range holdings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		hd := holdings[k]
		// The API server let one object exist per address, and holders
		// joined a claim only when they could share it, so the holders a
		// claim lists stay together: Import keeps holders whose terms a
		// newcomer could not meet (Services of two namespaces sharing from
		// before namespaces had to opt in, a Local sharer whose selector was
		// edited). It resolves only a claim edited by hand into holders that
		// may never share, and then, as for statuses, the older Service wins.
		slices.SortFunc(hd.addrs, netip.Addr.Compare)
		res, err := c.alloc.Import(ipam.Request{Owner: hd.owner, Kind: hd.kind, Pool: hd.pool, Sharing: hd.share}, hd.addrs)
		if len(res.Addresses) > 0 {
			rep.Allocations++
		}
		rep.Displaced = append(rep.Displaced, res.Displaced...)
		if err != nil {
			rep.Conflicts = append(rep.Conflicts, err)
		}
	}
	st := c.importStatuses(services, func(a netip.Addr) bool { return claimed[a] })
	rep.Services = st.Services
	rep.Allocations += st.Allocations
	rep.Conflicts = append(rep.Conflicts, st.Conflicts...)
	rep.Displaced = append(rep.Displaced, st.Displaced...)
	rep.FromStatus = st.FromStatus
	return rep
}

// AdoptClaim makes the Core hold what claim cl records for holder h (whose
// Service was created at created): h holds cl.Addr, counted in cl.Pool, under
// the recorded sharing terms, keeping its address of the other family. A
// holder the Core had for cl.Addr that may not share it with h loses it,
// whatever the ages: the claim is what the API server accepted. It returns
// the displaced holders, which must be decided again. Cost: one ipam.Adopt.
func (c *Core) AdoptClaim(cl config.Claim, h config.ClaimHolder, created time.Time) ([]ipam.Displacement, error) {
	kind := holderKind(h)
	owner := ipam.Owner{Namespace: h.Namespace, Name: h.Name, UID: h.UID, Created: created}
	addrs := []netip.Addr{cl.Addr}
	if held, ok := c.alloc.Addresses(owner, kind); ok {
		for _, a := range held.Addresses {
			if a.Is4() != cl.Addr.Is4() {
				addrs = append(addrs, a)
			}
		}
	}
	res, err := c.alloc.Adopt(ipam.Request{Owner: owner, Kind: kind, Pool: cl.Pool, Sharing: holderSharing(h)}, addrs)
	return res.Displaced, err
}

// Holds reports whether the Service namespace/name with UID uid holds addr
// for kind in the Core.
func (c *Core) Holds(namespace, name, uid string, kind ipam.Kind, addr netip.Addr) bool {
	h, ok := c.alloc.Lookup(addr)
	if !ok {
		return false
	}
	return slices.ContainsFunc(h.Holders, func(x ipam.Holder) bool {
		return x.Kind == kind && x.Owner.Namespace == namespace && x.Owner.Name == name && (uid == "" || x.Owner.UID == uid)
	})
}

// holderOf returns the AddressHolder that records svc holding an address
// for kind under the sharing terms held.
func holderOf(svc *corev1.Service, kind ipam.Kind, share *ipam.Sharing) v1alpha1.AddressHolder {
	h := v1alpha1.AddressHolder{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: holderAs(kind)}
	if share != nil {
		h.SharingKey, h.BackendKey, h.SharingNamespaces = share.Key, share.BackendKey, share.Namespaces
		for _, p := range share.Ports {
			h.Ports = append(h.Ports, v1alpha1.HolderPort{Protocol: cmp.Or(p.Protocol, "TCP"), Port: p.Port})
		}
	}
	return h
}

// sortHolders orders a claim's holders by namespace, name and kind, so that
// the recorded list does not depend on who joined first.
func sortHolders(hs []v1alpha1.AddressHolder) {
	slices.SortFunc(hs, func(a, b v1alpha1.AddressHolder) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name),
			strings.Compare(a.As, b.As), strings.Compare(a.UID, b.UID))
	})
}
