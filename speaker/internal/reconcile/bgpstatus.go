package reconcile

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/bgp"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// Event reasons recorded on BGPPeers.
const (
	// ReasonBGPSessionFailed: the session with the peer failed or cannot
	// be configured; the message is the session's lastError.
	ReasonBGPSessionFailed = "BGPSessionFailed"
	// ReasonBGPSessionEstablished: the session with the peer came up.
	ReasonBGPSessionEstablished = "BGPSessionEstablished"
	// ReasonBFDNotUp: the session is established with BFD on, but BFD has
	// not come up within bfdGrace: the router does not answer BFD, and a
	// node failure would be detected by the hold time only.
	ReasonBFDNotUp = "BFDNotUp"
)

// bfdGrace is how long BFD may take to come up after its BGP session was
// established before the speaker reports it (BFD's three-way handshake
// takes a few intervals; GoBGP starts it with the session).
const bfdGrace = 10 * time.Second

// bfdNotUp reports whether st is established with BFD on but its BFD has
// not been up for bfdGrace since it started (bfdStart); when it is not
// (yet), wait is how long until it could be (0 when nothing waits). Pure.
func bfdNotUp(st bgp.PeerStatus, now time.Time) (stuck bool, wait time.Duration) {
	if st.State != bgp.StateEstablished || st.BFD == bgp.BFDOff || st.BFD == bgp.BFDUp || st.Since.IsZero() {
		return false, 0
	}
	if up := now.Sub(bfdStart(st)); up < bfdGrace {
		return false, bfdGrace - up
	}
	return true, 0
}

// bfdStart returns when st's BFD session started, for bfdNotUp: when the
// session came up, or later when its BFD settings changed in place (which
// starts a new BFD session on the running BGP session).
func bfdStart(st bgp.PeerStatus) time.Time {
	if st.BFDSince.After(st.Since) {
		return st.BFDSince
	}
	return st.Since
}

// bfdNotUpMessage is the session's lastError while bfdNotUp holds.
func bfdNotUpMessage(st bgp.PeerStatus) string {
	return fmt.Sprintf("BFD is enabled but still %s %v after the session came up or its BFD settings changed (%d BFD packets received): the router does not run BFD for this session, so a node failure is detected by the hold time only; enable BFD on the router (FRR: neighbor %s bfd) or remove spec.bfd",
		st.BFD, bfdGrace, st.Counters.BFDPacketsReceived, st.Address)
}

// bgpWatch is what the loop remembers of each peer's last seen status, to
// turn status changes into counters and events.
type bgpWatch struct {
	state    bgp.SessionState
	bfdNotUp bool
	// bfdNotUpSince is when bfdNotUp started to hold (the session's start
	// plus bfdGrace): the BFDUp condition's transition time.
	bfdNotUpSince time.Time
	lastError     string
	established   uint64
	drops         uint64
}

// bgpObservation is what changed between two looks at the sessions.
type bgpObservation struct {
	// Established and Dropped count transitions per peer since the last
	// look.
	Established, Dropped map[string]uint64
	// Failed maps peers to a new error; Up lists peers newly Established.
	Failed map[string]string
	Up     []string
	// BFDNotUp maps peers whose BFD newly did not come up (bfdNotUp) to
	// their message; nil when none.
	BFDNotUp map[string]string
	// Gone are the peers no longer present.
	Gone []string
}

// observeBGP compares sts with what was seen last and updates seen. The
// speaker's transition counters restart when its server is re-created:
// a counter below the one seen counts from 0. A session in bfdNotUp at now
// has its LastError set to say so.
func observeBGP(seen map[string]bgpWatch, sts []bgp.PeerStatus, now time.Time) bgpObservation {
	o := bgpObservation{Established: map[string]uint64{}, Dropped: map[string]uint64{}, Failed: map[string]string{}}
	present := map[string]bool{}
	for i, st := range sts {
		present[st.Name] = true
		prev := seen[st.Name]
		stuck, _ := bfdNotUp(st, now)
		if stuck {
			sts[i].LastError = bfdNotUpMessage(st)
			st = sts[i]
		}
		errText := st.LastError
		if st.ConfigError != "" {
			errText = st.ConfigError
		}
		o.Established[st.Name] = delta(prev.established, st.Counters.Established)
		o.Dropped[st.Name] = delta(prev.drops, st.Counters.Drops)
		switch {
		case stuck && !prev.bfdNotUp:
			if o.BFDNotUp == nil {
				o.BFDNotUp = map[string]string{}
			}
			o.BFDNotUp[st.Name] = errText
		case !stuck && errText != "" && errText != prev.lastError:
			o.Failed[st.Name] = errText
		}
		if st.State == bgp.StateEstablished && prev.state != bgp.StateEstablished {
			o.Up = append(o.Up, st.Name)
		}
		var stuckSince time.Time
		if stuck {
			stuckSince = bfdStart(st).Add(bfdGrace)
		}
		seen[st.Name] = bgpWatch{state: st.State, bfdNotUp: stuck, bfdNotUpSince: stuckSince, lastError: errText, established: st.Counters.Established, drops: st.Counters.Drops}
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
func (s *Loop) refreshBGP() {
	sts := s.bgpStatuses()
	now := time.Now()
	o := observeBGP(s.bgpSeen, sts, now)
	s.recheckBFD(sts, now)
	m := s.metrics
	for _, st := range sts {
		up := 0.0
		if st.State == bgp.StateEstablished {
			up = 1
		}
		m.BgpSessionUp.WithLabelValues(st.Name).Set(up)
		m.BgpAdvertised.WithLabelValues(st.Name).Set(float64(st.AdvertisedPrefixes))
		for _, b := range bfdStates {
			if st.BFD == bgp.BFDOff {
				m.BgpBFDState.DeleteLabelValues(st.Name, string(b))
				continue
			}
			v := 0.0
			if st.BFD == b {
				v = 1
			}
			m.BgpBFDState.WithLabelValues(st.Name, string(b)).Set(v)
		}
		if n := o.Established[st.Name]; n > 0 {
			m.BgpStateChanges.WithLabelValues(st.Name, "established").Add(float64(n))
		}
		if n := o.Dropped[st.Name]; n > 0 {
			m.BgpStateChanges.WithLabelValues(st.Name, "dropped").Add(float64(n))
		}
	}
	for _, name := range o.Gone {
		m.BgpSessionUp.DeleteLabelValues(name)
		m.BgpAdvertised.DeleteLabelValues(name)
		m.BgpBFDState.DeletePartialMatch(map[string]string{"peer": name})
	}
	for name, msg := range o.Failed {
		s.peerEvent(name, corev1.EventTypeWarning, ReasonBGPSessionFailed, "node "+s.cfg.NodeName+": "+msg)
	}
	for name, msg := range o.BFDNotUp {
		s.peerEvent(name, corev1.EventTypeWarning, ReasonBFDNotUp, "node "+s.cfg.NodeName+": "+msg)
	}
	for _, name := range o.Up {
		s.peerEvent(name, corev1.EventTypeNormal, ReasonBGPSessionEstablished, "node "+s.cfg.NodeName+": session established")
	}
	sessions := sessionStatuses(sts)
	if !sameSessions(sessions, s.lastSessions) {
		s.status.Update(s.statusOf(s.prev, s.lastMembers, sessions))
		s.lastSessions = sessions
	}
}

// bfdCondition returns the SpeakerStatus condition BFDUp, False, when a
// session in seen is in bfdNotUp, naming those peers; nil when none is.
// Pure: its transition time is the earliest such session's.
func bfdCondition(seen map[string]bgpWatch) *metav1.Condition {
	var names []string
	var since time.Time
	for name, w := range seen {
		if !w.bfdNotUp {
			continue
		}
		names = append(names, name)
		if since.IsZero() || w.bfdNotUpSince.Before(since) {
			since = w.bfdNotUpSince
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return &metav1.Condition{
		Type: v1alpha1.SpeakerConditionBFDUp, Status: metav1.ConditionFalse, Reason: v1alpha1.SpeakerReasonBFDNotUp,
		Message: fmt.Sprintf("BFD is enabled but not up with BGPPeer %s although the session is established: the router does not answer BFD, so a failure of this node is detected by the hold time only (see bgpSessions[].lastError)",
			strings.Join(names, ", ")),
		LastTransitionTime: metav1.NewTime(since.Truncate(time.Second)),
	}
}

// recheckBFD schedules one more refresh for when the first session whose BFD
// is not up yet passes bfdGrace: without it nothing would look again, as a
// BFD session that never comes up changes nothing.
func (s *Loop) recheckBFD(sts []bgp.PeerStatus, now time.Time) {
	var next time.Duration
	for _, st := range sts {
		if _, wait := bfdNotUp(st, now); wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
	}
	if next == 0 || s.bgp == nil {
		return
	}
	if s.bfdRecheck != nil {
		s.bfdRecheck.Stop()
	}
	s.bfdRecheck = time.AfterFunc(next+100*time.Millisecond, s.bgp.notify)
}

// peerEvent records an event on a BGPPeer.
func (s *Loop) peerEvent(name, typ, reason, msg string) {
	ref := corev1.ObjectReference{Kind: "BGPPeer", APIVersion: "herald.dev/v1alpha1", Name: name}
	if p, err := s.inf.Peers.Get(name); err == nil {
		ref.UID = p.UID
	}
	s.recorder.Event(ref, typ, reason, msg)
	s.metrics.Events.WithLabelValues(reason).Inc()
}

// unusablePeers returns a NotConfigured status, with the configuration's
// problems as its error, for each BGPPeer that selects this node but that the
// model left out (a missing password Secret, an invalid field) or gave to
// another peer on this node (a duplicate address): such a peer has no
// session, and without this the node's status would not show it. Peers whose
// node selectors cannot be parsed are skipped (their problem is on the
// BGPPeer's condition). Sorted by name.
func unusablePeers(raw []*v1alpha1.BGPPeer, m *config.Model, selfLabels map[string]string, active []config.BGPPeer) []bgp.PeerStatus {
	if m == nil {
		return nil
	}
	var out []bgp.PeerStatus
	for _, p := range raw {
		if p == nil || slices.ContainsFunc(active, func(a config.BGPPeer) bool { return a.Name == p.Name }) {
			continue
		}
		var msgs []string
		for _, pr := range m.ProblemsFor(config.ObjectRef{Kind: config.KindBGPPeer, Name: p.Name}) {
			if pr.Type == v1alpha1.ConditionReady && pr.Status == metav1.ConditionFalse {
				msgs = append(msgs, pr.Message)
			}
		}
		if len(msgs) == 0 || !selectsNode(p.Spec.NodeSelectors, selfLabels) {
			continue
		}
		st := bgp.PeerStatus{Name: p.Name, State: bgp.StateNotConfigured, ConfigError: "the BGPPeer is not usable: " + strings.Join(msgs, "; ")}
		st.Address, _ = netip.ParseAddr(p.Spec.PeerAddress)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b bgp.PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// peersWithoutSource returns a NotConfigured status for each BGPPeer that
// selects this node but names a sourceAddress, or an interface, the node
// does not have
// (decide.Desired.BGPPeersWithoutSource): the node opens no session with it,
// and its status, the BGPPeer's event and the session metric say why.
func peersWithoutSource(peers []config.BGPPeer) []bgp.PeerStatus {
	out := make([]bgp.PeerStatus, 0, len(peers))
	for _, p := range peers {
		why := fmt.Sprintf("this node has no address %s (spec.sourceAddress): it opens no session with this peer; add the address to the node or restrict spec.nodeSelectors to the nodes that have it", p.SourceAddress)
		if p.Unnumbered() {
			why = fmt.Sprintf("this node has no interface %s (spec.interface): it opens no session with this peer; restrict spec.nodeSelectors to the nodes that have it", p.Interface)
		}
		out = append(out, bgp.PeerStatus{Name: p.Name, Address: p.Address, State: bgp.StateNotConfigured, ConfigError: why})
	}
	return out
}

// selectsNode reports whether nodeSelectors select a node with these labels:
// an empty list selects every node; an invalid selector selects none.
func selectsNode(sels []metav1.LabelSelector, nodeLabels map[string]string) bool {
	if len(sels) == 0 {
		return true
	}
	for i := range sels {
		sel, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err == nil && sel.Matches(labels.Set(nodeLabels)) {
			return true
		}
	}
	return false
}

// bgpStatuses returns the BGP server's sessions and the unusable peers,
// sorted by name.
func (s *Loop) bgpStatuses() []bgp.PeerStatus {
	var out []bgp.PeerStatus
	if s.bgp != nil {
		out = append(out, s.bgp.Statuses()...)
	}
	out = append(out, s.badPeers...)
	slices.SortStableFunc(out, func(a, b bgp.PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// updateUnusablePeers recomputes the unusable peers after a reconcile and,
// when they changed, asks for a refresh of the sessions.
func (s *Loop) updateUnusablePeers(d decide.Desired) {
	var selfLabels map[string]string
	if n, err := s.inf.Nodes.Get(s.cfg.NodeName); err == nil {
		selfLabels = n.Labels
	}
	raw, _ := s.inf.Peers.List(labels.Everything())
	bad := append(unusablePeers(raw, s.model, selfLabels, d.BGPPeers), peersWithoutSource(d.BGPPeersWithoutSource)...)
	slices.SortFunc(bad, func(a, b bgp.PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	if !reflect.DeepEqual(bad, s.badPeers) {
		s.badPeers = bad
		if s.bgp != nil {
			s.bgp.notify()
		}
	}
}
