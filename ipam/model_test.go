package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// The randomised test below drives the Allocator and a naive reference model
// (linear scans over every address of small pools) with the same random
// sequence of single-stack requests, releases, pool edits and restarts, and
// checks after every step that both agree.

type modelAlloc struct {
	owner Owner
	addr  netip.Addr
	pool  string
	share *Sharing
}

type model struct {
	pools []PoolSpec
	holds map[string]*modelAlloc // by owner name
}

// modelPoolConfigs are the pool sets the test switches between.
var modelPoolConfigs = [][]PoolSpec{
	{
		auto("a", "198.51.100.0-198.51.100.9", "198.51.100.250-198.51.100.255").avoid().prio(1),
		auto("b", "203.0.113.252/30", "2001:db8::/126").prio(2),
		auto("m", "203.0.113.0/29").manual(),
	},
	{ // a shrinks, b grows and changes priority, m disappears.
		auto("a", "198.51.100.4-198.51.100.9").avoid().prio(3),
		auto("b", "203.0.113.248/29", "2001:db8::/125").prio(2),
	},
	{ // a stops avoiding, m comes back with part of a's old range.
		auto("a", "198.51.100.250-198.51.100.255", "198.51.100.5-198.51.100.9").prio(1),
		auto("b", "203.0.113.252/30", "2001:db8::/126").prio(2),
		auto("m", "203.0.113.0/29", "198.51.100.0-198.51.100.4").manual(),
	},
}

func (m *model) rangeOf(addr netip.Addr) (PoolSpec, bool) {
	for _, p := range m.pools {
		for _, r := range p.Ranges {
			if r.Contains(addr) {
				return p, true
			}
		}
	}
	return PoolSpec{}, false
}

func (m *model) holders(addr netip.Addr) []*modelAlloc {
	var out []*modelAlloc
	for _, al := range m.holds {
		if al.addr == addr {
			out = append(out, al)
		}
	}
	return out
}

// compatible applies the sharing rules between a requester (owner name of
// namespace ns, terms s) and every other holder of addr: keeping an address
// tolerates differing backends and missing opt-ins, joining does not.
func (m *model) compatible(owner, ns string, s *Sharing, addr netip.Addr, keeping bool) bool {
	allows := func(s *Sharing, ns string) bool {
		return slices.Contains(s.Namespaces, ns) || slices.Contains(s.Namespaces, AllNamespaces)
	}
	for _, h := range m.holders(addr) {
		if h.owner.Name == owner {
			continue
		}
		if s == nil || h.share == nil || s.Key != h.share.Key {
			return false
		}
		for _, p := range s.Ports {
			if slices.Contains(h.share.Ports, p) {
				return false
			}
		}
		if keeping {
			continue
		}
		cross := h.owner.Namespace != ns
		if cross && !(allows(s, h.owner.Namespace) && allows(h.share, ns)) {
			return false
		}
		if s.BackendKey != "" && h.share.BackendKey != "" && (cross || s.BackendKey != h.share.BackendKey) {
			return false
		}
	}
	return true
}

func usable(p PoolSpec, addr netip.Addr) bool { return !(p.AvoidBuggyIPs && avoided(addr)) }

// allAddrs enumerates a pool's addresses of family f in address order.
func allAddrs(p PoolSpec, f Family) []netip.Addr {
	var out []netip.Addr
	for _, r := range p.Ranges {
		if FamilyOf(r.From()) != f {
			continue
		}
		for a := r.From(); r.Contains(a); a = a.Next() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// predict returns the address and pool the rules give req, or false; and
// whether the address is kept despite a conflict a newcomer could not join.
func (m *model) predict(req Request) (netip.Addr, string, bool, bool) {
	addr, pool, ok := m.predictAddr(req)
	if cur := m.holds[req.Owner.Name]; ok && cur != nil && cur.addr == addr {
		return addr, pool, ok, !m.compatible(req.Owner.Name, req.Owner.Namespace, req.Sharing, addr, false)
	}
	return addr, pool, ok, false
}

func (m *model) predictAddr(req Request) (netip.Addr, string, bool) {
	f := req.Families[0]
	name, ns := req.Owner.Name, req.Owner.Namespace
	var want netip.Addr
	if len(req.Addresses) > 0 {
		want = req.Addresses[0]
	}
	if cur, ok := m.holds[name]; ok && FamilyOf(cur.addr) == f && (!want.IsValid() || want == cur.addr) &&
		m.compatible(name, ns, req.Sharing, cur.addr, true) {
		p, inPool := m.rangeOf(cur.addr)
		if req.Pool == "" || (inPool && p.Name == req.Pool) {
			return cur.addr, cur.pool, true
		}
	}
	var cands []PoolSpec
	switch {
	case want.IsValid():
		p, ok := m.rangeOf(want)
		if !ok || (req.Pool != "" && req.Pool != p.Name) {
			return netip.Addr{}, "", false
		}
		if !usable(p, want) || !m.compatible(name, ns, req.Sharing, want, false) {
			return netip.Addr{}, "", false
		}
		return want, p.Name, true
	case req.Pool != "":
		for _, p := range m.pools {
			if p.Name == req.Pool {
				cands = append(cands, p)
			}
		}
	default:
		for _, p := range m.pools {
			if p.AutoAssign {
				cands = append(cands, p)
			}
		}
		slices.SortFunc(cands, func(x, y PoolSpec) int {
			return cmp.Or(cmp.Compare(x.Priority, y.Priority), cmp.Compare(x.Name, y.Name))
		})
	}
	for _, p := range cands {
		if req.Sharing != nil {
			for _, addr := range allAddrs(p, f) {
				if len(m.holders(addr)) > 0 && usable(p, addr) && m.compatible(name, ns, req.Sharing, addr, false) {
					return addr, p.Name, true
				}
			}
		}
		for _, addr := range allAddrs(p, f) {
			if usable(p, addr) && len(m.holders(addr)) == 0 {
				return addr, p.Name, true
			}
		}
	}
	return netip.Addr{}, "", false
}

// setPools re-attributes allocations to the pool now holding their address.
func (m *model) setPools(pools []PoolSpec) {
	m.pools = pools
	for _, al := range m.holds {
		if p, ok := m.rangeOf(al.addr); ok {
			al.pool = p.Name
		}
	}
}

func (m *model) snapshot() map[string]string {
	out := make(map[string]string)
	for name, al := range m.holds {
		out[al.owner.Namespace+"/"+name+"/LoadBalancer"] = al.pool + ": " + al.addr.String()
	}
	return out
}

func TestAllocatorAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, 400, New) })
	}
}

// TestAllocatorAgainstModelWithHashCollisions forces owners onto few hash
// values, so the collided index is exercised.
func TestAllocatorAgainstModelWithHashCollisions(t *testing.T) {
	newColliding := func() *Allocator {
		a := New()
		a.testHash = func(k ownerKey) uint64 { return uint64(k.name[len(k.name)-1] % 3) }
		return a
	}
	for seed := uint64(100); seed < 110; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, 400, newColliding) })
	}
}

func runModel(t *testing.T, seed uint64, steps int, newAllocator func() *Allocator) {
	rng := rand.New(rand.NewPCG(seed, seed))
	owners := make([]Owner, 8)
	for i := range owners {
		owners[i] = svc(fmt.Sprintf("o%d", i), rng.IntN(3)) // equal ages happen: UIDs break ties
		if i%2 == 1 {
			owners[i].Namespace = "ns2"
		}
	}
	var probe []netip.Addr
	for _, cfg := range modelPoolConfigs {
		for _, p := range cfg {
			probe = append(probe, allAddrs(p, IPv4)...)
			probe = append(probe, allAddrs(p, IPv6)...)
		}
	}
	probe = append(probe, netip.MustParseAddr("203.0.113.100"))
	slices.SortFunc(probe, netip.Addr.Compare)
	probe = slices.Compact(probe)

	a := newAllocator()
	m := &model{holds: map[string]*modelAlloc{}}
	mustSetPools(t, a, modelPoolConfigs[0]...)
	m.setPools(modelPoolConfigs[0])

	for step := 0; step < steps; step++ {
		o := owners[rng.IntN(len(owners))]
		var what string
		switch op := rng.IntN(20); {
		case op < 12:
			req := lb(o)
			if rng.IntN(4) == 0 {
				req = req.fams(IPv6)
			}
			switch rng.IntN(4) {
			case 0:
				req = req.addrs(probe[rng.IntN(len(probe))].String())
				req.Families = []Family{FamilyOf(req.Addresses[0])}
			case 1:
				req = req.pool([]string{"a", "b", "m", "gone"}[rng.IntN(4)])
			}
			req.Subject.Namespace = o.Namespace
			if rng.IntN(2) == 0 {
				req = req.share("k", []string{"TCP/80", "TCP/443", "UDP/53"}[rng.IntN(3)])
				req = req.backend([]string{"", "", "x", "y"}[rng.IntN(4)])
				switch rng.IntN(4) {
				case 0:
					req = req.allow("*")
				case 1:
					req = req.allow("ns", "ns2")
				}
			}
			what = fmt.Sprintf("allocate %s/%s %v pool=%q addrs=%v sharing=%v", o.Namespace, o.Name, req.Families, req.Pool, req.Addresses, req.Sharing)
			wantAddr, wantPool, wantOK, wantConflict := m.predict(req)
			before := snapshot(a)
			dry, dryErr := a.DryRun(req)
			if diff := gocmp.Diff(before, snapshot(a)); diff != "" {
				t.Fatalf("step %d %s: DryRun changed the state (-before +after):\n%s", step, what, diff)
			}
			got, err := a.Allocate(req)
			if fmt.Sprint(dryErr) != fmt.Sprint(err) || fmt.Sprint(dry.Conflict) != fmt.Sprint(got.Conflict) {
				t.Fatalf("step %d %s: DryRun gave %v, %v; Allocate %v, %v", step, what, dry, dryErr, got, err)
			}
			if (got.Conflict != nil) != wantConflict {
				t.Fatalf("step %d %s: conflict %v, model expects one: %v", step, what, got.Conflict, wantConflict)
			}
			dry.Conflict, got.Conflict = nil, nil
			if !gocmp.Equal(dry, got, cmpOpts) {
				t.Fatalf("step %d %s: DryRun gave %v; Allocate %v", step, what, dry, got)
			}
			if wantOK {
				if err != nil {
					t.Fatalf("step %d %s: model gives %s from %q, allocator fails: %v", step, what, wantAddr, wantPool, err)
				}
				if diff := gocmp.Diff(res(wantPool, wantAddr.String()), got, cmpOpts); diff != "" {
					t.Fatalf("step %d %s: (-model +allocator):\n%s", step, what, diff)
				}
				m.holds[o.Name] = &modelAlloc{owner: o, addr: wantAddr, pool: wantPool, share: req.Sharing}
			} else if err == nil {
				t.Fatalf("step %d %s: model refuses, allocator gives %v", step, what, got)
			} else if !slices.ContainsFunc([]error{ErrPoolExhausted, ErrNotInAnyPool, ErrNotAllowed, ErrInUse, ErrNoSuchPool, ErrFamilyUnavailable, ErrSharingRefused, ErrInvalidRequest}, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("step %d %s: error %v wraps no sentinel", step, what, err)
			}
		case op < 17:
			what = "release " + o.Name
			_, had := m.holds[o.Name]
			if got := a.Release(o, LoadBalancer); got != had {
				t.Fatalf("step %d %s: Release = %v, want %v", step, what, got, had)
			}
			delete(m.holds, o.Name)
		case op < 19:
			cfg := modelPoolConfigs[rng.IntN(len(modelPoolConfigs))]
			what = "set pools"
			mustSetPools(t, a, cfg...)
			m.setPools(cfg)
		default:
			what = "restart"
			a = restart(t, rng, a, m, newAllocator())
		}
		checkAgainstModel(t, fmt.Sprintf("step %d %s", step, what), a, m, probe)
	}
}

// restart imports the model's allocations into a new Allocator in random order.
func restart(t *testing.T, rng *rand.Rand, old *Allocator, m *model, a *Allocator) *Allocator {
	t.Helper()
	mustSetPools(t, a, m.pools...)
	names := make([]string, 0, len(m.holds))
	for name := range m.holds {
		names = append(names, name)
	}
	slices.Sort(names)
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, name := range names {
		al := m.holds[name]
		req := lb(al.owner).pool(al.pool)
		req.Sharing = al.share
		if _, err := a.Import(req, []netip.Addr{al.addr}); err != nil {
			t.Fatalf("restart: Import(%s): %v", name, err)
		}
	}
	if diff := gocmp.Diff(old.Stats(), a.Stats(), cmpOpts); diff != "" {
		t.Fatalf("restart changed stats (-before +after):\n%s", diff)
	}
	return a
}

func checkAgainstModel(t *testing.T, where string, a *Allocator, m *model, probe []netip.Addr) {
	t.Helper()
	if diff := gocmp.Diff(m.snapshot(), snapshot(a)); diff != "" {
		t.Fatalf("%s: allocations (-model +allocator):\n%s", where, diff)
	}
	for _, addr := range probe {
		var want []string
		for _, h := range m.holders(addr) {
			want = append(want, h.owner.Name)
		}
		var got []string
		h, _ := a.Lookup(addr)
		for _, x := range h.Holders {
			got = append(got, x.Owner.Name)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Fatalf("%s: holders of %s (-model +allocator):\n%s", where, addr, gocmp.Diff(want, got))
		}
	}
	st := a.Stats()
	for _, p := range m.pools {
		i := slices.IndexFunc(st.Pools, func(ps PoolStats) bool { return ps.Name == p.Name })
		if i < 0 {
			t.Fatalf("%s: no stats for pool %q", where, p.Name)
		}
		for _, f := range []Family{IPv4, IPv6} {
			var total, used uint64
			for _, addr := range allAddrs(p, f) {
				if !usable(p, addr) {
					continue
				}
				total++
				if len(m.holders(addr)) > 0 {
					used++
				}
			}
			got := st.Pools[i].IPv4
			if f == IPv6 {
				got = st.Pools[i].IPv6
			}
			want := FamilyStats{Total: CountOf(total), Used: CountOf(used), Free: CountOf(total - used)}
			if want != got {
				t.Fatalf("%s: pool %q %s stats (-model +allocator):\n%s", where, p.Name, f, gocmp.Diff(want, got, cmpOpts))
			}
		}
	}
	checkRunSets(t, where, a)
}

// checkRunSets verifies that every range's runs are merged and match the held map.
func checkRunSets(t *testing.T, where string, a *Allocator) {
	t.Helper()
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, pr := range a.pools.ranges {
		var prevHi u128
		first := true
		var n u128
		pr.used.ascend(func(lo, hi u128) bool {
			if hi.less(lo) || (!first && !prevHi.inc().less(lo)) {
				t.Fatalf("%s: range %s: run %v-%v follows %v: not ordered and merged", where, pr.r, lo, hi, prevHi)
			}
			for k := lo; ; k = k.inc() {
				if _, ok := a.held[idOf(pr.addr(k))]; !ok {
					t.Fatalf("%s: range %s: %s is marked used but not held", where, pr.r, pr.addr(k))
				}
				if k == hi {
					break
				}
			}
			n = n.add(hi.sub(lo).inc())
			prevHi, first = hi, false
			return true
		})
		if n != pr.used.count() {
			t.Fatalf("%s: range %s: count %v, runs hold %v", where, pr.r, pr.used.count(), n)
		}
	}
	for id := range a.held {
		addr := id.addr()
		if pr := a.pools.rangeOf(addr); pr != nil {
			if k, ok := pr.key(addr); ok && !pr.used.has(k) {
				t.Fatalf("%s: %s is held but not marked used", where, addr)
			}
		}
	}
}
