package reconcile

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/bgp"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// fakeBGP records what the adapter does with a speaker.
type fakeBGP struct {
	sets    []bgp.Desired
	closed  bool
	changes chan struct{}
	status  []bgp.PeerStatus
}

func (f *fakeBGP) Set(_ context.Context, d bgp.Desired) error {
	f.sets = append(f.sets, d)
	return nil
}
func (f *fakeBGP) Status() []bgp.PeerStatus    { return f.status }
func (f *fakeBGP) Changes() <-chan struct{}    { return f.changes }
func (f *fakeBGP) Close(context.Context) error { f.closed = true; return nil }

func TestBGPAnnouncerLifecycle(t *testing.T) {
	var started []*fakeBGP
	var opts []bgp.Options
	b := newBGPAnnouncer(netip.MustParseAddr("198.51.100.11"), slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(o bgp.Options) (BGPSpeaker, error) {
			f := &fakeBGP{changes: make(chan struct{}, 1)}
			started = append(started, f)
			opts = append(opts, o)
			return f, nil
		})
	ctx := context.Background()
	peer := config.BGPPeer{Name: "tor", Address: netip.MustParseAddr("198.51.100.1"), PeerASN: 64512, MyASN: 64513}
	ad := config.BGPAdvertisement{Name: "ad", AllPeers: true}

	t.Run("no peers: no server", func(t *testing.T) {
		if err := b.Set(ctx, decide.Desired{BGP: map[netip.Addr]decide.BGPEntry{lbV4: {Advertisements: []config.BGPAdvertisement{ad}}}}); err != nil {
			t.Fatal(err)
		}
		if len(started) != 0 {
			t.Fatalf("started %d servers without a peer", len(started))
		}
		if got := b.BGPSessions(); got != nil {
			t.Errorf("sessions without a server: %v", got)
		}
	})
	d := decide.Desired{BGPPeers: []config.BGPPeer{peer}, BGP: map[netip.Addr]decide.BGPEntry{lbV4: {Advertisements: []config.BGPAdvertisement{ad}}}}
	t.Run("first peer starts the server with the node's router id", func(t *testing.T) {
		if err := b.Set(ctx, d); err != nil {
			t.Fatal(err)
		}
		if len(started) != 1 {
			t.Fatalf("started %d servers, want 1", len(started))
		}
		if diff := cmp.Diff(netip.MustParseAddr("198.51.100.11"), opts[0].RouterID, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("router id (-want +got):\n%s", diff)
		}
		if opts[0].ListenPort != 0 {
			t.Errorf("ListenPort %d, want 0 (no listening)", opts[0].ListenPort)
		}
		sets := started[0].sets
		if len(sets) != 1 || len(sets[0].Peers) != 1 || len(sets[0].Peers[0].Routes) != 1 ||
			sets[0].Peers[0].Routes[0].Prefix != netip.PrefixFrom(lbV4, 32) {
			t.Fatalf("Set got %+v, want one peer with %v/32", sets, lbV4)
		}
	})
	t.Run("unchanged state is not applied again", func(t *testing.T) {
		if err := b.Set(ctx, d); err != nil {
			t.Fatal(err)
		}
		if n := len(started[0].sets); n != 1 {
			t.Errorf("%d Sets, want 1", n)
		}
	})
	t.Run("change signal is forwarded", func(t *testing.T) {
		started[0].changes <- struct{}{}
		select {
		case <-b.Changes():
		case <-time.After(5 * time.Second):
			t.Fatal("no change signal")
		}
	})
	t.Run("node no longer eligible: route withdrawn, session kept", func(t *testing.T) {
		if err := b.Set(ctx, decide.Desired{BGPPeers: []config.BGPPeer{peer}}); err != nil {
			t.Fatal(err)
		}
		sets := started[0].sets
		if last := sets[len(sets)-1]; len(last.Peers) != 1 || len(last.Peers[0].Routes) != 0 {
			t.Errorf("last Set %+v, want the peer without routes", last)
		}
	})
	t.Run("last peer gone: deconfigured, then closed", func(t *testing.T) {
		if err := b.Set(ctx, decide.Desired{}); err != nil {
			t.Fatal(err)
		}
		sets := started[0].sets
		if last := sets[len(sets)-1]; len(last.Peers) != 0 {
			t.Errorf("last Set %+v, want no peers", last)
		}
		if !started[0].closed {
			t.Error("server not closed")
		}
	})
	t.Run("peer again: a new server", func(t *testing.T) {
		if err := b.Set(ctx, d); err != nil {
			t.Fatal(err)
		}
		if len(started) != 2 {
			t.Fatalf("started %d servers, want 2", len(started))
		}
		b.Close(ctx)
		if !started[1].closed {
			t.Error("Close did not close the server")
		}
	})
}

func TestSessionStatuses(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	got := sessionStatuses([]bgp.PeerStatus{
		{Name: "a", Address: netip.MustParseAddr("198.51.100.1"), State: bgp.StateEstablished, Since: since, Prefixes: 3, AdvertisedPrefixes: 3, BFD: bgp.BFDUp, LastError: "old"},
		{Name: "b", Address: netip.MustParseAddr("2001:db8::1"), State: bgp.StateNotConfigured, ConfigError: "bad", LastError: "older"},
	})
	if len(got) != 2 {
		t.Fatalf("got %d sessions", len(got))
	}
	type row struct {
		Peer, Addr, State, BFD, Err string
		Prefixes                    int32
		Since                       bool
	}
	var rows []row
	for _, s := range got {
		rows = append(rows, row{s.Peer, s.PeerAddress, s.State, s.BFDState, s.LastError, s.PrefixesAdvertised, s.Since != nil})
	}
	want := []row{
		{"a", "198.51.100.1", "Established", "Up", "old", 3, true},
		{"b", "2001:db8::1", "NotConfigured", "", "bad", 0, false},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	if !got[0].Since.Time.Equal(since.Truncate(time.Second)) {
		t.Errorf("since %v, want %v", got[0].Since.Time, since.Truncate(time.Second))
	}
}

func TestObserveBGP(t *testing.T) {
	seen := map[string]bgpWatch{}
	steps := []struct {
		name string
		in   []bgp.PeerStatus
		want bgpObservation
	}{
		{"first look", []bgp.PeerStatus{{Name: "a", State: bgp.StateActive, LastError: "cannot connect"}},
			bgpObservation{Established: map[string]uint64{"a": 0}, Dropped: map[string]uint64{"a": 0}, Failed: map[string]string{"a": "cannot connect"}}},
		{"same error again: no event", []bgp.PeerStatus{{Name: "a", State: bgp.StateActive, LastError: "cannot connect"}},
			bgpObservation{Established: map[string]uint64{"a": 0}, Dropped: map[string]uint64{"a": 0}, Failed: map[string]string{}}},
		{"up", []bgp.PeerStatus{{Name: "a", State: bgp.StateEstablished, LastError: "cannot connect", Counters: bgp.PeerCounters{Established: 1}}},
			bgpObservation{Established: map[string]uint64{"a": 1}, Dropped: map[string]uint64{"a": 0}, Failed: map[string]string{}, Up: []string{"a"}}},
		{"flap twice between looks", []bgp.PeerStatus{{Name: "a", State: bgp.StateEstablished, LastError: "hold timer expired", Counters: bgp.PeerCounters{Established: 3, Drops: 2}}},
			bgpObservation{Established: map[string]uint64{"a": 2}, Dropped: map[string]uint64{"a": 2}, Failed: map[string]string{"a": "hold timer expired"}}},
		{"server re-created: counters restart", []bgp.PeerStatus{{Name: "a", State: bgp.StateEstablished, LastError: "hold timer expired", Counters: bgp.PeerCounters{Established: 1}}},
			bgpObservation{Established: map[string]uint64{"a": 1}, Dropped: map[string]uint64{"a": 0}, Failed: map[string]string{}}},
		{"config error wins", []bgp.PeerStatus{{Name: "a", State: bgp.StateNotConfigured, ConfigError: "hold time 0", Counters: bgp.PeerCounters{Established: 1}}},
			bgpObservation{Established: map[string]uint64{"a": 0}, Dropped: map[string]uint64{"a": 0}, Failed: map[string]string{"a": "hold time 0"}}},
		{"gone", nil, bgpObservation{Established: map[string]uint64{}, Dropped: map[string]uint64{}, Failed: map[string]string{}, Gone: []string{"a"}}},
	}
	for _, st := range steps {
		got := observeBGP(seen, st.in, time.Now())
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestUnusablePeers(t *testing.T) {
	peer := func(name, addr, secret string, sel ...metav1.LabelSelector) *v1alpha1.BGPPeer {
		return &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.BGPPeerSpec{
			PeerAddress: addr, PeerASN: 64512, MyASN: 64513, NodeSelectors: sel,
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: secret},
		}}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "present"}, Data: map[string][]byte{"password": []byte("x")}}
	rack2 := metav1.LabelSelector{MatchLabels: map[string]string{"rack": "2"}}
	raw := []*v1alpha1.BGPPeer{
		peer("good", "198.51.100.1", "present"),
		peer("no-secret", "198.51.100.2", "absent"),
		peer("no-secret-other-rack", "198.51.100.3", "absent", rack2),
	}
	m := config.Build(config.Snapshot{SecretNamespace: "herald-system", BGPPeers: raw, Secrets: []*corev1.Secret{secret}})
	self := map[string]string{"rack": "1"}
	active := m.BGPPeersForNode(self)
	got := unusablePeers(raw, m, self, active)
	type row struct {
		Name, Addr string
		State      bgp.SessionState
		Secret     bool
	}
	var rows []row
	for _, st := range got {
		rows = append(rows, row{st.Name, st.Address.String(), st.State, strings.Contains(st.ConfigError, "Secret herald-system/absent")})
	}
	want := []row{{"no-secret", "198.51.100.2", bgp.StateNotConfigured, true}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("unusable peers (-want +got):\n%s\n%+v", diff, got)
	}
	if got := unusablePeers(raw, m, map[string]string{"rack": "2"}, m.BGPPeersForNode(map[string]string{"rack": "2"})); len(got) != 2 {
		t.Errorf("rack 2: %d unusable peers, want 2: %+v", len(got), got)
	}
}

// TestObserveBGPBFDNotUp: an established session whose BFD does not come up
// within bfdGrace gets a lastError and one BFDNotUp event, not a
// BGPSessionFailed one; BFD coming up clears it.
func TestObserveBGPBFDNotUp(t *testing.T) {
	seen := map[string]bgpWatch{}
	up := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// bfdSince is when the BFD settings changed in place, after up (0: never).
	session := func(bfd bgp.BFDState, bfdSince time.Duration) []bgp.PeerStatus {
		st := bgp.PeerStatus{Name: "a", Address: netip.MustParseAddr("198.51.100.1"), State: bgp.StateEstablished, Since: up, BFD: bfd,
			Counters: bgp.PeerCounters{Established: 1}}
		if bfdSince > 0 {
			st.BFDSince = up.Add(bfdSince)
		}
		return []bgp.PeerStatus{st}
	}
	steps := []struct {
		name         string
		in           []bgp.PeerStatus
		at           time.Duration // after the session came up
		wantNotUp    bool          // a BFDNotUp event
		wantError    bool          // the session's lastError says so
		wantWait     time.Duration
		wantFailures int
	}{
		{"BFD down at first: within the grace", session(bgp.BFDDown, 0), time.Second, false, false, bfdGrace - time.Second, 0},
		{"still down after the grace: reported", session(bgp.BFDDown, 0), bfdGrace, true, true, 0, 0},
		{"still down: reported once", session(bgp.BFDDown, 0), 2 * bfdGrace, false, true, 0, 0},
		{"BFD up: cleared", session(bgp.BFDUp, 0), 3 * bfdGrace, false, false, 0, 0},
		{"BFD off: nothing to report", session(bgp.BFDOff, 0), 4 * bfdGrace, false, false, 0, 0},
		{"BFD turned on in place long after the session came up: within its own grace", session(bgp.BFDDown, 5*bfdGrace), 5*bfdGrace + time.Second, false, false, bfdGrace - time.Second, 0},
		{"still down a grace after it was turned on: reported", session(bgp.BFDDown, 5*bfdGrace), 6 * bfdGrace, true, true, 0, 0},
	}
	for _, st := range steps {
		now := up.Add(st.at)
		_, wait := bfdNotUp(st.in[0], now)
		o := observeBGP(seen, st.in, now)
		if _, got := o.BFDNotUp["a"]; got != st.wantNotUp {
			t.Errorf("%s: BFDNotUp event %v, want %v", st.name, got, st.wantNotUp)
		}
		if got := strings.Contains(st.in[0].LastError, "BFD is enabled but still"); got != st.wantError {
			t.Errorf("%s: lastError %q, want the BFD message: %v", st.name, st.in[0].LastError, st.wantError)
		}
		notUpSince := up.Add(bfdGrace)
		if !st.in[0].BFDSince.IsZero() {
			notUpSince = st.in[0].BFDSince.Add(bfdGrace)
		}
		if c := bfdCondition(seen); (c != nil) != st.wantError {
			t.Errorf("%s: BFDUp condition %+v, want one: %v", st.name, c, st.wantError)
		} else if c != nil && (c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.SpeakerReasonBFDNotUp ||
			!c.LastTransitionTime.Time.Equal(notUpSince) || !strings.Contains(c.Message, "BGPPeer a ")) {
			t.Errorf("%s: BFDUp condition %+v", st.name, c)
		}
		if wait != st.wantWait {
			t.Errorf("%s: wait %v, want %v", st.name, wait, st.wantWait)
		}
		if len(o.Failed) != st.wantFailures {
			t.Errorf("%s: BGPSessionFailed events %v, want none", st.name, o.Failed)
		}
	}
}
