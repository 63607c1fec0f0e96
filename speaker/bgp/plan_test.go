package bgp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// simulate returns cur after p was applied in full.
func simulate(cur applied, p plan) applied {
	next := newApplied()
	for k, v := range cur.sessions {
		next.sessions[k] = v
	}
	for k, v := range cur.neighborSets {
		next.neighborSets[k] = v
	}
	for k, v := range cur.groups {
		next.groups[k] = v
	}
	for k, v := range cur.paths {
		next.paths[k] = v
	}
	for _, a := range p.deleteSessions {
		delete(next.sessions, a)
	}
	for _, s := range p.updateSessions {
		next.sessions[s.Address] = s
	}
	for _, a := range p.addNeighborSets {
		next.neighborSets[a] = true
	}
	for _, g := range p.addGroups {
		next.groups[g.key()] = g
	}
	for _, ps := range p.putPaths {
		next.paths[ps.prefix] = ps.tags
	}
	for _, pf := range p.deletePaths {
		delete(next.paths, pf)
	}
	for _, s := range p.addSessions {
		next.sessions[s.Address] = s
	}
	for _, g := range p.removeGroups {
		delete(next.groups, g.key())
	}
	for _, a := range p.removeNeighborSets {
		delete(next.neighborSets, a)
	}
	return next
}

// planView is a plan in comparable form.
type planView struct {
	DeleteSessions, AddSessions         []string
	UpdateSessions                      []string
	AddNeighborSets, RemoveNeighborSets []string
	AddGroups, RemoveGroups             []string // "id peer nexthop lp communities"
	PutPaths                            map[string][]uint16
	DeletePaths                         []string
}

func viewPlan(p plan) planView {
	var v planView
	for _, a := range p.deleteSessions {
		v.DeleteSessions = append(v.DeleteSessions, a.String())
	}
	for _, s := range p.addSessions {
		v.AddSessions = append(v.AddSessions, s.Address.String())
	}
	for _, s := range p.updateSessions {
		v.UpdateSessions = append(v.UpdateSessions, s.Address.String())
	}
	for _, a := range p.addNeighborSets {
		v.AddNeighborSets = append(v.AddNeighborSets, a.String())
	}
	for _, a := range p.removeNeighborSets {
		v.RemoveNeighborSets = append(v.RemoveNeighborSets, a.String())
	}
	gs := func(g group) string {
		s := groupName(g.id) + " " + g.peer.String()
		if g.nextHop.IsValid() {
			s += " nh=" + g.nextHop.String()
		}
		if g.attrs.localPref != 0 {
			s += " lp"
		}
		for _, c := range g.attrs.communities {
			s += " " + formatCommunity(c)
		}
		return s
	}
	for _, g := range p.addGroups {
		v.AddGroups = append(v.AddGroups, gs(g))
	}
	for _, g := range p.removeGroups {
		v.RemoveGroups = append(v.RemoveGroups, gs(g))
	}
	if len(p.putPaths) > 0 {
		v.PutPaths = map[string][]uint16{}
	}
	for _, ps := range p.putPaths {
		v.PutPaths[ps.prefix.String()] = ps.tags
	}
	for _, pf := range p.deletePaths {
		v.DeletePaths = append(v.DeletePaths, pf.String())
	}
	return v
}

func TestMakePlanSteps(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	r1 := netip.MustParsePrefix("203.0.113.130/32")
	r2 := netip.MustParsePrefix("203.0.113.131/32")
	v6 := netip.MustParsePrefix("2001:db8:200::5/128")
	nh6 := netip.MustParseAddr("2001:db8:1::11")
	sess := func(addr netip.Addr, password string) sessionConfig {
		return Peer{Address: addr, PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second, Password: password}.session()
	}
	plain := routeAttrs{}
	comm := routeAttrs{communities: []uint32{64512<<16 | 100}}
	route := func(p netip.Prefix, nh netip.Addr, attrs routeAttrs) desiredRoute {
		return desiredRoute{prefix: p, nextHop: nh, attrs: attrs}
	}
	state := func(sessions []sessionConfig, routes map[netip.Addr][]desiredRoute) desiredState {
		d := desiredState{sessions: map[netip.Addr]sessionConfig{}, routes: routes}
		for _, s := range sessions {
			d.sessions[s.Address] = s
		}
		return d
	}
	steps := []struct {
		name string
		want desiredState
		plan planView
	}{
		{
			name: "two peers, one route each",
			want: state([]sessionConfig{sess(a, ""), sess(b, "")}, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, plain)},
				b: {route(r2, netip.Addr{}, plain)},
			}),
			plan: planView{
				AddSessions:     []string{"198.51.100.1", "198.51.100.2"},
				AddNeighborSets: []string{"198.51.100.1", "198.51.100.2"},
				AddGroups:       []string{"herald-group-0 198.51.100.1", "herald-group-1 198.51.100.2"},
				PutPaths:        map[string][]uint16{r1.String(): {0}, r2.String(): {1}},
			},
		},
		{
			name: "the same state again does nothing",
			want: state([]sessionConfig{sess(a, ""), sess(b, "")}, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, plain)},
				b: {route(r2, netip.Addr{}, plain)},
			}),
			plan: planView{},
		},
		{
			name: "r1 to b as well: only r1 is re-advertised, with both tags",
			want: state([]sessionConfig{sess(a, ""), sess(b, "")}, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, plain)},
				b: {route(r1, netip.Addr{}, plain), route(r2, netip.Addr{}, plain)},
			}),
			plan: planView{PutPaths: map[string][]uint16{r1.String(): {0, 1}}},
		},
		{
			name: "a community on r1 for a: a new group; a's old group goes once unused",
			want: state([]sessionConfig{sess(a, ""), sess(b, "")}, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, comm)},
				b: {route(r1, netip.Addr{}, plain), route(r2, netip.Addr{}, plain)},
			}),
			plan: planView{
				AddGroups:    []string{"herald-group-2 198.51.100.1 64512:100"},
				PutPaths:     map[string][]uint16{r1.String(): {1, 2}},
				RemoveGroups: []string{"herald-group-0 198.51.100.1"},
			},
		},
		{
			name: "an IPv6 route to a with its own next hop, and a's password changes",
			want: state([]sessionConfig{sess(a, "s3cret"), sess(b, "")}, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, comm), route(v6, nh6, plain)},
				b: {route(r1, netip.Addr{}, plain), route(r2, netip.Addr{}, plain)},
			}),
			plan: planView{
				DeleteSessions: []string{"198.51.100.1"},
				AddSessions:    []string{"198.51.100.1"},
				AddGroups:      []string{"herald-group-0 198.51.100.1 nh=2001:db8:1::11"},
				PutPaths:       map[string][]uint16{v6.String(): {0}},
			},
		},
		{
			name: "b goes: its session, its only route, its group and its neighbour set",
			want: state([]sessionConfig{sess(a, "s3cret")}, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, comm), route(v6, nh6, plain)},
			}),
			plan: planView{
				DeleteSessions:     []string{"198.51.100.2"},
				PutPaths:           map[string][]uint16{r1.String(): {2}},
				DeletePaths:        []string{r2.String()},
				RemoveGroups:       []string{"herald-group-1 198.51.100.2"},
				RemoveNeighborSets: []string{"198.51.100.2"},
			},
		},
		{
			name: "routes of a peer without a session are not advertised",
			want: state(nil, map[netip.Addr][]desiredRoute{
				a: {route(r1, netip.Addr{}, comm)},
			}),
			plan: planView{
				DeleteSessions:     []string{"198.51.100.1"},
				DeletePaths:        []string{r1.String(), v6.String()},
				RemoveGroups:       []string{"herald-group-0 198.51.100.1 nh=2001:db8:1::11", "herald-group-2 198.51.100.1 64512:100"},
				RemoveNeighborSets: []string{"198.51.100.1"},
			},
		},
		{
			name: "ids are reused from the lowest",
			want: state([]sessionConfig{sess(b, "")}, map[netip.Addr][]desiredRoute{
				b: {route(r2, netip.Addr{}, plain)},
			}),
			plan: planView{
				AddSessions:     []string{"198.51.100.2"},
				AddNeighborSets: []string{"198.51.100.2"},
				AddGroups:       []string{"herald-group-0 198.51.100.2"},
				PutPaths:        map[string][]uint16{r2.String(): {0}},
			},
		},
	}
	cur := newApplied()
	for _, step := range steps {
		p, dropped := makePlan(cur, step.want, nil)
		if len(dropped) > 0 {
			t.Fatalf("%s: dropped %v", step.name, dropped)
		}
		if diff := cmp.Diff(step.plan, viewPlan(p)); diff != "" {
			t.Fatalf("%s: plan (-want +got):\n%s", step.name, diff)
		}
		if got := p.empty(); got != (diff(planView{}, viewPlan(p)) == "") {
			t.Fatalf("%s: empty() = %v for %+v", step.name, got, viewPlan(p))
		}
		cur = simulate(cur, p)
		// Applying the same state again must do nothing.
		if again, _ := makePlan(cur, step.want, nil); !again.empty() {
			t.Fatalf("%s: not idempotent, second plan %+v", step.name, viewPlan(again))
		}
	}
}

func diff(a, b planView) string { return cmp.Diff(a, b) }

func TestMakePlanGroupLimit(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	cur := newApplied()
	routes := make([]desiredRoute, 0, maxGroups+2)
	base := netip.MustParseAddr("2001:db8:300::").As16()
	for i := range maxGroups + 2 {
		b := base
		b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		routes = append(routes, desiredRoute{
			prefix: netip.PrefixFrom(netip.AddrFrom16(b), 128),
			attrs:  routeAttrs{communities: []uint32{uint32(i)}},
		})
	}
	want := desiredState{
		sessions: map[netip.Addr]sessionConfig{a: Peer{Address: a, PeerASN: 1, MyASN: 2, HoldTime: 90 * time.Second}.session()},
		routes:   map[netip.Addr][]desiredRoute{a: routes},
	}
	p, dropped := makePlan(cur, want, nil)
	if len(p.addGroups) != maxGroups || len(p.putPaths) != maxGroups {
		t.Errorf("groups %d, paths %d; want %d of each", len(p.addGroups), len(p.putPaths), maxGroups)
	}
	if diff := cmp.Diff(map[netip.Addr]int{a: 2}, dropped, cmpAddrs); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

// TestSessionChangeOf: a change of the BFD settings alone is applied in
// place unless a BFD session is live (GoBGP would restart it, and the router
// would reset the session itself); a change to anything the BGP session was
// opened with re-creates the session.
func TestSessionChangeOf(t *testing.T) {
	withBFD := Peer{
		Address: netip.MustParseAddr("198.51.100.1"), PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second,
		BFD: BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 3},
	}
	withoutBFD := withBFD
	withoutBFD.BFD = BFD{}
	for _, tt := range []struct {
		name    string
		from    Peer
		bfdLive bool
		edit    func(*Peer)
		want    sessionChange
	}{
		{"nothing", withBFD, true, func(*Peer) {}, sessionSame},
		{"the peer's name", withBFD, true, func(p *Peer) { p.Name = "renamed" }, sessionSame},
		{"BFD defaults written out", withBFD, true, func(p *Peer) { p.BFD = BFD{Enabled: true} }, sessionSame},
		{"timers of BFD that stays off", withoutBFD, false, func(p *Peer) { p.BFD.Multiplier = 5 }, sessionSame},
		{"BFD turned on", withoutBFD, false, func(p *Peer) { p.BFD.Enabled = true }, sessionUpdate},
		{"BFD multiplier 3 to 4, BFD down", withBFD, false, func(p *Peer) { p.BFD.Multiplier = 4 }, sessionUpdate},
		{"BFD receive interval, BFD down", withBFD, false, func(p *Peer) { p.BFD.MinRx = 500 * time.Millisecond }, sessionUpdate},
		{"BFD transmit interval, BFD down", withBFD, false, func(p *Peer) { p.BFD.MinTx = 100 * time.Millisecond }, sessionUpdate},
		{"BFD turned off, BFD down", withBFD, false, func(p *Peer) { p.BFD.Enabled = false }, sessionUpdate},
		{"BFD multiplier 3 to 4, BFD live", withBFD, true, func(p *Peer) { p.BFD.Multiplier = 4 }, sessionRecreate},
		{"BFD receive interval, BFD live", withBFD, true, func(p *Peer) { p.BFD.MinRx = 500 * time.Millisecond }, sessionRecreate},
		{"BFD transmit interval, BFD live", withBFD, true, func(p *Peer) { p.BFD.MinTx = 100 * time.Millisecond }, sessionRecreate},
		{"BFD turned off, BFD live", withBFD, true, func(p *Peer) { p.BFD.Enabled = false }, sessionRecreate},
		{"port", withBFD, false, func(p *Peer) { p.Port = 1179 }, sessionRecreate},
		{"peer ASN", withBFD, false, func(p *Peer) { p.PeerASN = 64520 }, sessionRecreate},
		{"own ASN", withBFD, false, func(p *Peer) { p.MyASN = 64521 }, sessionRecreate},
		{"password", withBFD, false, func(p *Peer) { p.Password = "s3cret" }, sessionRecreate},
		{"hold time", withBFD, false, func(p *Peer) { p.HoldTime = 9 * time.Second }, sessionRecreate},
		{"keepalive time", withBFD, false, func(p *Peer) { p.KeepaliveTime = 10 * time.Second }, sessionRecreate},
		{"eBGP multihop", withoutBFD, false, func(p *Peer) { p.EBGPMultihop = 2 }, sessionRecreate},
		{"source address", withBFD, false, func(p *Peer) { p.SourceAddress = netip.MustParseAddr("198.51.100.11") }, sessionRecreate},
		{"passive", withBFD, false, func(p *Peer) { p.Passive = true }, sessionRecreate},
		{"graceful restart", withBFD, false, func(p *Peer) { p.GracefulRestart.Enabled = true }, sessionRecreate},
		{"BFD multiplier and the password, BFD down", withBFD, false, func(p *Peer) { p.BFD.Multiplier, p.Password = 4, "s3cret" }, sessionRecreate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			to := tt.from
			tt.edit(&to)
			if got := sessionChangeOf(tt.from.session(), to.session(), tt.bfdLive); got != tt.want {
				t.Errorf("sessionChangeOf = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPlanSessions: each kind of change lands in its own list, sorted by
// address; a BFD change applied in place neither deletes nor adds the
// session.
func TestPlanSessions(t *testing.T) {
	var addrs []netip.Addr
	for i := range 6 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}))
	}
	peer := func(i int, edit func(*Peer)) sessionConfig {
		p := Peer{Address: addrs[i], PeerASN: 64512, MyASN: 64513, HoldTime: 90 * time.Second, BFD: BFD{Enabled: true}}
		edit(&p)
		return p.session()
	}
	same := func(*Peer) {}
	cur := newApplied()
	for _, i := range []int{0, 1, 2, 3, 5} {
		cur.sessions[addrs[i]] = peer(i, same)
	}
	want := desiredState{sessions: map[netip.Addr]sessionConfig{}}
	for _, s := range []sessionConfig{
		peer(0, func(p *Peer) { p.Password = "s3cret" }), // re-created
		peer(1, func(p *Peer) { p.BFD.Multiplier = 4 }),  // BFD down: updated in place
		peer(2, same), // untouched
		peer(4, same), // new; 198.51.100.4 goes
		peer(5, func(p *Peer) { p.BFD.Multiplier = 4 }), // BFD live: re-created
	} {
		want.sessions[s.Address] = s
	}
	del, update, add := planSessions(cur, want, map[netip.Addr]bool{addrs[2]: true, addrs[5]: true})
	got := planView{}
	for _, a := range del {
		got.DeleteSessions = append(got.DeleteSessions, a.String())
	}
	for _, s := range update {
		got.UpdateSessions = append(got.UpdateSessions, s.Address.String())
	}
	for _, s := range add {
		got.AddSessions = append(got.AddSessions, s.Address.String())
	}
	wantView := planView{
		DeleteSessions: []string{"198.51.100.1", "198.51.100.4", "198.51.100.6"},
		UpdateSessions: []string{"198.51.100.2"},
		AddSessions:    []string{"198.51.100.1", "198.51.100.5", "198.51.100.6"},
	}
	if d := cmp.Diff(wantView, got); d != "" {
		t.Errorf("planSessions (-want +got):\n%s", d)
	}
	if len(update) == 1 && update[0] != want.sessions[addrs[1]] {
		t.Errorf("updated session %+v, want the new settings %+v", update[0], want.sessions[addrs[1]])
	}
}
