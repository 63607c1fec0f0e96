package heartbeat

import (
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// needRawSockets skips (fails under CI=true) when this process cannot open
// raw ICMP sockets.
func needRawSockets(t *testing.T) {
	t.Helper()
	e, err := ListenEcho(netip.MustParseAddr("127.0.0.1"))
	if err == nil {
		_ = e.Close()
		return
	}
	msg := "raw ICMP sockets (root or CAP_NET_RAW): " + err.Error()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestEchoOverLoopback sends an echo request to the loopback's kernel and
// reads its answer, over IPv4 and IPv6.
func TestEchoOverLoopback(t *testing.T) {
	needRawSockets(t)
	for _, tt := range []struct{ local, peer string }{
		{"127.0.0.2", "127.0.0.1"},
		{"::1", "::1"},
	} {
		t.Run(tt.peer, func(t *testing.T) {
			e, err := ListenEcho(netip.MustParseAddr(tt.local))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			peer := netip.MustParseAddr(tt.peer)
			// Another prober's answers on the same machine are not this one's.
			other, err := ListenEcho(netip.MustParseAddr(tt.local))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			for other.id == e.id {
				other.id++
				other.id %= 1 << 16
			}
			if err := other.Send(peer, time.Now()); err != nil {
				t.Fatal(err)
			}
			sent := time.Now().Add(-time.Millisecond)
			if err := e.Send(peer, sent); err != nil {
				t.Fatal(err)
			}
			got := make(chan time.Time, 4)
			go func() {
				for {
					from, s, err := e.Receive()
					if err != nil {
						close(got)
						return
					}
					if from != peer {
						t.Errorf("answer from %v, want %v", from, peer)
					}
					got <- s
				}
			}()
			select {
			case s := <-got:
				if !s.Equal(sent) {
					t.Errorf("answer to the probe sent at %v, want %v", s, sent)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no answer from the loopback's kernel in 5 s")
			}
			select {
			case s, ok := <-got:
				if ok {
					t.Errorf("a second answer (to the probe sent at %v): the other prober's answer was taken", s)
				}
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

// TestHeartbeatsSparedWhileKernelAnswers stops the owner's heartbeats
// while its kernel (the loopback's) still answers: the watcher spares it
// and never presumes it dead.
func TestHeartbeatsSparedWhileKernelAnswers(t *testing.T) {
	needRawSockets(t)
	ownerAddr, watcherAddr := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	echo, err := ListenEcho(watcherAddr)
	if err != nil {
		t.Fatal(err)
	}
	var spared, changed atomic.Int32
	watcher, err := Start(Config{Name: "watcher", Listen: netip.AddrPortFrom(watcherAddr, 0), Prober: echo,
		Changed: func() { changed.Add(1) },
		Observe: func(c Change) {
			if c.Kind == Spared {
				spared.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	addrs := map[string]netip.Addr{"owner": ownerAddr, "watcher": watcherAddr}
	owner, err := Start(Config{Name: "owner", Listen: netip.AddrPortFrom(ownerAddr, watcher.Addr().Port())})
	if err != nil {
		t.Fatal(err)
	}
	owner.SetPlan(Plan{Send: []string{"watcher"}}, addrs)
	watcher.SetPlan(Plan{Watch: []string{"owner"}}, addrs)
	time.Sleep(500 * time.Millisecond)
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owner spared", func() bool { return spared.Load() > 0 })
	// Five timeouts of silence later it is still not presumed dead.
	time.Sleep(5 * 175 * time.Millisecond)
	if d := watcher.Dead(); len(d) != 0 || changed.Load() != 0 {
		t.Errorf("with the owner's kernel answering: Dead() = %v, Changed called %d times; want none", d, changed.Load())
	}
	if n := spared.Load(); n != 1 {
		t.Errorf("spared %d times in one silence, want 1", n)
	}
}
