package membership

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

func TestMemberMetaRoundTrip(t *testing.T) {
	mac1, _ := net.ParseMAC("02:68:6c:00:00:01")
	mac2, _ := net.ParseMAC("02:68:6c:00:00:02")
	tests := []struct {
		name        string
		meta        Meta
		limit       int
		want        Meta
		wantLeftOut int
	}{
		{name: "empty", meta: Meta{}, limit: 512, want: Meta{Withdrawn: []uint64{}}},
		{
			name:  "everything fits",
			meta:  Meta{MACs: []net.HardwareAddr{mac1, mac2}, DataPlaneDown: true, Withdrawn: []uint64{1, 2, 3}},
			limit: 512,
			want:  Meta{MACs: []net.HardwareAddr{mac1, mac2}, DataPlaneDown: true, Withdrawn: []uint64{1, 2, 3}},
		},
		{
			name:  "a started member",
			meta:  Meta{Started: true, Withdrawn: []uint64{4}},
			limit: 512,
			want:  Meta{Started: true, Withdrawn: []uint64{4}},
		},
		{
			name:  "with a keyring, published after the withdrawn hashes",
			meta:  Meta{MACs: []net.HardwareAddr{mac1}, Withdrawn: []uint64{1}, Keys: &MetaKeys{Installed: []uint32{7, 9}, Primary: 9}},
			limit: 512,
			want:  Meta{MACs: []net.HardwareAddr{mac1}, Withdrawn: []uint64{1}, Keys: &MetaKeys{Installed: []uint32{7, 9}, Primary: 9}},
		},
		{
			name:        "the keyring's room is kept: withdrawn hashes give way",
			meta:        Meta{Withdrawn: []uint64{1, 2, 3}, Keys: &MetaKeys{Installed: []uint32{7}, Primary: 7}},
			limit:       3 + 2 + 16 + 9,
			want:        Meta{Withdrawn: []uint64{1, 2}, Keys: &MetaKeys{Installed: []uint32{7}, Primary: 7}},
			wantLeftOut: 1,
		},
		{
			name:        "withdrawn hashes beyond the limit are left out and counted",
			meta:        Meta{MACs: []net.HardwareAddr{mac1}, Withdrawn: []uint64{1, 2, 3, 4}},
			limit:       3 + 7 + 2 + 16,
			want:        Meta{MACs: []net.HardwareAddr{mac1}, Withdrawn: []uint64{1, 2}},
			wantLeftOut: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, leftOut := tt.meta.encode(tt.limit)
			if len(b) > tt.limit {
				t.Errorf("encoded %d bytes, limit %d", len(b), tt.limit)
			}
			if leftOut != tt.wantLeftOut {
				t.Errorf("left out %d, want %d", leftOut, tt.wantLeftOut)
			}
			got, err := decodeMeta(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]byte{nil, {9, 0, 0, 0, 0}, {1, 0, 1, 6, 1}, {1, 0, 0, 0, 1}} {
		if _, err := decodeMeta(bad); err == nil {
			t.Errorf("decodeMeta(%v): no error", bad)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	mac, _ := net.ParseMAC("02:68:6c:00:00:01")
	b, _ := Meta{MACs: []net.HardwareAddr{mac}, Withdrawn: []uint64{7}}.encode(512)
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeMeta(p)
		if err != nil {
			return
		}
		again, _ := m.encode(1 << 20)
		if m2, err := decodeMeta(again); err != nil || !metaEqual(m, m2) {
			t.Errorf("re-encoding %v does not round-trip: %v %v", m, m2, err)
		}
	})
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func startMember(t *testing.T, name string, key []byte, changed func()) (*Membership, int) {
	t.Helper()
	port := freePort(t)
	m, err := New(Config{Name: name, BindAddr: "127.0.0.1", BindPort: port, AdvertiseAddr: "127.0.0.1", Keys: SingleKey(key)}, changed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m, port
}

// TestMembershipOnLoopback runs three real members on 127.0.0.1: they find
// each other, share metadata, see a clean leave at once and a silent
// shutdown after failure detection.
func TestMembershipOnLoopback(t *testing.T) {
	key := []byte("0123456789abcdef")
	a, _ := startMember(t, "a", key, nil)
	b, bPort := startMember(t, "b", key, nil)
	c, _ := startMember(t, "c", key, nil)
	mac, _ := net.ParseMAC("02:68:6c:00:00:0b")
	if err := b.SetLocal(Meta{MACs: []net.HardwareAddr{mac}, Started: true, Withdrawn: []uint64{ServiceHash(decide.ServiceKey{Namespace: "default", Name: "web"})}}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Membership{a, c} {
		if n := m.Join([]string{JoinAddress("127.0.0.1", bPort)}); n != 1 {
			t.Fatalf("%s joined %d members, want 1", m.self, n)
		}
	}
	waitFor(t, 5*time.Second, "everyone sees three live members", func() bool {
		return len(a.Alive()) == 3 && len(b.Alive()) == 3 && len(c.Alive()) == 3
	})
	waitFor(t, 5*time.Second, "a traces b's MAC to b", func() bool {
		n, ok := a.NodeForMAC(mac)
		return ok && n == "b"
	})
	waitFor(t, 5*time.Second, "c sees b started, and a not", func() bool {
		return cmp.Equal(c.Started(), map[string]bool{"b": true})
	})
	if got := b.Started(); len(got) != 0 {
		t.Errorf("b counts among the started members %v, want none (itself excluded)", got)
	}
	_, withdrawn := c.Verdicts([]decide.Service{{Key: decide.ServiceKey{Namespace: "default", Name: "web"}}, {Key: decide.ServiceKey{Namespace: "default", Name: "other"}}})
	if diff := cmp.Diff(map[decide.ServiceKey][]string{{Namespace: "default", Name: "web"}: {"b"}}, withdrawn); diff != "" {
		t.Errorf("c's view of withdrawals (-want +got):\n%s", diff)
	}

	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 2*time.Second, "a sees b leave", func() bool { return !a.Alive()["b"] })
	t.Logf("leave seen after %v", time.Since(start))
	if got := a.Started(); len(got) != 0 {
		t.Errorf("after b left, a counts %v started, want none", got)
	}

	c.Shutdown()
	start = time.Now()
	waitFor(t, 5*time.Second, "a declares c dead", func() bool { return !a.Alive()["c"] })
	t.Logf("silent failure detected after %v", time.Since(start))
	if alive, gone := a.Counts(); alive != 1 || gone != 2 {
		t.Errorf("a counts %d alive and %d gone, want 1 and 2", alive, gone)
	}

	// b's Node is deleted: a forgets b (its metadata and its count), and
	// keeps c, whose Node still exists.
	a.Forget(func(name string) bool { return name == "b" })
	if _, gone := a.Counts(); gone != 1 {
		t.Errorf("after b's Node went, a counts %d gone, want 1 (c)", gone)
	}
	if n, ok := a.NodeForMAC(mac); ok {
		t.Errorf("after b's Node went, a still traces b's MAC to %s", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.peers["b"]; ok {
		t.Error("after b's Node went, a keeps b's metadata")
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWithdrawalsBeyondTheMetadataLimitViewsAgree: a node that withdraws
// more Services than its 512 bytes of metadata can carry judges itself by
// what it published, so its own view of the withdrawals equals its peer's,
// whatever the number.
func TestWithdrawalsBeyondTheMetadataLimitViewsAgree(t *testing.T) {
	key := []byte("0123456789abcdef")
	a, aPort := startMember(t, "a", key, nil)
	b, _ := startMember(t, "b", key, nil)
	var services []decide.Service
	var hashes []uint64
	for i := range 200 {
		k := decide.ServiceKey{Namespace: "default", Name: fmt.Sprintf("svc-%03d", i)}
		services = append(services, decide.Service{Key: k})
		hashes = append(hashes, ServiceHash(k))
	}
	if err := a.SetLocal(Meta{Withdrawn: hashes}); err != nil {
		t.Fatal(err)
	}
	if n := b.Join([]string{JoinAddress("127.0.0.1", aPort)}); n != 1 {
		t.Fatalf("b joined %d members, want 1", n)
	}
	waitFor(t, 5*time.Second, "both see two live members", func() bool {
		return len(a.Alive()) == 2 && len(b.Alive()) == 2
	})
	var own, peer map[decide.ServiceKey][]string
	waitFor(t, 5*time.Second, "b sees a's withdrawals", func() bool {
		_, own = a.Verdicts(services)
		_, peer = b.Verdicts(services)
		return len(peer) > 0
	})
	if diff := cmp.Diff(own, peer); diff != "" {
		t.Errorf("a's own view and b's view of a's withdrawals differ (-a +b):\n%s", diff)
	}
	if len(own) == 0 || len(own) == len(services) {
		t.Errorf("a withdraws %d of %d Services in everyone's view; want some but not all (the metadata holds about 60)", len(own), len(services))
	}
}
