package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go4.org/netipx"
)

// cmpOpts compares results, errors (with errors.Is), addresses and counts.
var cmpOpts = cmp.Options{
	cmpopts.EquateErrors(),
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b Count) bool { return a == b }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// svc returns an owner in namespace "ns", created age minutes after epoch.
func svc(name string, age int) Owner {
	return Owner{Namespace: "ns", Name: name, UID: "uid-" + name, Created: epoch.Add(time.Duration(age) * time.Minute)}
}

// lb returns an IPv4 LoadBalancer request for owner in namespace "ns".
func lb(o Owner) Request {
	return Request{Owner: o, Subject: Subject{Namespace: o.Namespace}, Kind: LoadBalancer, Families: []Family{IPv4}}
}

func (r Request) fams(f ...Family) Request      { r.Families = f; return r }
func (r Request) requireAll() Request           { r.RequireAllFamilies = true; return r }
func (r Request) pool(name string) Request      { r.Pool = name; return r }
func (r Request) kind(k Kind) Request           { r.Kind = k; return r }
func (r Request) inNamespace(ns string) Request { r.Subject.Namespace = ns; return r }
func (r Request) addrs(s ...string) Request     { r.Addresses = parseAddrs(s...); return r }
func (r Request) share(key string, ports ...string) Request {
	r.Sharing = &Sharing{Key: key, Ports: parsePorts(ports...)}
	return r
}
func (r Request) backend(key string) Request {
	s := *r.Sharing
	s.BackendKey = key
	r.Sharing = &s
	return r
}

func (r Request) allow(namespaces ...string) Request {
	s := *r.Sharing
	s.Namespaces = namespaces
	r.Sharing = &s
	return r
}

// in returns the request for the owner moved to namespace ns.
func (r Request) in(ns string) Request {
	r.Owner.Namespace, r.Subject.Namespace = ns, ns
	return r
}

func parsePorts(ports ...string) []PortProto {
	var out []PortProto
	for _, p := range ports {
		var pp PortProto
		proto, port, _ := strings.Cut(p, "/")
		pp.Protocol = proto
		fmt.Sscan(port, &pp.Port)
		out = append(out, pp)
	}
	return out
}

func parseAddrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(s))
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

// ranges parses CIDRs and first-last ranges.
func ranges(s ...string) []netipx.IPRange {
	var out []netipx.IPRange
	for _, x := range s {
		if strings.Contains(x, "/") {
			out = append(out, netipx.RangeOfPrefix(netip.MustParsePrefix(x)))
		} else {
			out = append(out, netipx.MustParseIPRange(x))
		}
	}
	return out
}

// auto returns an auto-assign pool admitting every Service.
func auto(name string, r ...string) PoolSpec {
	return PoolSpec{Name: name, Ranges: ranges(r...), AutoAssign: true, Priority: DefaultPriority}
}

func (p PoolSpec) avoid() PoolSpec                { p.AvoidBuggyIPs = true; return p }
func (p PoolSpec) manual() PoolSpec               { p.AutoAssign = false; return p }
func (p PoolSpec) prio(n int32) PoolSpec          { p.Priority = n; return p }
func (p PoolSpec) admit(ns ...string) PoolSpec    { p.ServiceAdmission = namespaces(ns); return p }
func (p PoolSpec) external(ns ...string) PoolSpec { p.ExternalIPAdmission = namespaces(ns); return p }

// namespaces admits Services in the listed namespaces.
type namespaces []string

func (n namespaces) Admits(s Subject) bool { return slices.Contains(n, s.Namespace) }

func res(pool string, addrs ...string) Result {
	return Result{Pool: pool, Addresses: parseAddrs(addrs...)}
}

// snapshot renders every allocation as "ns/name/Kind" -> "pool: addr addr".
func snapshot(a *Allocator) map[string]string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make(map[string]string)
	a.forOwners(func(al *allocation) {
		var s []string
		for _, addr := range al.list() {
			s = append(s, addr.String())
		}
		out[al.ns+"/"+al.name+"/"+al.kind.String()] = a.poolName(al) + ": " + strings.Join(s, " ")
	})
	return out
}

func mustSetPools(t testing.TB, a *Allocator, specs ...PoolSpec) {
	t.Helper()
	if err := a.SetPools(specs); err != nil {
		t.Fatalf("SetPools: %v", err)
	}
}
