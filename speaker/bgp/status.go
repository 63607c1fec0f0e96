package bgp

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// SessionState is a BGP session's state as RFC 4271 names it, or
// NotConfigured when the peer's configuration was rejected.
type SessionState string

// The session states.
const (
	StateNotConfigured SessionState = "NotConfigured"
	StateIdle          SessionState = "Idle"
	StateConnect       SessionState = "Connect"
	StateActive        SessionState = "Active"
	StateOpenSent      SessionState = "OpenSent"
	StateOpenConfirm   SessionState = "OpenConfirm"
	StateEstablished   SessionState = "Established"
)

// sessionState translates GoBGP's FSM state.
func sessionState(s bgp.FSMState) SessionState {
	switch s {
	case bgp.BGP_FSM_CONNECT:
		return StateConnect
	case bgp.BGP_FSM_ACTIVE:
		return StateActive
	case bgp.BGP_FSM_OPENSENT:
		return StateOpenSent
	case bgp.BGP_FSM_OPENCONFIRM:
		return StateOpenConfirm
	case bgp.BGP_FSM_ESTABLISHED:
		return StateEstablished
	default:
		return StateIdle
	}
}

// apiSessionState translates GoBGP's API session state.
func apiSessionState(s api.PeerState_SessionState) SessionState {
	switch s {
	case api.PeerState_SESSION_STATE_CONNECT:
		return StateConnect
	case api.PeerState_SESSION_STATE_ACTIVE:
		return StateActive
	case api.PeerState_SESSION_STATE_OPENSENT:
		return StateOpenSent
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return StateEstablished
	default:
		return StateIdle
	}
}

// BFDState is the state of a session's BFD session (RFC 5880), or "" when BFD
// is off.
type BFDState string

// The BFD states.
const (
	BFDOff       BFDState = ""
	BFDAdminDown BFDState = "AdminDown"
	BFDDown      BFDState = "Down"
	BFDInit      BFDState = "Init"
	BFDUp        BFDState = "Up"
)

func bfdState(s api.BfdSessionState) BFDState {
	switch s {
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return BFDAdminDown
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return BFDInit
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return BFDUp
	default:
		return BFDDown
	}
}

// PeerStatus is what a user needs to know about one peer's session.
type PeerStatus struct {
	// Name and Address identify the peer.
	Name    string
	Address netip.Addr
	// State is the session's state; Since is when it entered it (for
	// Established: the uptime's start).
	State SessionState
	Since time.Time
	// ConfigError says why the session, or some of its routes, cannot be
	// configured: "" when everything given to Set is applied.
	ConfigError string
	// LastError is the last reason the session failed or could not be set
	// up (connection refused or unanswered, notification, hold timer, BFD
	// down), kept after the session recovers; LastErrorTime is when.
	LastError     string
	LastErrorTime time.Time
	// Prefixes is the number of routes Set asked for this peer (after
	// merging duplicates, without the ones ConfigError explains), and
	// AdvertisedPrefixes the number handed to the session: Prefixes while
	// Established, 0 otherwise.
	Prefixes           int
	AdvertisedPrefixes int
	// BFD is the state of the BFD session, "" when BFD is off. BFDSince is
	// when the speaker last started a BFD session on a running BGP session
	// (a change of the BFD settings alone, applied in place); zero when the
	// BFD session started with the BGP session's configuration.
	BFD      BFDState
	BFDSince time.Time
	// Counters count what happened to the session, for metrics.
	Counters PeerCounters
}

// Uptime returns how long the session has been Established at now, or 0.
func (s PeerStatus) Uptime(now time.Time) time.Duration {
	if s.State != StateEstablished || s.Since.IsZero() {
		return 0
	}
	return now.Sub(s.Since)
}

// PeerCounters are a peer's cumulative counters. The speaker's own counters
// (Established, Drops, ConnectFailures, BFDFailures) last as long as the
// Speaker; the message and BFD packet counters are GoBGP's and restart from 0
// when a changed configuration re-creates the session.
type PeerCounters struct {
	// Established counts the times the session reached Established, and
	// Drops the times it left it.
	Established, Drops uint64
	// ConnectFailures counts failed TCP connection attempts.
	ConnectFailures uint64
	// BFDFailures counts BFD sessions that went down (detection timeout or
	// the router signalling Down).
	BFDFailures uint64
	// Sent and Received count BGP messages.
	Sent, Received MessageCounters
	// BFDPacketsSent and BFDPacketsReceived count BFD control packets.
	BFDPacketsSent, BFDPacketsReceived uint64
}

// MessageCounters count BGP messages by type.
type MessageCounters struct {
	Total, Open, Update, Notification, Keepalive, RouteRefresh uint64
}

func messageCounters(m *api.Message) MessageCounters {
	if m == nil {
		return MessageCounters{}
	}
	return MessageCounters{Total: m.Total, Open: m.Open, Update: m.Update, Notification: m.Notification, Keepalive: m.Keepalive, RouteRefresh: m.Refresh}
}

// disconnectMessage explains why a session went down, from GoBGP's reason and
// message ("" when GoBGP gives no reason).
func disconnectMessage(reason api.PeerState_DisconnectReason, msg string) string {
	switch reason {
	case api.PeerState_DISCONNECT_REASON_UNSPECIFIED:
		return ""
	case api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED:
		return "hold timer expired: nothing received from the router within the hold time"
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED:
		return "the router closed the session with a notification: " + msg
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT:
		return "the speaker closed the session with a notification: " + msg
	case api.PeerState_DISCONNECT_REASON_BAD_PEER_AS:
		return "the router's AS number is not the configured peerASN: " + msg
	case api.PeerState_DISCONNECT_REASON_READ_FAILED:
		return "the router closed the connection (TCP reset or end of stream)"
	case api.PeerState_DISCONNECT_REASON_WRITE_FAILED:
		return "writing to the router failed: the connection broke"
	case api.PeerState_DISCONNECT_REASON_INVALID_MSG:
		// GoBGP v4.8.0 reports a notification received while opening as an
		// invalid message, without its code.
		return "the session failed while opening: the router sent an unexpected or invalid message, " +
			"often a notification rejecting this node's OPEN (check myASN, peerASN and that the router " +
			"has this node as a neighbour): " + msg
	case api.PeerState_DISCONNECT_REASON_ADMIN_DOWN, api.PeerState_DISCONNECT_REASON_DECONFIGURED,
		api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED:
		// Not failures: the speaker's own doing, or the end of the idle
		// wait before reconnecting.
		return ""
	default:
		return fmt.Sprintf("session down: %s", msg)
	}
}

// connectFailureMessage explains a failed connection attempt.
func connectFailureMessage(peer netip.Addr, port uint16, dialErr string, password bool) string {
	hint := "check that the router is reachable, has this node as a neighbour, and uses no TCP MD5 password"
	if password {
		hint = "check that the router is reachable, has this node as a neighbour, and uses the same TCP MD5 password (a wrong password looks like no answer)"
	}
	return fmt.Sprintf("cannot connect to %s: %s: %s", netip.AddrPortFrom(peer, port), dialErr, hint)
}

// sentNotificationMessage explains a notification the speaker sent, or returns
// "" for a Cease, which the speaker sends itself when it deconfigures or
// resets a session.
func sentNotificationMessage(code, subcode uint8) string {
	desc := bgp.NewNotificationErrorCode(code, subcode).String()
	switch code {
	case bgp.BGP_ERROR_CEASE:
		return ""
	case bgp.BGP_ERROR_OPEN_MESSAGE_ERROR:
		if subcode == bgp.BGP_ERROR_SUB_BAD_PEER_AS {
			return "the router's AS number is not the configured peerASN (" + desc + ")"
		}
		return "the speaker rejected the router's OPEN (" + desc + ")"
	case bgp.BGP_ERROR_FSM_ERROR:
		return "the router answered this node's OPEN with something other than an OPEN, usually a notification " +
			"rejecting it: check myASN, peerASN and that the router has this node as a neighbour (" + desc + ")"
	case bgp.BGP_ERROR_HOLD_TIMER_EXPIRED:
		return "hold timer expired: nothing received from the router within the hold time"
	default:
		return "the speaker closed the connection with a notification (" + desc + ")"
	}
}
