package decide

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func nodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i)
	}
	return out
}

// testAddrs returns n consecutive addresses: first the 512 IPv4 addresses of
// 198.51.100.0/24 and 203.0.113.0/24, then IPv6 addresses from 2001:db8::1.
// Pools are ranges of consecutive addresses, the hardest input for a hash.
func testAddrs(n int) []netip.Addr {
	var out []netip.Addr
	for _, p := range []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")} {
		for a := p.Addr(); p.Contains(a) && len(out) < n; a = a.Next() {
			out = append(out, a)
		}
	}
	for a := netip.MustParseAddr("2001:db8::1"); len(out) < n; a = a.Next() {
		out = append(out, a)
	}
	return out
}

func owners(addrs []netip.Addr, nodes []string) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(addrs))
	for _, a := range addrs {
		n, ok := AnnouncingNode(a, nodes)
		if !ok {
			panic("no announcing node")
		}
		out[a] = n
	}
	return out
}

// TestScoreIsStable pins Score: speakers of different versions must rank
// nodes identically during an upgrade, so a change here is a breaking change.
func TestScoreIsStable(t *testing.T) {
	tests := []struct {
		addr string
		node string
		want uint64
	}{
		{"198.51.100.10", "node-0", 0x54cfcbbe2103c2f5},
		{"198.51.100.10", "node-1", 0x327c087101dbd151},
		{"2001:db8::10", "worker-a", 0x8f3f09652c5b9717},
	}
	for _, tt := range tests {
		if got := Score(netip.MustParseAddr(tt.addr), tt.node); got != tt.want {
			t.Errorf("Score(%s, %s) = %#x, want %#x", tt.addr, tt.node, got, tt.want)
		}
	}
}

// TestScoreIsFNV1aWithAvalanche checks Score against the standard library's
// FNV-1a and MurmurHash3's finaliser, written out independently.
func TestScoreIsFNV1aWithAvalanche(t *testing.T) {
	fmix := func(h uint64) uint64 {
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9fe1a85ec53
		h ^= h >> 33
		return h
	}
	for _, a := range testAddrs(600)[250:600] {
		b := a.As16()
		ak := fmix(binary.BigEndian.Uint64(b[:8]) ^ fmix(binary.BigEndian.Uint64(b[8:])))
		for _, n := range []string{"", "a", "node-7", "a-much-longer-node-name.example"} {
			h := fnv.New64a()
			h.Write([]byte(n))
			if want, got := fmix(h.Sum64()^ak), Score(a, n); got != want {
				t.Fatalf("Score(%s, %q) = %#x, want %#x", a, n, got, want)
			}
		}
	}
	// The zone is not part of the key: every speaker sees its own zone.
	a := netip.MustParseAddr("2001:db8::1")
	if Score(a, "n") != Score(a.WithZone("eth0"), "n") {
		t.Error("Score depends on the IPv6 zone")
	}
}

func TestRanking(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.7")
	nodes := nodeNames(12)
	want := Ranking(addr, nodes)
	if len(want) != len(nodes) {
		t.Fatalf("Ranking() returned %d nodes, want %d", len(want), len(nodes))
	}
	for i := 1; i < len(want); i++ {
		if Score(addr, want[i-1]) < Score(addr, want[i]) {
			t.Errorf("Ranking() not ordered by descending score at %d: %v", i, want)
		}
		if !Outranks(addr, want[i-1], want[i]) || Outranks(addr, want[i], want[i-1]) {
			t.Errorf("Outranks disagrees with Ranking for %s and %s", want[i-1], want[i])
		}
	}
	if slices.Equal(want, nodes) {
		t.Errorf("Ranking() returned the input order %v; the hash does not rank", want)
	}

	// The same answer whatever the order and duplicates of the input.
	shuffled := slices.Clone(nodes)
	slices.Reverse(shuffled)
	shuffled = append(shuffled, nodes[3], nodes[0])
	if diff := cmp.Diff(want, Ranking(addr, shuffled)); diff != "" {
		t.Errorf("Ranking() depends on input order (-want +got):\n%s", diff)
	}
	if got, ok := AnnouncingNode(addr, shuffled); !ok || got != want[0] {
		t.Errorf("AnnouncingNode() = %q, %v; want %q (Ranking's first)", got, ok, want[0])
	}
	// Dropping the winner promotes the runner-up, and the rest keep their order.
	if diff := cmp.Diff(want[1:], Ranking(addr, want[1:])); diff != "" {
		t.Errorf("Ranking() without the winner (-want +got):\n%s", diff)
	}
	if _, ok := AnnouncingNode(addr, nil); ok {
		t.Error("AnnouncingNode() with no candidates reported a node")
	}
	if got := Ranking(addr, nil); len(got) != 0 {
		t.Errorf("Ranking(nil) = %v, want empty", got)
	}
}

// TestElectionBalance elects 10,000 addresses among 3, 10 and 100 nodes and
// requires every node's share to lie within 5 standard deviations of the
// mean of an ideal uniform assignment (a binomial with p = 1/N).
func TestElectionBalance(t *testing.T) {
	addrs := testAddrs(10000)
	for _, n := range []int{3, 10, 100} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			nodes := nodeNames(n)
			load := map[string]int{}
			for _, owner := range owners(addrs, nodes) {
				load[owner]++
			}
			p := 1 / float64(n)
			mean := float64(len(addrs)) * p
			sigma := math.Sqrt(float64(len(addrs)) * p * (1 - p))
			lo, hi := int(math.Floor(mean-5*sigma)), int(math.Ceil(mean+5*sigma))
			least, most := len(addrs), 0
			for _, node := range nodes {
				l := load[node]
				least, most = min(least, l), max(most, l)
				if l < lo || l > hi {
					t.Errorf("node %s announces %d addresses, want within [%d, %d]", node, l, lo, hi)
				}
			}
			t.Logf("%d addresses over %d nodes: min %d, max %d, mean %.1f, allowed [%d, %d]", len(addrs), n, least, most, mean, lo, hi)
		})
	}
}

// TestElectionMinimalMovement removes and adds a node and checks that only
// the addresses of the node that left (or that the new node wins) move, and
// that a leaving node's addresses spread over the others.
func TestElectionMinimalMovement(t *testing.T) {
	addrs := testAddrs(10000)
	for _, n := range []int{3, 10, 100} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			nodes := nodeNames(n)
			before := owners(addrs, nodes)
			for _, leaving := range []string{nodes[0], nodes[n-1]} {
				rest := slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return s == leaving })
				after := owners(addrs, rest)
				gained := map[string]int{}
				moved := 0
				for _, a := range addrs {
					switch {
					case before[a] == leaving:
						gained[after[a]]++
						moved++
					case after[a] != before[a]:
						t.Fatalf("%s moved from %s to %s although %s left", a, before[a], after[a], leaving)
					}
				}
				if moved == 0 {
					t.Fatalf("%s announced nothing before leaving", leaving)
				}
				// The orphans spread: with 10 or more nodes no single node takes
				// more than a third of them (it would take all of them with
				// "next node in a ring" schemes).
				if n >= 10 {
					for node, g := range gained {
						if g*3 > moved {
							t.Errorf("%s took %d of the %d addresses of %s", node, g, moved, leaving)
						}
					}
				}
			}

			joined := append(slices.Clone(nodes), "node-new")
			after := owners(addrs, joined)
			won := 0
			for _, a := range addrs {
				if after[a] == before[a] {
					continue
				}
				if after[a] != "node-new" {
					t.Fatalf("%s moved from %s to %s when node-new joined", a, before[a], after[a])
				}
				won++
			}
			mean := float64(len(addrs)) / float64(n+1)
			if float64(won) < mean/2 || float64(won) > mean*2 {
				t.Errorf("node-new won %d addresses, want about %.0f", won, mean)
			}
		})
	}
}

func TestSharedCandidates(t *testing.T) {
	tests := []struct {
		name string
		sets [][]string
		want []string
	}{
		{name: "nothing", want: nil},
		{name: "one sharer", sets: [][]string{{"b", "a"}}, want: []string{"a", "b"}},
		{name: "intersection when it exists", sets: [][]string{{"a", "b", "c"}, {"c", "b", "d"}}, want: []string{"b", "c"}},
		{name: "identical sets", sets: [][]string{{"a", "b"}, {"b", "a"}}, want: []string{"a", "b"}},
		{
			name: "a sharer with no eligible node does not take the others down",
			sets: [][]string{{"a", "b"}, {}, {"b", "c"}},
			want: []string{"b"},
		},
		{
			name: "disjoint sets: the nodes serving the most sharers",
			sets: [][]string{{"a"}, {"b", "c"}, {"c"}},
			want: []string{"c"},
		},
		{name: "disjoint sets with a tie", sets: [][]string{{"a"}, {"b"}}, want: []string{"a", "b"}},
		{name: "duplicates inside a set count once", sets: [][]string{{"a", "a", "a"}, {"b"}, {"b"}}, want: []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, SharedCandidates(tt.sets...)); diff != "" {
				t.Errorf("SharedCandidates() mismatch (-want +got):\n%s", diff)
			}
			rev := slices.Clone(tt.sets)
			slices.Reverse(rev)
			if diff := cmp.Diff(tt.want, SharedCandidates(rev...)); diff != "" {
				t.Errorf("SharedCandidates() depends on the sharers' order (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSharedAddressElectsOneNode checks that Services sharing an address
// land on one node, and that the node serves all of them when it can, while
// each sharer alone would have elected a different node.
func TestSharedAddressElectsOneNode(t *testing.T) {
	nodes := nodeNames(10)
	splitSeen := false
	for _, addr := range testAddrs(300) {
		// Sharer 1 is eligible on nodes 0-6, sharer 2 on nodes 4-9 (Local
		// policy with different pods). Together: nodes 4-6.
		s1, s2 := nodes[:7], nodes[4:]
		n1, _ := AnnouncingNode(addr, SharedCandidates(s1, s2))
		n2, _ := AnnouncingNode(addr, SharedCandidates(s2, s1))
		if n1 != n2 {
			t.Fatalf("%s: sharers elected %s and %s", addr, n1, n2)
		}
		if !slices.Contains(nodes[4:7], n1) {
			t.Fatalf("%s: elected %s, which does not serve both sharers", addr, n1)
		}
		a, _ := AnnouncingNode(addr, s1)
		b, _ := AnnouncingNode(addr, s2)
		splitSeen = splitSeen || a != b
	}
	if !splitSeen {
		t.Fatal("the sharers never disagreed alone; the test does not exercise sharing")
	}
}

func BenchmarkScore(b *testing.B) {
	addr := netip.MustParseAddr("2001:db8::1:2")
	var sink uint64
	for b.Loop() {
		sink += Score(addr, "worker-node-17.example")
	}
	_ = sink
}

// BenchmarkElect10kAddresses100Nodes measures a full layer-2 election: one
// AnnouncingNode call per address.
func BenchmarkElect10kAddresses100Nodes(b *testing.B) {
	addrs := testAddrs(10000)
	nodes := nodeNames(100)
	for b.Loop() {
		for _, a := range addrs {
			AnnouncingNode(a, nodes)
		}
	}
}

func BenchmarkRanking100Nodes(b *testing.B) {
	addr := netip.MustParseAddr("198.51.100.9")
	nodes := nodeNames(100)
	for b.Loop() {
		Ranking(addr, nodes)
	}
}

// TestAnnouncingPair checks AnnouncingPair against Ranking's first two
// nodes, duplicates and the short lists included.
func TestAnnouncingPair(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
	}{
		{name: "none"},
		{name: "one", candidates: []string{"n1"}},
		{name: "one twice", candidates: []string{"n1", "n1"}},
		{name: "two", candidates: []string{"n2", "n1"}},
		{name: "duplicates", candidates: []string{"n3", "n1", "n3", "n2", "n1"}},
		{name: "ten", candidates: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 200 {
				addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
				want := append(Ranking(addr, tt.candidates), "", "")
				first, second := AnnouncingPair(addr, tt.candidates)
				if first != want[0] || second != want[1] {
					t.Fatalf("AnnouncingPair(%s) = %q, %q; Ranking gives %q", addr, first, second, want[:2])
				}
				// With keys, the candidates are a nodeSet's: sorted, no duplicates.
				uniq := slices.Compact(slices.Sorted(slices.Values(tt.candidates)))
				keys := make([]uint64, len(uniq))
				for i, c := range uniq {
					keys[i] = nodeKey(c)
				}
				if f, s := announcingPair(addr, uniq, keys); f != first || s != second {
					t.Fatalf("announcingPair(%s) with precomputed keys = %q, %q; without: %q, %q", addr, f, s, first, second)
				}
			}
		})
	}
}

// TestNodeSetKeysFor: the precomputed keys are handed out only for the
// set's own usable slice, and match nodeKey.
func TestNodeSetKeysFor(t *testing.T) {
	set := newNodeSet([]NodeState{{Name: "n2", SpeakerAlive: true}, {Name: "n1", SpeakerAlive: true}, {Name: "n3", SpeakerAlive: true}}, map[string]bool{"n3": true})
	keys := set.keysFor(set.usable)
	if len(keys) != 2 || keys[0] != nodeKey("n1") || keys[1] != nodeKey("n2") {
		t.Fatalf("keysFor(usable %v) = %v, want the keys of n1, n2", set.usable, keys)
	}
	for _, other := range [][]string{nil, {"n1", "n2"}, set.usable[:1], set.usable[1:]} {
		if k := set.keysFor(other); k != nil {
			t.Errorf("keysFor(%v) = %v, want nil (not the usable slice itself)", other, k)
		}
	}
}
