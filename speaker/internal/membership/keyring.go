package membership

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrEncryptionFixed reports a SetKeys that would turn encryption on or
// off, which memberlist cannot do while running: that takes a restart,
// and splits the membership until every speaker restarted.
var ErrEncryptionFixed = errors.New("membership: encryption can be turned on or off only at start")

// keyRecheck is how often the keyring is planned again without a change,
// a safety net for a missed member event.
const keyRecheck = 5 * time.Second

// KeyStatus is this member's keyring, by fingerprint (Fingerprint).
type KeyStatus struct {
	// Installed are the fingerprints of the keys it decrypts with, sorted.
	Installed []string
	// Primary is the fingerprint of the key it encrypts with.
	Primary string
	// Waiting says which rotation steps wait for which members.
	Waiting []string
}

// keyringManager moves memberlist's keyring towards the Secret's KeySet
// with PlanKeyring, and publishes the keyring's fingerprints in the
// member's metadata. One goroutine (run) or SetKeys applies a plan at a
// time (mu).
type keyringManager struct {
	m       *Membership
	ring    *memberlist.Keyring
	changed func()

	mu     sync.Mutex
	want   KeySet
	status KeyStatus

	kicks    chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newKeyringManager(m *Membership, want KeySet, changed func()) (*keyringManager, error) {
	var secondary [][]byte
	for _, k := range want.Keys {
		if k.Name != want.Primary {
			secondary = append(secondary, k.Secret)
		}
	}
	ring, err := memberlist.NewKeyring(secondary, want.primaryKey())
	if err != nil {
		return nil, fmt.Errorf("membership: gossip keyring: %w", err)
	}
	k := &keyringManager{m: m, ring: ring, changed: changed, want: want,
		kicks: make(chan struct{}, 1), done: make(chan struct{})}
	k.status = k.statusOf(nil)
	return k, nil
}

// SetKeys makes ks the keys the keyring moves towards: new keys are
// installed before it returns, the primary changes and old keys go as soon
// as the other live members allow it (PlanKeyring), now or later.
func (m *Membership) SetKeys(ks KeySet) error {
	if (m.keys == nil) != ks.Empty() {
		return ErrEncryptionFixed
	}
	if m.keys == nil {
		return nil
	}
	m.keys.mu.Lock()
	m.keys.want = ks
	m.keys.mu.Unlock()
	m.keys.apply()
	return nil
}

// KeyStatus returns this member's keyring; the zero KeyStatus without
// encryption.
func (m *Membership) KeyStatus() KeyStatus {
	if m.keys == nil {
		return KeyStatus{}
	}
	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	return m.keys.status
}

func (k *keyringManager) kick() {
	select {
	case k.kicks <- struct{}{}:
	default:
	}
}

func (k *keyringManager) stop() { k.stopOnce.Do(func() { close(k.done) }) }

func (k *keyringManager) run() {
	tick := time.NewTicker(keyRecheck)
	defer tick.Stop()
	for {
		select {
		case <-k.done:
			return
		case <-k.kicks:
		case <-tick.C:
		}
		k.apply()
	}
}

// apply plans the keyring against the live members' published keyrings,
// carries the plan out, and publishes the result.
func (k *keyringManager) apply() {
	k.mu.Lock()
	plan := PlanKeyring(k.want, k.ring.GetKeys(), k.ring.GetPrimaryKey(), k.m.peerKeys())
	var errs []error
	for _, key := range plan.Add {
		errs = append(errs, k.ring.AddKey(key))
	}
	if plan.Use != nil {
		errs = append(errs, k.ring.UseKey(plan.Use))
	}
	for _, key := range plan.Remove {
		errs = append(errs, k.ring.RemoveKey(key))
	}
	before := k.status
	k.status = k.statusOf(plan.Waiting)
	status := k.status
	k.mu.Unlock()

	log := k.m.log
	if err := errors.Join(errs...); err != nil && log != nil {
		log.Error("gossip keyring change failed", "err", err)
	}
	if !slices.Equal(before.Installed, status.Installed) || before.Primary != status.Primary {
		if log != nil {
			log.Info("gossip keyring changed", "primary", status.Primary, "installed", status.Installed,
				"previousPrimary", before.Primary, "previouslyInstalled", before.Installed)
		}
		if err := k.m.publishKeys(k.published()); err != nil && log != nil {
			log.Warn("publish the gossip keyring", "err", err)
		}
	}
	if !slices.Equal(before.Waiting, status.Waiting) {
		if log != nil && len(status.Waiting) > 0 {
			log.Info("gossip key rotation waits for other speakers", "waiting", status.Waiting)
		}
	}
	if k.changed != nil && !keyStatusEqual(before, status) {
		k.changed()
	}
}

// statusOf describes the keyring now.
func (k *keyringManager) statusOf(waiting []string) KeyStatus {
	s := KeyStatus{Primary: Fingerprint(k.ring.GetPrimaryKey()), Waiting: waiting}
	for _, key := range k.ring.GetKeys() {
		s.Installed = append(s.Installed, Fingerprint(key))
	}
	slices.Sort(s.Installed)
	return s
}

// published is the keyring as the metadata carries it.
func (k *keyringManager) published() *MetaKeys {
	out := &MetaKeys{Primary: fingerprint(k.ring.GetPrimaryKey())}
	for _, key := range k.ring.GetKeys() {
		out.Installed = append(out.Installed, fingerprint(key))
	}
	slices.Sort(out.Installed)
	return out
}

func keyStatusEqual(a, b KeyStatus) bool {
	return a.Primary == b.Primary && slices.Equal(a.Installed, b.Installed) && slices.Equal(a.Waiting, b.Waiting)
}

// peerKeys returns what the other live members publish about their
// keyrings.
func (m *Membership) peerKeys() []PeerKeys {
	alive := m.Alive()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PeerKeys
	for name := range alive {
		if name == m.self {
			continue
		}
		p := PeerKeys{Name: name}
		if meta, ok := m.peers[name]; ok && meta.Keys != nil {
			p.Published, p.Installed, p.Primary = true, meta.Keys.Installed, meta.Keys.Primary
		}
		out = append(out, p)
	}
	return out
}

// publishKeys puts keys into this member's metadata and gossips it.
func (m *Membership) publishKeys(keys *MetaKeys) error {
	m.mu.Lock()
	m.local.Keys = keys
	published, _ := publishedMeta(m.local)
	m.peers[m.self] = published
	m.mu.Unlock()
	if m.ml == nil {
		return nil
	}
	if err := m.ml.UpdateNode(time.Second); err != nil {
		return fmt.Errorf("membership: publish the gossip keyring: %w", err)
	}
	return nil
}
