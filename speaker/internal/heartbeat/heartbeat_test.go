package heartbeat

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestHeartbeatsOverLoopback runs two nodes over real UDP on loopback:
// the watcher presumes the owner dead once it stops, and clears the
// verdict when it comes back.
func TestHeartbeatsOverLoopback(t *testing.T) {
	ownerAddr, watcherAddr := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	var changed atomic.Int32
	watcher, err := Start(Config{Name: "watcher", Listen: netip.AddrPortFrom(watcherAddr, 0), Changed: func() { changed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	port := watcher.Addr().Port()
	addrs := map[string]netip.Addr{"owner": ownerAddr, "watcher": watcherAddr}
	startOwner := func() *Heartbeats {
		t.Helper()
		owner, err := Start(Config{Name: "owner", Listen: netip.AddrPortFrom(ownerAddr, port)})
		if err != nil {
			t.Fatal(err)
		}
		owner.SetPlan(Plan{Send: []string{"watcher"}}, addrs)
		return owner
	}
	owner := startOwner()
	watcher.SetPlan(Plan{Watch: []string{"owner"}}, addrs)

	// Heard and armed: a second of heartbeats passes without a verdict.
	time.Sleep(time.Second)
	if d := watcher.Dead(); len(d) != 0 || changed.Load() != 0 {
		t.Fatalf("while the owner sends: Dead() = %v, %d changes", d, changed.Load())
	}
	stopped := time.Now()
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owner presumed dead", func() bool { return watcher.Dead()["owner"] })
	t.Logf("presumed dead %v after the owner stopped", time.Since(stopped))
	if changed.Load() != 1 {
		t.Errorf("Changed called %d times, want 1", changed.Load())
	}

	owner = startOwner()
	defer owner.Close()
	waitFor(t, "the verdict cleared", func() bool { return len(watcher.Dead()) == 0 })
	if changed.Load() != 2 {
		t.Errorf("Changed called %d times, want 2", changed.Load())
	}
}

// TestHeartbeatsFromAnotherAddressIgnored checks the source check: a
// heartbeat that names the owner but comes from elsewhere does not arm.
func TestHeartbeatsFromAnotherAddressIgnored(t *testing.T) {
	watcherAddr := netip.MustParseAddr("127.0.0.2")
	watcher, err := Start(Config{Name: "watcher", Listen: netip.AddrPortFrom(watcherAddr, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	port := watcher.Addr().Port()
	// The impostor at 127.0.0.3 calls itself "owner", whose address is 127.0.0.1.
	impostor, err := Start(Config{Name: "owner", Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), port)})
	if err != nil {
		t.Fatal(err)
	}
	impostor.SetPlan(Plan{Send: []string{"watcher"}}, map[string]netip.Addr{"watcher": watcherAddr})
	watcher.SetPlan(Plan{Watch: []string{"owner"}}, map[string]netip.Addr{"owner": netip.MustParseAddr("127.0.0.1")})
	time.Sleep(500 * time.Millisecond)
	_ = impostor.Close()
	time.Sleep(500 * time.Millisecond)
	if d := watcher.Dead(); len(d) != 0 {
		t.Errorf("Dead() = %v after an impostor's heartbeats stopped; want none (never armed)", d)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHeartbeatsIdleUntilPlanned checks that a node whose sender went
// idle (nothing to send, nothing watched) starts sending when a plan
// gives it a peer: the watcher is armed by its heartbeats, so it presumes
// the owner dead once it stops.
func TestHeartbeatsIdleUntilPlanned(t *testing.T) {
	ownerAddr, watcherAddr := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	watcher, err := Start(Config{Name: "watcher", Listen: netip.AddrPortFrom(watcherAddr, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	owner, err := Start(Config{Name: "owner", Listen: netip.AddrPortFrom(ownerAddr, watcher.Addr().Port())})
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]netip.Addr{"owner": ownerAddr, "watcher": watcherAddr}
	watcher.SetPlan(Plan{Watch: []string{"owner"}}, addrs)
	owner.SetPlan(Plan{}, addrs)
	time.Sleep(200 * time.Millisecond) // the owner's sender goes idle
	owner.SetPlan(Plan{Send: []string{"watcher"}}, addrs)
	time.Sleep(200 * time.Millisecond)
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owner presumed dead", func() bool { return watcher.Dead()["owner"] })
}
