package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

// bfdResetWindow is how long after a BFD failure the notification GoBGP sends
// to reset the session is attributed to BFD.
const bfdResetWindow = 2 * time.Second

// updateRecords brings the peer records in line with a Set: one record per
// desired peer name, with its configuration problems and route count.
func (s *Speaker) updateRecords(d Desired, want desiredState, problems map[string]peerProblem, dropped map[netip.Addr]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range sortedPeers(d.Peers) {
		if seen[p.Name] {
			rec := s.records[p.Name]
			rec.sessionErr = joinNonEmpty(rec.sessionErr, errorText(problems[p.Name].session))
			continue
		}
		seen[p.Name] = true
		rec := s.records[p.Name]
		if rec == nil || rec.status.Address != p.Address {
			rec = &peerRecord{status: PeerStatus{Name: p.Name, Address: p.Address, State: StateNotConfigured, Since: time.Now()}}
			s.records[p.Name] = rec
		}
		rec.port, rec.password, rec.bfd = p.port(), p.Password != "", p.BFD.Enabled
		prob := problems[p.Name]
		rec.sessionErr = errorText(prob.session)
		rec.routesErr = errorText(prob.routes)
		rec.status.Prefixes = 0
		if prob.session != nil {
			continue
		}
		if _, ok := want.sessions[p.Address]; !ok {
			continue // another peer has the address; prob.session says so
		}
		rec.status.Prefixes = len(want.routes[p.Address]) - dropped[p.Address]
		if n := dropped[p.Address]; n > 0 {
			rec.routesErr = joinNonEmpty(rec.routesErr, fmt.Sprintf("bgp: %d routes left out: more than %d distinct export groups", n, maxGroups))
		}
	}
	for name := range s.records {
		if !seen[name] {
			delete(s.records, name)
		}
	}
}

// recordFor returns the record of the configured (or being configured)
// session at addr, or nil. Called with s.mu held.
func (s *Speaker) recordFor(addr netip.Addr) *peerRecord {
	for _, rec := range s.records {
		if rec.status.Address == addr && rec.sessionErr == "" {
			return rec
		}
	}
	return nil
}

// adoptSessions marks as configured the records of sessions that exist but
// were not added for them (a peer renamed, keeping its address and settings),
// with the session's current state. Called with s.setMu held.
func (s *Speaker) adoptSessions(ctx context.Context) {
	s.mu.Lock()
	var orphans []netip.Addr
	for _, rec := range s.records {
		if _, ok := s.applied.sessions[rec.status.Address]; ok && !rec.configured && rec.sessionErr == "" {
			orphans = append(orphans, rec.status.Address)
		}
	}
	s.mu.Unlock()
	for _, addr := range orphans {
		state := StateIdle
		_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
			if p.State != nil {
				state = apiSessionState(p.State.SessionState)
			}
		})
		s.mu.Lock()
		if rec := s.recordFor(addr); rec != nil && !rec.configured {
			rec.configured = true
			rec.status.State, rec.status.Since = state, time.Now()
		}
		s.mu.Unlock()
	}
}

// sessionAdding marks the session at addr as configured.
func (s *Speaker) sessionAdding(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.recordFor(addr); rec != nil {
		rec.configured = true
		rec.status.State, rec.status.Since = StateIdle, time.Now()
		rec.status.BFDSince = time.Time{}
	}
}

// bfdRestarted records that the BFD settings of the session at addr were
// changed in place: GoBGP stopped its BFD session and started a new one.
func (s *Speaker) bfdRestarted(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.recordFor(addr); rec != nil {
		rec.status.BFDSince = time.Now()
	}
}

// sessionDeleted marks the session at addr as gone.
func (s *Speaker) sessionDeleted(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.records {
		if rec.status.Address == addr && rec.configured {
			rec.configured = false
			rec.status.State, rec.status.Since = StateNotConfigured, time.Now()
		}
	}
}

// sessionRefused records GoBGP's refusal to add the session at addr.
func (s *Speaker) sessionRefused(addr netip.Addr, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.recordFor(addr); rec != nil {
		rec.sessionErr = fmt.Sprintf("bgp: GoBGP refused the session: %v", err)
		rec.configured = false
		rec.status.State, rec.status.Since = StateNotConfigured, time.Now()
	}
}

// onPeerEvent follows GoBGP's session state changes.
func (s *Speaker) onPeerEvent(e *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if e.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := e.Peer.State
	s.mu.Lock()
	rec := s.recordFor(st.NeighborAddress)
	if rec == nil || !rec.configured {
		s.mu.Unlock()
		return
	}
	state := sessionState(st.SessionState)
	if state != rec.status.State {
		if state == StateEstablished {
			rec.status.Counters.Established++
		}
		if rec.status.State == StateEstablished {
			rec.status.Counters.Drops++
		}
		rec.status.State, rec.status.Since = state, at
	}
	msg := disconnectMessage(st.DisconnectReason, st.DisconnectMessage)
	bfdCaused := st.DisconnectReason == api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT &&
		at.Sub(rec.lastBFDFailed) < bfdResetWindow
	if msg != "" && !bfdCaused {
		rec.status.LastError, rec.status.LastErrorTime = msg, at
	}
	s.mu.Unlock()
	s.notify()
}

// connectFailed records a failed connection attempt (logObserver).
func (s *Speaker) connectFailed(peer netip.Addr, dialErr string) {
	s.mu.Lock()
	rec := s.recordFor(peer)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	rec.status.Counters.ConnectFailures++
	msg := connectFailureMessage(peer, rec.port, dialErr, rec.password)
	changed := msg != rec.status.LastError
	rec.status.LastError, rec.status.LastErrorTime = msg, time.Now()
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// bfdFailed records a BFD failure (logObserver).
func (s *Speaker) bfdFailed(peer netip.Addr, why string) {
	s.mu.Lock()
	rec := s.recordFor(peer)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	rec.status.Counters.BFDFailures++
	rec.lastBFDFailed = now
	rec.status.LastError, rec.status.LastErrorTime = why, now
	rec.status.BFD = BFDDown
	s.mu.Unlock()
	s.notify()
}

// notificationSent records a notification the speaker sent (logObserver).
func (s *Speaker) notificationSent(peer netip.Addr, code, subcode uint8) {
	msg := sentNotificationMessage(code, subcode)
	if msg == "" {
		return
	}
	s.mu.Lock()
	rec := s.recordFor(peer)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	changed := msg != rec.status.LastError
	rec.status.LastError, rec.status.LastErrorTime = msg, time.Now()
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// suppressed reports whether a GoBGP log record is noise the speaker caused
// itself (logObserver).
func (s *Speaker) suppressed(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping && msg == msgStopFailed
}

// bfdListenFailed records that GoBGP cannot receive BFD packets
// (logObserver).
func (s *Speaker) bfdListenFailed(err string) {
	s.mu.Lock()
	msg := "bgp: BFD cannot listen on UDP port 3784: " + err
	changed := s.bfdListenErr != msg
	s.bfdListenErr = msg
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// neighborCheckTicks is how many status polls apart checkNeighbors looks for
// the unnumbered peers' routers again (2 s).
const neighborCheckTicks = 4

// pollBFD follows BFD state changes, which GoBGP does not report as events,
// and the unnumbered peers' routers, until ctx ends.

func (s *Speaker) pollBFD(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(statusPollInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.refreshBFD(ctx) {
			s.notify()
		}
		if tick%neighborCheckTicks == 0 {
			s.checkNeighbors(ctx)
		}
	}
}

// liveBFD returns the peers whose BFD session GoBGP holds Up or Init: the
// router's session may be Up, and would see a restart of it as a failure.
func (s *Speaker) liveBFD(ctx context.Context) map[netip.Addr]bool {
	live := map[netip.Addr]bool{}
	s.srv.ListBfdPeer(ctx, func(addr string, st *api.BfdPeerState) {
		switch st.SessionState {
		case api.BfdSessionState_BFD_SESSION_STATE_UP, api.BfdSessionState_BFD_SESSION_STATE_INIT:
			if a, err := netip.ParseAddr(addr); err == nil {
				live[a] = true
			}
		}
	})
	return live
}

// refreshBFD copies GoBGP's BFD states and packet counters into the records
// and reports whether a state changed.
func (s *Speaker) refreshBFD(ctx context.Context) bool {
	states := map[netip.Addr]*api.BfdPeerState{}
	s.srv.ListBfdPeer(ctx, func(addr string, st *api.BfdPeerState) {
		if a, err := netip.ParseAddr(addr); err == nil {
			states[a] = st
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, rec := range s.records {
		want := BFDOff
		if rec.bfd && rec.configured {
			want = BFDDown
			if st, ok := states[rec.status.Address]; ok {
				want = bfdState(st.SessionState)
				if st.BfdAsync != nil {
					rec.status.Counters.BFDPacketsSent = st.BfdAsync.TransmittedPackets
					rec.status.Counters.BFDPacketsReceived = st.BfdAsync.ReceivedPackets
				}
			}
		}
		if want != rec.status.BFD {
			rec.status.BFD = want
			changed = true
		}
	}
	return changed
}

// Status returns every desired peer's status, sorted by name.
func (s *Speaker) Status() []PeerStatus {
	ctx := context.Background()
	s.refreshBFD(ctx)
	counters := map[netip.Addr][2]MessageCounters{}
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil || p.State.Messages == nil {
			return
		}
		if a, err := netip.ParseAddr(p.Conf.NeighborAddress); err == nil {
			counters[a] = [2]MessageCounters{messageCounters(p.State.Messages.Sent), messageCounters(p.State.Messages.Received)}
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PeerStatus, 0, len(s.records))
	for _, rec := range s.records {
		st := rec.status
		if c, ok := counters[st.Address]; ok && rec.configured {
			st.Counters.Sent, st.Counters.Received = c[0], c[1]
		}
		bfdErr := ""
		if rec.bfd {
			bfdErr = s.bfdListenErr
		}
		st.ConfigError = joinNonEmpty(rec.sessionErr, rec.routesErr, bfdErr)
		if st.State == StateEstablished {
			st.AdvertisedPrefixes = st.Prefixes
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}
