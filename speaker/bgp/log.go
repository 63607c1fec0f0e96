package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"unicode"
	"unicode/utf8"
)

// logObserver receives what GoBGP only reports in its log: failed connection
// attempts, BFD failures, and notifications sent while a connection opens
// (GoBGP v4.8.0 opens outgoing connections outside its FSM and reports no
// state change when that fails).
type logObserver interface {
	connectFailed(peer netip.Addr, dialErr string)
	bfdFailed(peer netip.Addr, why string)
	bfdListenFailed(err string)
	notificationSent(peer netip.Addr, code, subcode uint8)
	suppressed(msg string) bool
}

// GoBGP's log messages the speaker turns into status (GoBGP v4.8.0; a test
// fails if they change).
const (
	msgConnectFailed    = "failed to connect"
	msgBFDExpired       = "Expired"
	msgBFDRemoteDown    = "Remote peer signaled BFD down"
	msgBFDCannotListen  = "Can't listen UDP"
	msgSentNotification = "sent notification"
	msgStopFailed       = "failed to stop BGP server"
	attrPeerKey         = "Key"   // per-peer loggers: the neighbour address
	attrBFDPeer         = "Peer"  // BFD records: the neighbour address
	attrError           = "Error" // error text
	attrCode            = "Code"  // notification code
	attrSubcode         = "Subcode"
	componentAttrKey    = "component"
	componentAttrGoBGP  = "gobgp"
	bfdExpiredMessage   = "BFD: no packet from the router within the detection time; session reset"
	bfdRemoteDownReason = "BFD: the router signalled its BFD session down; session reset"
)

// logHandler is the slog.Handler GoBGP logs to. It forwards records to the
// caller's handler, tagged component=gobgp and with GoBGP's capitalised keys
// in lowerCamel case, and hands the records the status needs to an observer.
// It asks GoBGP for every level (the connection failures are Debug records)
// and drops what the caller's handler does not want.
type logHandler struct {
	inner slog.Handler
	obs   logObserver
	attrs []slog.Attr // unrenamed, for the observer
}

func newLogHandler(inner slog.Handler, obs logObserver) *logHandler {
	return &logHandler{inner: inner.WithAttrs([]slog.Attr{slog.String(componentAttrKey, componentAttrGoBGP)}), obs: obs}
}

// Enabled reports true: the observer needs records of every level.
func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

// Handle observes the record, then forwards it if the caller's handler
// wants its level.
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	h.observe(r)
	if !h.inner.Enabled(ctx, r.Level) || h.obs.suppressed(r.Message) {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(renameAttr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

// WithAttrs returns a handler whose records carry attrs.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	renamed := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		renamed[i] = renameAttr(a)
	}
	all := make([]slog.Attr, 0, len(h.attrs)+len(attrs))
	all = append(append(all, h.attrs...), attrs...)
	return &logHandler{inner: h.inner.WithAttrs(renamed), obs: h.obs, attrs: all}
}

// WithGroup returns a handler that qualifies later attributes with name.
func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name), obs: h.obs, attrs: h.attrs}
}

// observe passes the records the status needs to the observer.
func (h *logHandler) observe(r slog.Record) {
	switch r.Message {
	case msgConnectFailed, msgBFDExpired, msgBFDRemoteDown, msgBFDCannotListen, msgSentNotification:
	default:
		return
	}
	var peerKey, bfdPeer, errText string
	var code, subcode int64
	take := func(a slog.Attr) {
		switch a.Key {
		case attrPeerKey:
			peerKey = a.Value.String()
		case attrBFDPeer:
			bfdPeer = a.Value.String()
		case attrError:
			errText = a.Value.String()
		case attrCode:
			code = a.Value.Int64()
		case attrSubcode:
			subcode = a.Value.Int64()
		}
	}
	for _, a := range h.attrs {
		take(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		take(a)
		return true
	})
	switch r.Message {
	case msgConnectFailed:
		if peer, err := netip.ParseAddr(peerKey); err == nil {
			h.obs.connectFailed(peer, errText)
		}
	case msgBFDExpired, msgBFDRemoteDown:
		why := bfdExpiredMessage
		if r.Message == msgBFDRemoteDown {
			why = bfdRemoteDownReason
		}
		if peer, err := netip.ParseAddr(bfdPeer); err == nil {
			h.obs.bfdFailed(peer, why)
		}
	case msgBFDCannotListen:
		h.obs.bfdListenFailed(errText)
	case msgSentNotification:
		if peer, err := netip.ParseAddr(peerKey); err == nil {
			h.obs.notificationSent(peer, uint8(code), uint8(subcode))
		}
	}
}

// renameAttr writes GoBGP's keys ("Topic", "Key") in lowerCamel case, as
// Herald's logs do.
func renameAttr(a slog.Attr) slog.Attr {
	r, size := utf8.DecodeRuneInString(a.Key)
	if unicode.IsUpper(r) {
		a.Key = string(unicode.ToLower(r)) + a.Key[size:]
	}
	return a
}
