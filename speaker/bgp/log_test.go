package bgp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type fakeObserver struct{ got []string }

func (f *fakeObserver) connectFailed(peer netip.Addr, dialErr string) {
	f.got = append(f.got, "connect "+peer.String()+" "+dialErr)
}
func (f *fakeObserver) bfdFailed(peer netip.Addr, why string) {
	f.got = append(f.got, "bfd "+peer.String()+" "+why)
}
func (f *fakeObserver) bfdListenFailed(err string) { f.got = append(f.got, "listen "+err) }
func (f *fakeObserver) suppressed(msg string) bool { return msg == "noise" }
func (f *fakeObserver) notificationSent(peer netip.Addr, code, subcode uint8) {
	f.got = append(f.got, fmt.Sprintf("notification %v %d/%d", peer, code, subcode))
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	obs := &fakeObserver{}
	inner := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	// GoBGP's logger, and a per-peer logger as GoBGP's FSM makes it.
	logger := slog.New(newLogHandler(inner, obs))
	peerLog := logger.With(slog.String("Topic", "Peer"), slog.String("Key", "198.51.100.1"))

	peerLog.Debug(msgConnectFailed, slog.String("Error", "dial tcp 198.51.100.1:179: i/o timeout"))
	logger.Warn(msgBFDExpired, slog.String("Topic", "bfd"), slog.String("Peer", "198.51.100.2"))
	logger.Warn(msgBFDRemoteDown, slog.String("Topic", "bfd"), slog.String("Peer", "198.51.100.3"))
	logger.Error(msgBFDCannotListen, slog.String("Topic", "bfd"), slog.Any("Error", errors.New("address in use")))
	peerLog.Info(msgSentNotification, slog.String("State", "BGP_FSM_ACTIVE"), slog.Int("Code", 2), slog.Int("Subcode", 2), slog.Any("Data", []byte{}))
	peerLog.Info("Peer Up", slog.String("State", "BGP_FSM_OPENCONFIRM"))
	peerLog.Debug("sent update")
	logger.Error("noise")

	wantObserved := []string{
		"connect 198.51.100.1 dial tcp 198.51.100.1:179: i/o timeout",
		"bfd 198.51.100.2 " + bfdExpiredMessage,
		"bfd 198.51.100.3 " + bfdRemoteDownReason,
		"listen address in use",
		"notification 198.51.100.1 2/2",
	}
	if diff := cmp.Diff(wantObserved, obs.got); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
	wantLog := []string{
		`level=WARN msg=Expired component=gobgp topic=bfd peer=198.51.100.2`,
		`level=WARN msg="Remote peer signaled BFD down" component=gobgp topic=bfd peer=198.51.100.3`,
		`level=ERROR msg="Can't listen UDP" component=gobgp topic=bfd error="address in use"`,
		`level=INFO msg="sent notification" component=gobgp topic=Peer key=198.51.100.1 state=BGP_FSM_ACTIVE code=2 subcode=2 data=""`,
		`level=INFO msg="Peer Up" component=gobgp topic=Peer key=198.51.100.1 state=BGP_FSM_OPENCONFIRM`,
	}
	if diff := cmp.Diff(wantLog, strings.Split(strings.TrimSpace(buf.String()), "\n")); diff != "" {
		t.Errorf("forwarded records (-want +got):\n%s", diff)
	}
}

func TestConnectFailureMessage(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.1")
	with := connectFailureMessage(peer, 179, "dial tcp: i/o timeout", true)
	without := connectFailureMessage(peer, 1179, "dial tcp: connection refused", false)
	for _, tt := range []struct{ msg, want string }{
		{with, "cannot connect to 198.51.100.1:179: dial tcp: i/o timeout"},
		{with, "same TCP MD5 password"},
		{without, "198.51.100.1:1179: dial tcp: connection refused"},
		{without, "uses no TCP MD5 password"},
	} {
		if !strings.Contains(tt.msg, tt.want) {
			t.Errorf("%q lacks %q", tt.msg, tt.want)
		}
	}
}
