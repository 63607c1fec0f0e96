package config

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func meta(name string, age int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Minute))}
}

func ipPool(name string, age int, addrs ...string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: meta(name, age), Spec: v1alpha1.IPPoolSpec{Addresses: addrs}}
}

func peer(name string, age int, addr string) *v1alpha1.BGPPeer {
	return &v1alpha1.BGPPeer{ObjectMeta: meta(name, age), Spec: v1alpha1.BGPPeerSpec{PeerAddress: addr, PeerASN: 65001, MyASN: 65000}}
}

func node(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func ref(kind, name string) ObjectRef { return ObjectRef{Kind: kind, Name: name} }

// checkProblems compares every object's problems with want.
func checkProblems(t *testing.T, m *Model, want []ObjectProblems) {
	t.Helper()
	if diff := cmp.Diff(want, m.Problems()); diff != "" {
		t.Errorf("Problems() (-want +got):\n%s", diff)
	}
}

func rangesOf(t *testing.T, m *Model, pool string) string {
	t.Helper()
	p, ok := m.Pool(pool)
	if !ok {
		t.Fatalf("pool %q missing from the model", pool)
	}
	return formatRanges(p.Ranges)
}

func TestOverlappingPoolsOlderKeepsSharedAddresses(t *testing.T) {
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{
		ipPool("b-newer", 2, "198.51.100.128/25", "203.0.113.0/24"),
		ipPool("a-older", 1, "198.51.100.0/24"),
	}})
	checkProblems(t, m, []ObjectProblems{
		{Object: ref(KindIPPool, "a-older"), Problems: []Problem{overlapping(
			`IPPool "b-newer" also lists addresses 198.51.100.128/25 of this pool; this pool keeps them and "b-newer" does not use them`)}},
		{Object: ref(KindIPPool, "b-newer"), Problems: []Problem{overlapping(
			`addresses 198.51.100.128/25 are also in IPPool "a-older", which keeps them (the older pool wins, then the first by name); this pool does not use them until the overlap is removed`)}},
	})
	if got := rangesOf(t, m, "b-newer"); got != "203.0.113.0/24" {
		t.Errorf("b-newer ranges = %s, want 203.0.113.0/24", got)
	}
	if got := rangesOf(t, m, "a-older"); got != "198.51.100.0/24" {
		t.Errorf("a-older ranges = %s, want 198.51.100.0/24", got)
	}
	if got, _ := m.PoolFor(netip.MustParseAddr("198.51.100.200")); got != "a-older" {
		t.Errorf("PoolFor(198.51.100.200) = %q, want a-older", got)
	}
	if !m.PoolServes("b-newer") {
		t.Errorf("b-newer should still serve its own addresses")
	}
}

func TestOverlappingPoolsSameAgeFirstNameWins(t *testing.T) {
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{
		ipPool("zeta", 0, "2001:db8::10-2001:db8::20"),
		ipPool("alpha", 0, "2001:db8::/120"),
	}})
	want := []Problem{overlapping(`addresses 2001:db8::10-2001:db8::20 are also in IPPool "alpha", which keeps them (the older pool wins, then the first by name); this pool does not use them until the overlap is removed`)}
	if diff := cmp.Diff(want, m.ProblemsFor(ref(KindIPPool, "zeta"))); diff != "" {
		t.Errorf("zeta problems (-want +got):\n%s", diff)
	}
	if got := rangesOf(t, m, "zeta"); got != "" {
		t.Errorf("zeta ranges = %q, want none", got)
	}
}

func TestPoolEntriesOverlappingEachOther(t *testing.T) {
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{ipPool("p", 0, "198.51.100.0/24", "198.51.100.10-198.51.100.20")}})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindIPPool, "p"), Problems: []Problem{notReady(v1alpha1.ReasonInvalidAddresses,
		`spec.addresses[1] 198.51.100.10-198.51.100.20 overlaps spec.addresses[0] 198.51.100.0/24: list each address once (the pool allocates nothing new until this is fixed)`)}}})
	if got := rangesOf(t, m, "p"); got != "198.51.100.0/24" {
		t.Errorf("ranges = %s, want the union 198.51.100.0/24", got)
	}
}

func TestInvalidAddressesThatSlippedPastTheSchema(t *testing.T) {
	autoAssign := true
	p := ipPool("p", 0, "198.51.100.0/24", "203.0.113.20-203.0.113.10", "2001:db8::1-198.51.100.1")
	p.Spec.AutoAssign = &autoAssign
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{p}})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindIPPool, "p"), Problems: []Problem{
		notReady(v1alpha1.ReasonInvalidAddresses, `spec.addresses[1]: range "203.0.113.20-203.0.113.10" runs backwards: its first address is greater than its last (the pool allocates nothing new until this is fixed)`),
		notReady(v1alpha1.ReasonInvalidAddresses, `spec.addresses[2]: range "2001:db8::1-198.51.100.1" mixes IPv4 and IPv6: both ends must be of the same family (the pool allocates nothing new until this is fixed)`),
	}}})
	spec, _ := m.Pool("p")
	if spec.AutoAssign || spec.ServiceAdmission == nil || spec.ServiceAdmission.Admits(ipam.Subject{Namespace: "x"}) || spec.ExternalIPAdmission != nil {
		t.Errorf("an invalid pool must serve nothing new, got %+v", spec)
	}
	if got := rangesOf(t, m, "p"); got != "198.51.100.0/24" {
		t.Errorf("an invalid pool keeps its valid ranges for Services that hold them: got %q", got)
	}
	if m.PoolServes("p") {
		t.Errorf("PoolServes(p) = true for an invalid pool")
	}
}

func TestDeletedPoolServesNothingNew(t *testing.T) {
	p := ipPool("p", 0, "198.51.100.0/24")
	now := metav1.NewTime(t0)
	p.DeletionTimestamp = &now
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{p}})
	checkProblems(t, m, []ObjectProblems{})
	spec, _ := m.Pool("p")
	if spec.AutoAssign || spec.ServiceAdmission.Admits(ipam.Subject{}) || m.PoolServes("p") {
		t.Errorf("a pool being deleted must serve nothing new, got %+v", spec)
	}
}

func TestL2AdvertisementNamesMissingPool(t *testing.T) {
	m := Build(Snapshot{
		IPPools: []*v1alpha1.IPPool{ipPool("blue", 0, "198.51.100.0/24")},
		L2Advertisements: []*v1alpha1.L2Advertisement{{ObjectMeta: meta("l2", 0),
			Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"blue", "red"}}}},
	})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindL2Advertisement, "l2"), Problems: []Problem{notReady(v1alpha1.ReasonPoolNotFound,
		`IPPool "red" named in spec.ipPools does not exist: create it or remove it from the list`)}}})
	ads := m.L2AdvertisementsFor("blue", nil)
	if len(ads) != 1 || !cmp.Equal(ads[0].Pools, []string{"blue"}) {
		t.Errorf("L2AdvertisementsFor(blue) = %+v, want l2 with pools [blue]", ads)
	}
}

func TestBGPAdvertisementNamesMissingPool(t *testing.T) {
	m := Build(Snapshot{BGPAdvertisements: []*v1alpha1.BGPAdvertisement{{ObjectMeta: meta("adv", 0),
		Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"gone"}}}}})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindBGPAdvertisement, "adv"), Problems: []Problem{notReady(v1alpha1.ReasonPoolNotFound,
		`IPPool "gone" named in spec.ipPools does not exist: create it or remove it from the list`)}}})
}

func TestBGPAdvertisementNamesMissingPeer(t *testing.T) {
	broken := peer("broken", 0, "198.51.100.2")
	broken.Spec.PeerASN = 0
	m := Build(Snapshot{
		IPPools:  []*v1alpha1.IPPool{ipPool("blue", 0, "198.51.100.0/24")},
		BGPPeers: []*v1alpha1.BGPPeer{peer("tor", 0, "198.51.100.1"), broken},
		BGPAdvertisements: []*v1alpha1.BGPAdvertisement{{ObjectMeta: meta("adv", 0),
			Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"blue"}, Peers: []string{"tor", "spine", "broken"}}}},
	})
	want := []Problem{
		notReady(v1alpha1.ReasonPeerNotFound, `BGPPeer "broken" named in spec.peers is not usable: see its Ready condition`),
		notReady(v1alpha1.ReasonPeerNotFound, `BGPPeer "spine" named in spec.peers does not exist: create it or remove it from the list`),
	}
	if diff := cmp.Diff(want, m.ProblemsFor(ref(KindBGPAdvertisement, "adv"))); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	ads := m.BGPAdvertisementsFor("blue", nil)
	if len(ads) != 1 || ads[0].AllPeers || !ads[0].AdvertisesTo("tor") || ads[0].AdvertisesTo("spine") {
		t.Errorf("BGPAdvertisementsFor(blue) = %+v, want adv to tor only", ads)
	}
}

func TestTwoPeersWithOneAddressOnANode(t *testing.T) {
	older := peer("tor-a", 1, "198.51.100.1")
	younger := peer("tor-b", 2, "198.51.100.1")
	younger.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "1"}}}
	m := Build(Snapshot{
		BGPPeers: []*v1alpha1.BGPPeer{younger, older},
		Nodes: []*corev1.Node{node("n3", map[string]string{"rack": "1"}), node("n1", map[string]string{"rack": "1"}),
			node("n2", map[string]string{"rack": "2"})},
	})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindBGPPeer, "tor-b"), Problems: []Problem{notReady(v1alpha1.ReasonDuplicatePeer,
		`BGPPeer "tor-a" also peers with 198.51.100.1 from node n1, n3, and keeps that session (the older peer wins, then the first by name); this peer is not used there: give the peers disjoint nodeSelectors or delete one`)}}})
	got := m.BGPPeersForNode(map[string]string{"rack": "1"})
	if len(got) != 1 || got[0].Name != "tor-a" {
		t.Errorf("BGPPeersForNode(rack 1) = %v, want only tor-a", got)
	}
}

func TestPeerPasswordSecret(t *testing.T) {
	withRef := func(name string, sr v1alpha1.SecretKeyReference) *v1alpha1.BGPPeer {
		p := peer(name, 0, "198.51.100.1")
		p.Spec.PasswordSecretRef = &sr
		return p
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "bgp"},
		Data: map[string][]byte{"password": []byte("s3cret"), "empty": nil}}
	tests := []struct {
		name         string
		ref          v1alpha1.SecretKeyReference
		wantPassword string
		want         []Problem
	}{
		{name: "default namespace and key", ref: v1alpha1.SecretKeyReference{Name: "bgp"}, wantPassword: "s3cret"},
		{name: "missing secret", ref: v1alpha1.SecretKeyReference{Name: "nope", Namespace: "other"}, want: []Problem{notReady(v1alpha1.ReasonSecretNotFound,
			`Secret other/nope named in spec.passwordSecretRef does not exist: create it with the password under key "password"`)}},
		{name: "missing key", ref: v1alpha1.SecretKeyReference{Name: "bgp", Key: "md5"}, want: []Problem{notReady(v1alpha1.ReasonSecretKeyNotFound,
			`Secret herald-system/bgp has no key "md5": add the password under that key or set spec.passwordSecretRef.key`)}},
		{name: "empty key", ref: v1alpha1.SecretKeyReference{Name: "bgp", Key: "empty"}, want: []Problem{notReady(v1alpha1.ReasonSecretKeyNotFound,
			`key "empty" of Secret herald-system/bgp is empty: put the password there`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Build(Snapshot{BGPPeers: []*v1alpha1.BGPPeer{withRef("p", tt.ref)}, Secrets: []*corev1.Secret{nil, secret}, SecretNamespace: "herald-system"})
			if diff := cmp.Diff(tt.want, m.ProblemsFor(ref(KindBGPPeer, "p"))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			peers := m.BGPPeers()
			if tt.want != nil {
				if len(peers) != 0 {
					t.Errorf("a peer whose password cannot be read must be left out, got %+v", peers)
				}
				return
			}
			if len(peers) != 1 || peers[0].Password != tt.wantPassword {
				t.Errorf("peers = %+v, want password %q", peers, tt.wantPassword)
			}
		})
	}
}

func TestPeerFieldsThatSlippedPastTheSchema(t *testing.T) {
	p := peer("p", 0, "198.51.100.1")
	p.Spec.PeerASN = 0
	port := int32(70000)
	p.Spec.Port = &port
	p.Spec.HoldTime = &metav1.Duration{Duration: time.Second}
	p.Spec.Password = "x"
	p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: "s"}
	m := Build(Snapshot{BGPPeers: []*v1alpha1.BGPPeer{p}})
	want := []Problem{
		notReady(v1alpha1.ReasonInvalidField, "spec.peerASN 0 is out of range: use 1 to 4294967295"),
		notReady(v1alpha1.ReasonInvalidField, "spec.port 70000 is out of range: use 1 to 65535"),
		notReady(v1alpha1.ReasonInvalidField, "spec.holdTime 1s is out of range: use whole seconds from 3s to 65535s"),
		notReady(v1alpha1.ReasonInvalidField, "spec sets both password and passwordSecretRef: keep one"),
	}
	if diff := cmp.Diff(want, m.ProblemsFor(ref(KindBGPPeer, "p"))); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if len(m.BGPPeers()) != 0 {
		t.Errorf("an invalid peer must be left out")
	}
}

// TestPeerSettingsTheSpeakerCannotHonour: settings that would otherwise be
// accepted and silently not configured make the peer Ready=False.
func TestPeerSettingsTheSpeakerCannotHonour(t *testing.T) {
	yes := true
	tests := []struct {
		name   string
		modify func(p *v1alpha1.BGPPeer)
		want   string
	}{
		{"hold time 0", func(p *v1alpha1.BGPPeer) { p.Spec.HoldTime = &metav1.Duration{} },
			"spec.holdTime 0s (no keepalives) is not supported: the speaker's GoBGP takes 0 for its 90s default; use whole seconds from 3s to 65535s"},
		{"BFD with eBGP multihop", func(p *v1alpha1.BGPPeer) {
			p.Spec.EBGPMultihop = true
			p.Spec.BFD = &v1alpha1.BFDSettings{Enabled: &yes}
		}, "spec.bfd cannot be used with spec.ebgpMultihop: the speaker's BFD is single-hop only (GoBGP has no multihop BFD, RFC 5883); disable one of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := peer("p", 0, "198.51.100.1")
			tt.modify(p)
			m := Build(Snapshot{BGPPeers: []*v1alpha1.BGPPeer{p}})
			want := []Problem{notReady(v1alpha1.ReasonInvalidField, tt.want)}
			if diff := cmp.Diff(want, m.ProblemsFor(ref(KindBGPPeer, "p"))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if len(m.BGPPeers()) != 0 {
				t.Errorf("the peer must be left out")
			}
		})
	}
}

func TestPeerDefaults(t *testing.T) {
	p := peer("p", 0, "2001:db8::1")
	p.Spec.BFD = &v1alpha1.BFDSettings{}
	p.Spec.GracefulRestart = &v1alpha1.GracefulRestart{}
	m := Build(Snapshot{BGPPeers: []*v1alpha1.BGPPeer{p}})
	want := []BGPPeer{{Name: "p", Address: netip.MustParseAddr("2001:db8::1"), Port: 179, PeerASN: 65001, MyASN: 65000,
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
		BFD:             BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 3},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 120 * time.Second}}}
	if diff := cmp.Diff(want, m.BGPPeers(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".created" || p.Last().String() == ".nodes" }, cmp.Ignore())); diff != "" {
		t.Errorf("BGPPeers() (-want +got):\n%s", diff)
	}
}

func TestAggregationReachingOutsideThePool(t *testing.T) {
	agg := int32(24)
	m := Build(Snapshot{
		IPPools: []*v1alpha1.IPPool{ipPool("small", 0, "198.51.100.16-198.51.100.31"), ipPool("whole", 0, "203.0.113.0/24")},
		BGPAdvertisements: []*v1alpha1.BGPAdvertisement{{ObjectMeta: meta("agg", 0),
			Spec: v1alpha1.BGPAdvertisementSpec{AggregationLength: &agg}}},
	})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindBGPAdvertisement, "agg"), Problems: []Problem{notReady(v1alpha1.ReasonAggregationTooShort,
		`spec.aggregationLength 24 would advertise 198.51.100.0/24, which reaches outside IPPool "small" (198.51.100.16/28); the pool is not advertised by this BGPAdvertisement until aggregationLength is at least 28`)}}})
	ads := m.BGPAdvertisements()
	if len(ads) != 1 || !cmp.Equal(ads[0].Pools, []string{"whole"}) {
		t.Fatalf("BGPAdvertisements() = %+v, want agg with pools [whole]", ads)
	}
	if got := ads[0].Prefix(netip.MustParseAddr("203.0.113.9")); got != netip.MustParsePrefix("203.0.113.0/24") {
		t.Errorf("Prefix = %v, want 203.0.113.0/24", got)
	}
}

func TestAdmission(t *testing.T) {
	p := ipPool("p", 0, "198.51.100.0/24")
	p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{
		Namespaces:        []string{"team-a"},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}},
		ServiceSelector:   &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "exposed", Operator: metav1.LabelSelectorOpExists}}},
	}
	p.Spec.AllowExternalIPs = &v1alpha1.ExternalIPAllowance{Namespaces: []string{"ext"}}
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{p}, Namespaces: []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"tier": "web"}}},
	}})
	spec, _ := m.Pool("p")
	exposed := map[string]string{"exposed": "yes"}
	tests := []struct {
		name         string
		subject      ipam.Subject
		wantService  bool
		wantExternal bool
	}{
		{"listed namespace", m.Subject("team-a", exposed), true, false},
		{"selected namespace", m.Subject("shop", exposed), true, false},
		{"service selector refuses", m.Subject("team-a", nil), false, false},
		{"other namespace", m.Subject("team-b", exposed), false, false},
		{"external IPs namespace", m.Subject("ext", nil), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spec.ServiceAdmission.Admits(tt.subject); got != tt.wantService {
				t.Errorf("ServiceAdmission.Admits = %v, want %v", got, tt.wantService)
			}
			if got := spec.ExternalIPAdmission.Admits(tt.subject); got != tt.wantExternal {
				t.Errorf("ExternalIPAdmission.Admits = %v, want %v", got, tt.wantExternal)
			}
		})
	}
	open := Build(Snapshot{IPPools: []*v1alpha1.IPPool{ipPool("open", 0, "203.0.113.0/24")}})
	if spec, _ := open.Pool("open"); spec.ServiceAdmission != nil || spec.ExternalIPAdmission != nil || !spec.AutoAssign || spec.Priority != ipam.DefaultPriority {
		t.Errorf("a pool without rules admits every Service, no external IP, auto-assigns, default priority: got %+v", spec)
	}
}

func TestConditions(t *testing.T) {
	m := Build(Snapshot{IPPools: []*v1alpha1.IPPool{ipPool("a", 0, "198.51.100.0/24"), ipPool("b", 1, "198.51.100.0/25", "bogus")}})
	want := []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonInvalidAddresses, ObservedGeneration: 7,
			Message: `spec.addresses[1]: "bogus" is neither a CIDR (198.51.100.0/24) nor a range first-last (198.51.100.10-198.51.100.20) (the pool allocates nothing new until this is fixed)`},
		{Type: v1alpha1.ConditionOverlapping, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonOverlapsOtherPool, ObservedGeneration: 7,
			Message: `addresses 198.51.100.0/25 are also in IPPool "a", which keeps them (the older pool wins, then the first by name); this pool does not use them until the overlap is removed`},
	}
	if diff := cmp.Diff(want, m.Conditions(ref(KindIPPool, "b"), 7)); diff != "" {
		t.Errorf("Conditions(b) (-want +got):\n%s", diff)
	}
	clean := Build(Snapshot{IPPools: []*v1alpha1.IPPool{ipPool("a", 0, "198.51.100.0/24")}})
	wantClean := []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid, Message: "The pool is valid and serves its addresses."},
		{Type: v1alpha1.ConditionOverlapping, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNoOverlap, Message: "No other pool shares an address with this pool."},
	}
	if diff := cmp.Diff(wantClean, clean.Conditions(ref(KindIPPool, "a"), 0)); diff != "" {
		t.Errorf("Conditions(a) (-want +got):\n%s", diff)
	}
}

func TestPoolForAndL2NodeSelection(t *testing.T) {
	m := Build(Snapshot{
		IPPools: []*v1alpha1.IPPool{ipPool("v4", 0, "198.51.100.0/24", "203.0.113.10-203.0.113.20"), ipPool("v6", 0, "2001:db8::/64")},
		L2Advertisements: []*v1alpha1.L2Advertisement{{ObjectMeta: meta("edge", 0), Spec: v1alpha1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"edge": "true"}}}, Interfaces: []string{"eth1", "eth0", "eth1"}}}},
	})
	for _, tt := range []struct {
		addr, want string
	}{
		{"198.51.100.0", "v4"}, {"198.51.100.255", "v4"}, {"203.0.113.10", "v4"}, {"203.0.113.20", "v4"},
		{"203.0.113.21", ""}, {"203.0.113.9", ""}, {"::ffff:198.51.100.9", "v4"}, {"2001:db8::ffff", "v6"}, {"2001:db8:1::", ""},
	} {
		got, ok := m.PoolFor(netip.MustParseAddr(tt.addr))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("PoolFor(%s) = %q, %v; want %q", tt.addr, got, ok, tt.want)
		}
	}
	if got := m.L2AdvertisementsFor("v6", map[string]string{"edge": "true"}); len(got) != 1 || !cmp.Equal(got[0].Interfaces, []string{"eth0", "eth1"}) || !cmp.Equal(got[0].Pools, []string{"v4", "v6"}) {
		t.Errorf("L2AdvertisementsFor(v6, edge) = %+v", got)
	}
	if got := m.L2AdvertisementsFor("v6", map[string]string{"edge": "false"}); len(got) != 0 {
		t.Errorf("L2AdvertisementsFor(v6, not edge) = %+v, want none", got)
	}
}

func TestModelIsImmutable(t *testing.T) {
	m := Build(Snapshot{
		IPPools:          []*v1alpha1.IPPool{ipPool("p", 0, "198.51.100.0/24")},
		L2Advertisements: []*v1alpha1.L2Advertisement{{ObjectMeta: meta("l2", 0)}},
	})
	p, _ := m.Pool("p")
	p.Ranges[0] = netipx.IPRangeFrom(netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.1"))
	ads := m.L2Advertisements()
	ads[0].Pools[0] = "changed"
	if got := rangesOf(t, m, "p"); got != "198.51.100.0/24" {
		t.Errorf("changing a returned pool changed the model: %s", got)
	}
	if got := m.L2Advertisements()[0].Pools[0]; got != "p" {
		t.Errorf("changing a returned advertisement changed the model: %s", got)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	pools := []*v1alpha1.IPPool{ipPool("c", 0, "198.51.100.0/24"), ipPool("a", 0, "198.51.100.0/25"), ipPool("b", 0, "198.51.100.128/25", "x")}
	peers := []*v1alpha1.BGPPeer{peer("p2", 0, "198.51.100.1"), peer("p1", 0, "198.51.100.1")}
	nodes := []*corev1.Node{node("n2", nil), node("n1", nil)}
	first := Build(Snapshot{IPPools: pools, BGPPeers: peers, Nodes: nodes})
	for range 20 {
		reversed := Build(Snapshot{
			IPPools:  []*v1alpha1.IPPool{pools[2], pools[1], pools[0]},
			BGPPeers: []*v1alpha1.BGPPeer{peers[1], peers[0]},
			Nodes:    []*corev1.Node{nodes[1], nodes[0]},
		})
		if diff := cmp.Diff(first.Problems(), reversed.Problems()); diff != "" {
			t.Fatalf("problems depend on input order (-first +reversed):\n%s", diff)
		}
		if first.String() != reversed.String() {
			t.Fatalf("model depends on input order:\n%s\nvs\n%s", first, reversed)
		}
	}
}

// TestUnnumberedPeer: a BGPPeer naming an interface instead of an address is
// kept with its interface, and what cannot go with it makes it Ready=False.
func TestUnnumberedPeer(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name   string
		modify func(p *v1alpha1.BGPPeer)
		want   []Problem // nil: the peer is kept
	}{
		{name: "interface alone", modify: func(p *v1alpha1.BGPPeer) {}},
		{name: "bfd disabled is fine", modify: func(p *v1alpha1.BGPPeer) { p.Spec.BFD = &v1alpha1.BFDSettings{Enabled: &no} }},
		{name: "address too", modify: func(p *v1alpha1.BGPPeer) { p.Spec.PeerAddress = "198.51.100.1" }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, "spec sets both peerAddress and interface: keep one (interface makes an unnumbered session)")}},
		{name: "neither address nor interface", modify: func(p *v1alpha1.BGPPeer) { p.Spec.Interface = "" }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, `spec.peerAddress: "" is not an IP address`)}},
		{name: "source address", modify: func(p *v1alpha1.BGPPeer) { p.Spec.SourceAddress = "198.51.100.11" }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, "spec.sourceAddress cannot be used with spec.interface: an unnumbered session runs from the interface's IPv6 link-local address")}},
		{name: "ebgp multihop", modify: func(p *v1alpha1.BGPPeer) { p.Spec.EBGPMultihop = true }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, "spec.ebgpMultihop cannot be used with spec.interface: an unnumbered router is directly connected")}},
		{name: "bfd", modify: func(p *v1alpha1.BGPPeer) { p.Spec.BFD = &v1alpha1.BFDSettings{Enabled: &yes} }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, "spec.bfd cannot be used with spec.interface: the speaker's BFD (GoBGP v4.9.0) is not run over link-local addresses")}},
		{name: "name too long", modify: func(p *v1alpha1.BGPPeer) { p.Spec.Interface = "abcdefghijklmnop" }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, `spec.interface "abcdefghijklmnop" is longer than 15 bytes`)}},
		{name: "name with a slash", modify: func(p *v1alpha1.BGPPeer) { p.Spec.Interface = "eth0/1" }, want: []Problem{
			notReady(v1alpha1.ReasonInvalidField, `spec.interface "eth0/1" holds a character an interface name cannot have ('/', '%', ':' or white space)`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := peer("p", 0, "")
			p.Spec.Interface = "eth1"
			tt.modify(p)
			m := Build(Snapshot{BGPPeers: []*v1alpha1.BGPPeer{p}})
			if diff := cmp.Diff(tt.want, m.ProblemsFor(ref(KindBGPPeer, "p"))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			peers := m.BGPPeers()
			if tt.want != nil {
				if len(peers) != 0 {
					t.Errorf("the peer must be left out, got %+v", peers)
				}
				return
			}
			if len(peers) != 1 || peers[0].Interface != "eth1" || peers[0].Address.IsValid() || !peers[0].Unnumbered() {
				t.Errorf("peers = %+v, want one unnumbered peer on eth1", peers)
			}
		})
	}
}

// TestTwoPeersWithOneInterfaceOnANode: two unnumbered peers on the same
// interface clash like two peers with one address; different interfaces,
// or an interface and an address, do not.
func TestTwoPeersWithOneInterfaceOnANode(t *testing.T) {
	unnumbered := func(name string, age int, ifname string) *v1alpha1.BGPPeer {
		p := peer(name, age, "")
		p.Spec.Interface = ifname
		return p
	}
	m := Build(Snapshot{
		BGPPeers: []*v1alpha1.BGPPeer{unnumbered("b", 2, "eth1"), unnumbered("a", 1, "eth1"), unnumbered("c", 3, "eth2"), peer("d", 4, "198.51.100.1")},
		Nodes:    []*corev1.Node{node("n1", nil)},
	})
	checkProblems(t, m, []ObjectProblems{{Object: ref(KindBGPPeer, "b"), Problems: []Problem{notReady(v1alpha1.ReasonDuplicatePeer,
		`BGPPeer "a" also peers with interface eth1 from node n1, and keeps that session (the older peer wins, then the first by name); this peer is not used there: give the peers disjoint nodeSelectors or delete one`)}}})
	var names []string
	for _, p := range m.BGPPeersForNode(nil) {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"a", "c", "d"}, names); diff != "" {
		t.Errorf("BGPPeersForNode (-want +got):\n%s", diff)
	}
}
