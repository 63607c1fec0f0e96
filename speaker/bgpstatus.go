package speaker

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-dev/herald/speaker/bgp"
)

// Event reasons recorded on BGPPeers.
const (
	// ReasonBGPSessionFailed: the session with the peer failed or cannot
	// be configured; the message is the session's lastError.
	ReasonBGPSessionFailed = "BGPSessionFailed"
	// ReasonBGPSessionEstablished: the session with the peer came up.
	ReasonBGPSessionEstablished = "BGPSessionEstablished"
)

// bgpWatch is what the loop remembers of each peer's last seen status, to
// turn status changes into counters and events.
type bgpWatch struct {
	state       bgp.SessionState
	lastError   string
	established uint64
	drops       uint64
}

// bgpObservation is what changed between two looks at the sessions.
type bgpObservation struct {
	// Established and Dropped count transitions per peer since the last
	// look.
	Established, Dropped map[string]uint64
	// Failed maps peers to a new error; Up lists peers newly Established.
	Failed map[string]string
	Up     []string
	// Gone are the peers no longer present.
	Gone []string
}

// observeBGP compares sts with what was seen last and updates seen. The
// speaker's transition counters restart when its server is re-created:
// a counter below the one seen counts from 0.
func observeBGP(seen map[string]bgpWatch, sts []bgp.PeerStatus) bgpObservation {
	o := bgpObservation{Established: map[string]uint64{}, Dropped: map[string]uint64{}, Failed: map[string]string{}}
	present := map[string]bool{}
	for _, st := range sts {
		present[st.Name] = true
		prev := seen[st.Name]
		errText := st.LastError
		if st.ConfigError != "" {
			errText = st.ConfigError
		}
		o.Established[st.Name] = delta(prev.established, st.Counters.Established)
		o.Dropped[st.Name] = delta(prev.drops, st.Counters.Drops)
		if errText != "" && errText != prev.lastError {
			o.Failed[st.Name] = errText
		}
		if st.State == bgp.StateEstablished && prev.state != bgp.StateEstablished {
			o.Up = append(o.Up, st.Name)
		}
		seen[st.Name] = bgpWatch{state: st.State, lastError: errText, established: st.Counters.Established, drops: st.Counters.Drops}
	}
	for name := range seen {
		if !present[name] {
			o.Gone = append(o.Gone, name)
			delete(seen, name)
		}
	}
	return o
}

func delta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// bfdStates are the values of herald_speaker_bgp_bfd_state's state label.
var bfdStates = []bgp.BFDState{bgp.BFDUp, bgp.BFDDown, bgp.BFDInit, bgp.BFDAdminDown}

// refreshBGP reads the BGP sessions after a change signal: it updates the
// metrics, records events on the BGPPeers whose session failed or came up,
// and hands a changed session list to the status writer (which coalesces
// writes as for layer 2).
func (s *speaker) refreshBGP() {
	if s.bgp == nil {
		return
	}
	sts := s.bgp.Statuses()
	o := observeBGP(s.bgpSeen, sts)
	m := s.metrics
	for _, st := range sts {
		up := 0.0
		if st.State == bgp.StateEstablished {
			up = 1
		}
		m.bgpSessionUp.WithLabelValues(st.Name).Set(up)
		m.bgpAdvertised.WithLabelValues(st.Name).Set(float64(st.AdvertisedPrefixes))
		for _, b := range bfdStates {
			if st.BFD == bgp.BFDOff {
				m.bgpBFDState.DeleteLabelValues(st.Name, string(b))
				continue
			}
			v := 0.0
			if st.BFD == b {
				v = 1
			}
			m.bgpBFDState.WithLabelValues(st.Name, string(b)).Set(v)
		}
		if n := o.Established[st.Name]; n > 0 {
			m.bgpStateChanges.WithLabelValues(st.Name, "established").Add(float64(n))
		}
		if n := o.Dropped[st.Name]; n > 0 {
			m.bgpStateChanges.WithLabelValues(st.Name, "dropped").Add(float64(n))
		}
	}
	for _, name := range o.Gone {
		m.bgpSessionUp.DeleteLabelValues(name)
		m.bgpAdvertised.DeleteLabelValues(name)
		m.bgpBFDState.DeletePartialMatch(map[string]string{"peer": name})
	}
	for name, msg := range o.Failed {
		s.peerEvent(name, corev1.EventTypeWarning, ReasonBGPSessionFailed, "node "+s.cfg.NodeName+": "+msg)
	}
	for _, name := range o.Up {
		s.peerEvent(name, corev1.EventTypeNormal, ReasonBGPSessionEstablished, "node "+s.cfg.NodeName+": session established")
	}
	sessions := sessionStatuses(sts)
	if !reflect.DeepEqual(sessions, s.lastSessions) {
		s.status.update(s.statusOf(s.prev, s.lastMembers, sessions))
		s.lastSessions = sessions
	}
}

// peerEvent records an event on a BGPPeer.
func (s *speaker) peerEvent(name, typ, reason, msg string) {
	ref := &corev1.ObjectReference{Kind: "BGPPeer", APIVersion: "herald.dev/v1alpha1", Name: name}
	if p, err := s.peers.Get(name); err == nil {
		ref.UID = p.UID
	}
	s.recorder.Event(ref, typ, reason, msg)
	s.metrics.events.WithLabelValues(reason).Inc()
}
