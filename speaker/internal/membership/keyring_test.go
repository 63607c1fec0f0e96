package membership

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeyRotationOnLoopback runs three real members on 127.0.0.1 and
// rotates their key in the three edits of docs/security.md, each member
// seeing each edit at a different moment (as the kubelet updates each
// node's mounted Secret at its own time). A watcher checks every 5 ms
// that every member sees the three alive. A member that saw step 2 before
// another saw step 1 keeps encrypting with the old key until that one has
// the new key; a member that saw step 3 keeps the old key while another
// still encrypts with it. Finally a member holding only the old key cannot
// join.
func TestKeyRotationOnLoopback(t *testing.T) {
	old := KeySet{Keys: []Key{{"key", keyA}}, Primary: "key"}
	step1 := KeySet{Keys: []Key{{"key", keyA}, {"key-2", keyB}}, Primary: "key"}
	step2 := KeySet{Keys: []Key{{"key", keyA}, {"key-2", keyB}}, Primary: "key-2"}
	step3 := KeySet{Keys: []Key{{"key-2", keyB}}, Primary: "key-2"}
	fa, fb := Fingerprint(keyA), Fingerprint(keyB)

	start := func(name string, ks KeySet) (*Membership, int) {
		t.Helper()
		port := freePort(t)
		m, err := New(Config{Name: name, BindAddr: "127.0.0.1", BindPort: port, AdvertiseAddr: "127.0.0.1", Keys: ks}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m, port
	}
	a, aPort := start("a", old)
	b, _ := start("b", old)
	c, _ := start("c", old)
	all := []*Membership{a, b, c}
	for _, m := range all[1:] {
		if n := m.Join([]string{JoinAddress("127.0.0.1", aPort)}); n != 1 {
			t.Fatalf("%s joined %d members, want 1", m.self, n)
		}
	}
	waitFor(t, 5*time.Second, "everyone sees three live members", func() bool {
		return len(a.Alive()) == 3 && len(b.Alive()) == 3 && len(c.Alive()) == 3
	})

	// The watcher: any moment one member does not see another is a failure.
	var broken atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, m := range all {
				if n := len(m.Alive()); n != 3 {
					broken.CompareAndSwap(nil, fmt.Sprintf("%s saw %d live members", m.self, n))
				}
			}
		}
	}()
	set := func(m *Membership, ks KeySet) {
		t.Helper()
		if err := m.SetKeys(ks); err != nil {
			t.Fatal(err)
		}
	}
	status := func(m *Membership) string {
		s := m.KeyStatus()
		return fmt.Sprintf("primary %s installed %v waiting %v", s.Primary, s.Installed, s.Waiting)
	}
	settled := func(what string, want string) {
		t.Helper()
		waitFor(t, 5*time.Second, what, func() bool {
			for _, m := range all {
				if status(m) != want {
					return false
				}
			}
			return true
		})
	}
	both := slices.Sorted(slices.Values([]string{fa, fb}))

	// a sees steps 1 and 2 before c has seen step 1: a installs the new
	// key but keeps encrypting with the old one, and says why.
	set(a, step1)
	set(a, step2)
	if s := a.KeyStatus(); s.Primary != fa || len(s.Waiting) != 1 {
		t.Errorf("a switched before b and c had the key: %s", status(a))
	}
	t.Logf("a: %s", status(a))
	set(b, step1)
	set(c, step1)
	waitFor(t, 5*time.Second, "a encrypts with the new key once b and c have it", func() bool { return a.KeyStatus().Primary == fb })
	set(b, step2)
	set(c, step2)
	settled("everyone encrypts with the new key", fmt.Sprintf("primary %s installed %v waiting []", fb, both))

	// Step 3 reaches b first, while a and c lag: b removes the old key at
	// once (nobody encrypts with it any more).
	set(b, step3)
	waitFor(t, 5*time.Second, "b removed the old key", func() bool { return slices.Equal(b.KeyStatus().Installed, []string{fb}) })
	time.Sleep(500 * time.Millisecond) // gossip under the new key only
	set(a, step3)
	set(c, step3)
	settled("everyone has only the new key", fmt.Sprintf("primary %s installed [%s] waiting []", fb, fb))
	time.Sleep(time.Second)
	close(stop)
	<-done
	if msg := broken.Load(); msg != nil {
		t.Fatalf("the membership split during the rotation: %v", msg)
	}

	// A member that has only the old key is cut off: it cannot join, and
	// nobody sees it.
	stale, _ := start("stale", old)
	if n := stale.Join([]string{JoinAddress("127.0.0.1", aPort)}); n != 0 {
		t.Errorf("a member with only the old key joined %d members", n)
	}
	time.Sleep(time.Second)
	if n := len(a.Alive()); n != 3 {
		t.Errorf("a sees %d live members after the stale one tried, want 3", n)
	}
	if n := len(stale.Alive()); n != 1 {
		t.Errorf("the stale member sees %d live members, want itself only", n)
	}
}

// TestKeyRotationWaitsForAPeerWithoutTheNewKey: a member that will not take
// the new key (a fixed key from a file, or a speaker that cannot read the
// Secret) keeps the others encrypting with, and so keeping, the old key.
func TestKeyRotationWaitsForAPeerWithoutTheNewKey(t *testing.T) {
	a, aPort := startMember(t, "a", keyA, nil)
	b, _ := startMember(t, "b", keyA, nil)
	if n := b.Join([]string{JoinAddress("127.0.0.1", aPort)}); n != 1 {
		t.Fatalf("b joined %d, want 1", n)
	}
	waitFor(t, 5*time.Second, "both see two live members", func() bool { return len(a.Alive()) == 2 && len(b.Alive()) == 2 })
	if err := a.SetKeys(KeySet{Keys: []Key{{"key-2", keyB}}, Primary: "key-2"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	s := a.KeyStatus()
	if s.Primary != Fingerprint(keyA) || len(s.Installed) != 2 || len(s.Waiting) != 1 {
		t.Errorf("a's keyring: %+v; want the old key still primary, both installed, one step waiting", s)
	}
	t.Logf("a waits: %v", s.Waiting)
	if n := len(a.Alive()); n != 2 {
		t.Errorf("a sees %d live members, want 2", n)
	}
	if err := a.SetKeys(KeySet{}); err == nil {
		t.Error("SetKeys turned encryption off")
	}
}
