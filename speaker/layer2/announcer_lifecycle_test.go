package layer2

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
)

func TestAnnouncerReopensFailedSocket(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{0}, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	mustSet(t, a, Desired{v4Eth0: {"eth0"}})
	eventually(t, "the takeover burst", func() bool { return gratuitousCount(a) == 2 })
	gratuitousSent(t, socks)

	first := socks.arpConn("eth0")
	first.readErr <- errors.New("fake: network is down")
	select {
	case err := <-a.Errors():
		if err == nil {
			t.Error("nil error event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error event for the failed socket")
	}
	eventually(t, "a new socket", func() bool { return socks.arpConn("eth0") != first })
	if !first.isClosed() {
		t.Error("the failed socket was not closed")
	}
	// The address is announced again on the new socket, then answered.
	eventually(t, "the burst after reopening", func() bool { return gratuitousCount(a) == 4 })
	if diff := cmp.Diff([]string{"eth0 198.51.100.10 OperationReply", "eth0 198.51.100.10 OperationRequest"}, gratuitousSent(t, socks)); diff != "" {
		t.Errorf("gratuitous packets after reopening (-want +got):\n%s", diff)
	}
	second := socks.arpConn("eth0")
	second.deliver(arpRequest(t, macClient, v4Client, v4Eth0))
	if _, p := parseARPFrame(t, <-second.out); p.Operation != arp.OperationReply {
		t.Errorf("got %v, want a reply", p.Operation)
	}
	if n := a.Stats().ARP.SocketErrors; n != 1 {
		t.Errorf("SocketErrors = %d, want 1", n)
	}
}

func TestAnnouncerRetriesSocketThatFailedToOpen(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{0}, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	errDown := errors.New("fake: interface missing")
	socks.setFail("eth9", errDown)
	err := a.Set(context.Background(), Desired{v4Eth0: {"eth0", "eth9"}})
	if !errors.Is(err, errDown) {
		t.Fatalf("Set() error = %v, want %v", err, errDown)
	}
	// eth0 works meanwhile.
	eventually(t, "the burst on eth0", func() bool { return gratuitousCount(a) == 2 })
	socks.setFail("eth9", nil)
	eventually(t, "eth9 opened and announced", func() bool { return socks.arpConn("eth9") != nil && gratuitousCount(a) == 4 })
	if diff := cmp.Diff([]string{
		"eth0 198.51.100.10 OperationReply", "eth0 198.51.100.10 OperationRequest", "eth9 198.51.100.10 OperationReply", "eth9 198.51.100.10 OperationRequest",
	}, gratuitousSent(t, socks)); diff != "" {
		t.Errorf("gratuitous packets (-want +got):\n%s", diff)
	}
	// Setting the same state does not reopen anything.
	opens := socks.openCount()
	mustSet(t, a, Desired{v4Eth0: {"eth0", "eth9"}})
	if socks.openCount() != opens {
		t.Error("an idempotent Set reopened sockets")
	}
}

func TestAnnouncerRejectsInvalidAddresses(t *testing.T) {
	a, socks := startAnnouncer(t, Config{GratuitousSchedule: []time.Duration{}})
	err := a.Set(context.Background(), Desired{
		{}:                               {"eth0"},
		netip.MustParseAddr("224.0.0.1"): {"eth0"},
		netip.MustParseAddr("::"):        {"eth0"},
		v4Eth0:                           {"eth0"},
		netip.MustParseAddr("::ffff:198.51.100.11"): {"eth0"},
	})
	if !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("Set() error = %v, want ErrInvalidAddress", err)
	}
	if n := a.Stats().Announced; n != 2 {
		t.Errorf("Announced = %d, want the 2 valid addresses", n)
	}
	socks.arpConn("eth0").deliver(arpRequest(t, macClient, v4Client, v4Eth1))
	if _, p := parseARPFrame(t, <-socks.arpConn("eth0").out); p.SenderIP != v4Eth1 {
		t.Errorf("answered for %s, want the unmapped %s", p.SenderIP, v4Eth1)
	}
}

func TestAnnouncerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	socks := newFakeSockets(testMACs())
	a := newAnnouncer(ctx, Config{GratuitousSchedule: []time.Duration{0, time.Hour}}, socks)
	mustSet(t, a, Desired{v4Eth0: {"eth0", "eth1"}, v6Eth0: {"eth0"}})
	cancel()
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("goroutines still running after the context was cancelled (a burst waits an hour)")
	}
	for name, c := range socks.arp {
		if !c.isClosed() {
			t.Errorf("ARP socket on %s still open", name)
		}
	}
	if !socks.ndpConn("eth0").isClosed() {
		t.Error("NDP socket still open")
	}
	if err := a.Set(context.Background(), Desired{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Set() after close error = %v, want ErrClosed", err)
	}
	if a.Reannounce(v4Eth0) {
		t.Error("Reannounce() after close = true")
	}
}
