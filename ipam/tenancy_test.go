package ipam

import (
	"net/netip"
	"testing"
)

// tenant returns an owner of namespace ns, created age minutes after epoch.
func tenant(ns, name string, age int) Owner {
	o := svc(name, age)
	o.Namespace, o.UID = ns, "uid-"+ns+"-"+name
	return o
}

// allocateReport allocates r and returns its addresses and the text of the
// conflict it keeps them despite ("" for none).
func allocateReport(r Request) func(*Allocator) (any, error) {
	return func(a *Allocator) (any, error) {
		res, err := a.Allocate(r)
		out := struct {
			Addresses []netip.Addr
			Conflict  string
		}{Addresses: res.Addresses}
		if res.Conflict != nil {
			out.Conflict = res.Conflict.Error()
		}
		return out, err
	}
}

func kept(conflict string, addrs ...string) any {
	return struct {
		Addresses []netip.Addr
		Conflict  string
	}{Addresses: parseAddrs(addrs...), Conflict: conflict}
}

// TestCrossNamespaceSharing: keys match across namespaces only when both
// Services allow each other's namespace.
func TestCrossNamespaceSharing(t *testing.T) {
	webA, webB, apiB, anyC := tenant("tenant-a", "web", 1), tenant("tenant-b", "web", 2), tenant("tenant-b", "api", 3), tenant("tenant-c", "any", 4)
	a := New()
	mustSetPools(t, a, auto("p", "198.51.100.0/30"))
	runSteps(t, a, []step{
		{name: "tenant-a's web allows tenant-b", do: allocate(lb(webA).share("k", "TCP/80").allow("tenant-b")), want: res("p", "198.51.100.0")},
		{name: "tenant-b's web sets the key without opting in: a fresh address", do: allocate(lb(webB).share("k", "TCP/443")), want: res("p", "198.51.100.1")},
		{name: "asking for tenant-a's address does not help", do: dryRun(lb(webB).share("k", "TCP/443").addrs("198.51.100.0")), wantErr: ErrInUse},
		{name: "tenant-b's api allows tenant-a: it joins", do: allocate(lb(apiB).share("k", "TCP/443").allow("tenant-a")), want: res("p", "198.51.100.0")},
		{name: "tenant-c allows everyone, but tenant-a does not allow tenant-c", do: allocate(lb(anyC).share("k", "TCP/8080").allow("*")), want: res("p", "198.51.100.2")},
		{name: "a key of another namespace is not a key of this one", do: allocate(lb(tenant("tenant-b", "guess", 5)).share("k", "TCP/22")), want: res("p", "198.51.100.1")},
		{name: "the shared address has the two that opted in", do: lookup("198.51.100.0"), want: Holding{Pool: "p", Holders: []Holder{
			{Owner: webA, Kind: LoadBalancer, Pool: "p"}, {Owner: apiB, Kind: LoadBalancer, Pool: "p"}}}},
		{name: "a Local sharer may join Cluster holders of another namespace", do: dryRun(lb(tenant("tenant-b", "local", 6)).share("k", "UDP/53").allow("tenant-a").backend("sel")), want: res("p", "198.51.100.0")},
	})
}

// TestEditKeepsSharedAddress: an edit that makes a holder's terms
// incompatible with its co-holders only by backends does not move it (the
// chaos soak's externalTrafficPolicy edit); an edit of its key or ports,
// which asks for another address, does.
func TestEditKeepsSharedAddress(t *testing.T) {
	a := New()
	mustSetPools(t, a, auto("p", "198.51.100.128/30"))
	runSteps(t, a, []step{
		{name: "s1 Local", do: allocate(lb(s1).share("k1", "TCP/80").backend("sel-x")), want: res("p", "198.51.100.128")},
		{name: "s2 Local, same selector, shares", do: allocate(lb(s2).share("k1", "TCP/443").backend("sel-x")), want: res("p", "198.51.100.128")},
		{name: "s2 edited to Cluster: stays, nothing to report", do: allocateReport(lb(s2).share("k1", "TCP/443")), want: kept("", "198.51.100.128")},
		{name: "s2 back to Local with another selector: stays, reported", do: allocateReport(lb(s2).share("k1", "TCP/443").backend("sel-y")),
			want: kept("ipam: allocate ns/s2: address 198.51.100.128 cannot be shared with ns/s1: they do not select the same backends, which externalTrafficPolicy Local requires", "198.51.100.128")},
		{name: "a newcomer with s2's selector cannot join", do: allocate(lb(s3).share("k1", "UDP/53").backend("sel-y")), want: res("p", "198.51.100.129")},
		{name: "s1 edited to Cluster: the conflict is gone", do: allocateReport(lb(s1).share("k1", "TCP/80")), want: kept("", "198.51.100.128")},
		{name: "s2 takes s1's port: it asked for another address", do: allocate(lb(s2).share("k1", "TCP/80").backend("sel-y")), want: res("p", "198.51.100.129")},
		{name: "s1 keeps its address throughout", do: addresses(s1, LoadBalancer), want: Result{Pool: "p", Addresses: parseAddrs("198.51.100.128"),
			Sharing: &Sharing{Key: "k1", Ports: parsePorts("TCP/80")}}},
	})
}

// TestImportKeepsCrossNamespaceSharers: Services of two namespaces that
// share an address from before namespaces had to opt in keep it through a
// restart and their next reconciles, each told its part; nobody new joins.
func TestImportKeepsCrossNamespaceSharers(t *testing.T) {
	webA, webB := tenant("tenant-a", "web", 1), tenant("tenant-b", "web", 2)
	for _, order := range [][]Owner{{webA, webB}, {webB, webA}} {
		a := New()
		mustSetPools(t, a, auto("p", "198.51.100.0/30"))
		terms := map[Owner]Request{
			webA: lb(webA).share("k", "TCP/80").backend("sel"),
			webB: lb(webB).share("k", "TCP/443").backend("sel"),
		}
		var steps []step
		for _, o := range order {
			steps = append(steps, step{name: "import " + o.Namespace, do: importAddrs(terms[o].pool("p"), "198.51.100.0"),
				want: ImportResult{Pool: "p", Addresses: parseAddrs("198.51.100.0")}})
		}
		steps = append(steps, []step{
			{name: "tenant-b reconciles: kept, told to allow tenant-a", do: allocateReport(terms[webB]),
				want: kept("ipam: allocate tenant-b/web: address 198.51.100.0 is shared with services of other namespaces that have not both allowed it; the owner does not allow namespaces tenant-a; not every other holder allows namespace tenant-b", "198.51.100.0")},
			{name: "tenant-a opts in: kept, waiting for tenant-b", do: allocateReport(terms[webA].allow("tenant-b")),
				want: kept("ipam: allocate tenant-a/web: address 198.51.100.0 is shared with services of other namespaces that have not both allowed it; not every other holder allows namespace tenant-a", "198.51.100.0")},
			{name: "a newcomer of tenant-c allowing everyone cannot join", do: allocate(lb(tenant("tenant-c", "x", 3)).share("k", "UDP/53").allow("*")), want: res("p", "198.51.100.1")},
			{name: "tenant-b opts in: both Local across namespaces is still reported", do: allocateReport(terms[webB].allow("tenant-a")),
				want: kept("ipam: allocate tenant-b/web: address 198.51.100.0 cannot be shared with a service of another namespace: both use externalTrafficPolicy Local, and Services of different namespaces never select the same backends", "198.51.100.0")},
			{name: "tenant-b goes Cluster: nothing left to report", do: allocateReport(lb(webB).share("k", "TCP/443").allow("tenant-a")), want: kept("", "198.51.100.0")},
			{name: "both still hold it", do: lookup("198.51.100.0"), want: Holding{Pool: "p", Holders: []Holder{
				{Owner: order[0], Kind: LoadBalancer, Pool: "p"}, {Owner: order[1], Kind: LoadBalancer, Pool: "p"}}}},
		}...)
		runSteps(t, a, steps)
	}
}
