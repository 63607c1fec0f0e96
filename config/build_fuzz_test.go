package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// fuzzSnapshot builds a snapshot from a few strings: each ';'-separated part
// of pools is one IPPool whose ','-separated entries are its addresses; names
// for advertisements and peers' references come from refs; peers' addresses
// from peerAddrs.
func fuzzSnapshot(pools, refs, peerAddrs string, asn int64, hold int64, agg int32) Snapshot {
	var s Snapshot
	for i, part := range strings.Split(pools, ";") {
		p := ipPool(string(rune('a'+i%26))+strings.Repeat("x", i/26), i%3, strings.Split(part, ",")...)
		if i%2 == 1 {
			p.Spec.AllowExternalIPs = &v1alpha1.ExternalIPAllowance{NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: part, Operator: metav1.LabelSelectorOpIn, Values: []string{refs}}}}}
		}
		s.IPPools = append(s.IPPools, p)
	}
	names := strings.Split(refs, ",")
	for i, a := range strings.Split(peerAddrs, ",") {
		p := peer("peer"+string(rune('a'+i%26)), i%2, a)
		p.Spec.PeerASN = asn
		p.Spec.HoldTime = &metav1.Duration{Duration: time.Duration(hold)}
		p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: names[i%len(names)], Key: refs}
		p.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"k": names[0]}}}
		s.BGPPeers = append(s.BGPPeers, p)
	}
	s.L2Advertisements = []*v1alpha1.L2Advertisement{nil, {ObjectMeta: meta("l2", 0), Spec: v1alpha1.L2AdvertisementSpec{IPPools: names, Interfaces: names}}}
	s.BGPAdvertisements = []*v1alpha1.BGPAdvertisement{{ObjectMeta: meta("bgp", 0), Spec: v1alpha1.BGPAdvertisementSpec{
		Peers: names, AggregationLength: &agg, AggregationLengthV6: &agg, Communities: names, LargeCommunities: names}}}
	s.Secrets = []*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: names[0]}, Data: map[string][]byte{refs: []byte(peerAddrs)}}}
	s.SecretNamespace = "ns"
	s.Nodes = []*corev1.Node{node("n1", map[string]string{"k": names[0]}), nil, node("n2", nil)}
	return s
}

// FuzzBuild checks that Build never panics on any input, is deterministic
// whatever the order of its input, never puts an address in two pools, and
// reports problems that can become conditions.
func FuzzBuild(f *testing.F) {
	f.Add("198.51.100.0/24;198.51.100.128/25,2001:db8::/64", "a,b", "198.51.100.1,198.51.100.1", int64(65000), int64(9e9), int32(24))
	f.Add("203.0.113.20-203.0.113.10;x;;2001:db8::1-198.51.100.1", "", "::,2001:db8::1", int64(0), int64(1e9), int32(-1))
	f.Add("0.0.0.0/0;::/0;198.51.100.7/24", "no-export,65000:1,1:2:3", "", int64(1<<33), int64(0), int32(129))
	f.Fuzz(func(t *testing.T, pools, refs, peerAddrs string, asn, hold int64, agg int32) {
		s := fuzzSnapshot(pools, refs, peerAddrs, asn, hold, agg)
		m := Build(s)

		r := fuzzSnapshot(pools, refs, peerAddrs, asn, hold, agg)
		slices.Reverse(r.IPPools)
		slices.Reverse(r.BGPPeers)
		slices.Reverse(r.Nodes)
		m2 := Build(r)
		if m.String() != m2.String() || !slices.EqualFunc(m.Problems(), m2.Problems(), func(a, b ObjectProblems) bool {
			return a.Object == b.Object && slices.Equal(a.Problems, b.Problems)
		}) {
			t.Fatalf("Build depends on input order:\n%s\nvs\n%s", m, m2)
		}

		for i := 1; i < len(m.byAddress); i++ {
			if m.byAddress[i-1].r.Overlaps(m.byAddress[i].r) {
				t.Fatalf("pools %q and %q share addresses: %v and %v", m.byAddress[i-1].pool, m.byAddress[i].pool, m.byAddress[i-1].r, m.byAddress[i].r)
			}
		}
		for _, p := range m.Pools() {
			for _, r := range p.Ranges {
				if got, ok := m.PoolFor(r.From()); !ok || got != p.Name {
					t.Fatalf("PoolFor(%v) = %q, want %q", r.From(), got, p.Name)
				}
			}
		}
		for _, op := range m.Problems() {
			conds := m.Conditions(op.Object, 1)
			if len(conds) == 0 {
				t.Fatalf("no conditions for %v", op.Object)
			}
			for _, c := range conds {
				if c.Reason == "" || c.Message == "" || len(c.Message) > maxConditionMessage {
					t.Fatalf("condition %+v cannot be written", c)
				}
			}
		}
		for _, n := range []map[string]string{nil, {"k": strings.Split(refs, ",")[0]}} {
			m.BGPPeersForNode(n)
			for _, p := range m.Pools() {
				m.L2AdvertisementsFor(p.Name, n)
				m.BGPAdvertisementsFor(p.Name, n)
			}
		}
	})
}
