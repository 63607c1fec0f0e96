package membership

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// Config configures speaker membership.
type Config struct {
	// Name is this member's name: the node name.
	Name string
	// BindAddr and BindPort are where membership listens (UDP and TCP).
	BindAddr string
	BindPort int
	// AdvertiseAddr is the address other speakers reach this one at (the
	// node's address); AdvertisePort defaults to BindPort.
	AdvertiseAddr string
	AdvertisePort int
	// Keys, when not empty, encrypt and authenticate membership traffic
	// (AES-GCM): every key decrypts, the primary encrypts. SetKeys changes
	// them at run time; encryption cannot be turned on or off then.
	Keys KeySet
	// KeysChanged, when set, is called (without locks held) after the
	// keyring or what it waits for changed; KeyStatus tells how.
	KeysChanged func()
	// ProbeInterval is how often each member probes another; default 200 ms.
	// Detection of a dead member takes about 5 to 8 intervals (see
	// memberlistConfig).
	ProbeInterval time.Duration
	// Logger receives memberlist's own log lines, at debug level (warnings
	// and errors at their levels). Nil discards them.
	Logger *slog.Logger
}

// Membership is the set of live speakers, kept by SWIM gossip
// (github.com/hashicorp/memberlist) among the speakers themselves, tuned for
// a LAN. Each member publishes metadata: the MACs of its interfaces (so a
// layer-2 conflict can be traced to a node) and kube-proxy's verdicts (so
// every speaker excludes a node whose data plane says it cannot serve).
type Membership struct {
	ml      *memberlist.Memberlist
	self    string
	log     *slog.Logger
	changed func()

	mu    sync.Mutex
	local Meta
	peers map[string]Meta // last metadata seen of every member, dead ones included
	state map[string]bool // every member ever seen

	keys *keyringManager // nil: no encryption
}

// Meta is what a member publishes about itself.
type Meta struct {
	// MACs are the hardware addresses of the member's interfaces.
	MACs []net.HardwareAddr
	// DataPlaneDown is true when kube-proxy's node health check fails.
	DataPlaneDown bool
	// Started is true once the member's reconcile loop runs: it announces
	// its share of the addresses, so a speaker that starts and finds it
	// joins a running cluster rather than one starting beside it (see
	// Membership.Started). Speakers of an earlier version never set it.
	Started bool
	// Withdrawn are hashes (ServiceHash) of Services whose kube-proxy health
	// check on the member says it has no local endpoint, sorted.
	Withdrawn []uint64
	// Keys is the member's keyring, as fingerprints; nil when it publishes
	// none (no encryption, or a speaker of an earlier version). Membership
	// fills it in: SetLocal ignores the caller's.
	Keys *MetaKeys
}

// MetaKeys is a member's keyring as the others see it.
type MetaKeys struct {
	// Installed are the fingerprints of the keys it decrypts with, sorted.
	Installed []uint32
	// Primary is the fingerprint of the key it encrypts with.
	Primary uint32
}

// The bits of the metadata's flags byte. Speakers of an earlier version
// read only flagDataPlaneDown and ignore the others.
const (
	flagDataPlaneDown byte = 1 << iota
	flagStarted
)

const (
	metaVersion = 1
	// maxMetaMACs bounds the MACs published: memberlist's metadata is at
	// most 512 bytes.
	maxMetaMACs = 16
)

// encode writes m in at most limit bytes: version, flags, the MACs, as
// many withdrawn hashes as fit, then the keyring's fingerprints (after the
// hashes, where speakers of an earlier version, which read the same
// version byte, stop reading). It reports how many hashes were left out.
func (m Meta) encode(limit int) ([]byte, int) {
	var b bytes.Buffer
	b.WriteByte(metaVersion)
	var flags byte
	if m.DataPlaneDown {
		flags |= flagDataPlaneDown
	}
	if m.Started {
		flags |= flagStarted
	}
	b.WriteByte(flags)
	macs := m.MACs[:min(len(m.MACs), maxMetaMACs)]
	b.WriteByte(byte(len(macs)))
	for _, mac := range macs {
		b.WriteByte(byte(len(mac)))
		b.Write(mac)
	}
	var keys []byte
	if m.Keys != nil {
		installed := m.Keys.Installed[:min(len(m.Keys.Installed), MaxKeys)]
		keys = append(keys, byte(len(installed)))
		for _, fp := range installed {
			keys = binary.BigEndian.AppendUint32(keys, fp)
		}
		keys = binary.BigEndian.AppendUint32(keys, m.Keys.Primary)
	}
	room := max(0, (limit-b.Len()-2-len(keys))/8)
	n := min(len(m.Withdrawn), room, 0xffff)
	_ = binary.Write(&b, binary.BigEndian, uint16(n))
	for _, h := range m.Withdrawn[:n] {
		_ = binary.Write(&b, binary.BigEndian, h)
	}
	b.Write(keys)
	return b.Bytes(), len(m.Withdrawn) - n
}

// errBadMeta reports metadata that does not decode.
var errBadMeta = errors.New("speaker: malformed member metadata")

func decodeMeta(p []byte) (Meta, error) {
	var m Meta
	r := bytes.NewReader(p)
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != metaVersion {
		return m, errBadMeta
	}
	m.DataPlaneDown = hdr[1]&flagDataPlaneDown != 0
	m.Started = hdr[1]&flagStarted != 0
	for range int(hdr[2]) {
		n, err := r.ReadByte()
		if err != nil {
			return m, errBadMeta
		}
		mac := make(net.HardwareAddr, n)
		if _, err := io.ReadFull(r, mac); err != nil {
			return m, errBadMeta
		}
		m.MACs = append(m.MACs, mac)
	}
	var count uint16
	if err := binary.Read(r, binary.BigEndian, &count); err != nil {
		return m, errBadMeta
	}
	m.Withdrawn = make([]uint64, count)
	if err := binary.Read(r, binary.BigEndian, m.Withdrawn); err != nil {
		return m, errBadMeta
	}
	if r.Len() == 0 {
		return m, nil
	}
	n, _ := r.ReadByte()
	if int(n) > MaxKeys {
		return m, errBadMeta
	}
	k := &MetaKeys{Installed: make([]uint32, n)}
	if err := binary.Read(r, binary.BigEndian, k.Installed); err != nil {
		return m, errBadMeta
	}
	if err := binary.Read(r, binary.BigEndian, &k.Primary); err != nil {
		return m, errBadMeta
	}
	m.Keys = k
	return m, nil
}

// ServiceHash is how members name a Service in their metadata: FNV-1a-64
// of namespace/name.
func ServiceHash(k decide.ServiceKey) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k.Namespace))
	h.Write([]byte{'/'})
	h.Write([]byte(k.Name))
	return h.Sum64()
}

// memberlistConfig returns memberlist's LAN configuration tuned for fast
// failure detection; see the package doc for the arithmetic.
func memberlistConfig(c Config) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.BindPort
	if c.AdvertisePort != 0 {
		mc.AdvertisePort = c.AdvertisePort
	}
	interval := c.ProbeInterval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	mc.ProbeInterval = interval
	mc.ProbeTimeout = interval / 2
	mc.IndirectChecks = 3
	// Suspicion: 800 ms once the others agree (Lifeguard: each independent
	// suspicion shortens it), up to 2.4 s while one member alone suspects,
	// which is what a member starved of CPU does. Dead nodes are the fast
	// failure detector's (package heartbeat, 175 ms); membership confirms
	// them well within its 5 s, and decides alone only for a dead speaker
	// on a live node, which costs clients nothing (its kube-proxy still
	// forwards).
	mc.SuspicionMult = 4
	mc.SuspicionMaxTimeoutMult = 3
	// Gossip: news (a join, a suspicion, a death, new metadata) goes to
	// four members every 100 ms, about 3 rounds to reach 100 members and 5
	// to reach 1,000. It was every 50 ms before the fast failure detector
	// took dead nodes over; the gossip timer fires whether or not there is
	// news, so at rest it was 20 of an idle speaker's wake-ups a second.
	mc.GossipInterval = 100 * time.Millisecond
	mc.GossipNodes = 4
	// No compression: the messages are a few hundred bytes on a LAN, and
	// compressing each probe cost an LZW writer's allocation (a sixth of
	// an idle speaker's sampled CPU). Members still read compressed
	// messages from speakers of an earlier version.
	mc.EnableCompression = false
	mc.RetransmitMult = 3
	mc.PushPullInterval = 5 * time.Second
	mc.TCPTimeout = time.Second
	mc.DeadNodeReclaimTime = time.Second
	mc.GossipToTheDeadTime = 5 * time.Second
	mc.Logger = log.New(memberlistLogWriter{c.Logger}, "", 0)
	return mc
}

// New starts membership; changed is called (from memberlist's
// goroutines, so it must not block) whenever a member joins, leaves, dies
// or updates its metadata.
func New(c Config, changed func()) (*Membership, error) {
	m := &Membership{self: c.Name, log: c.Logger, changed: changed, peers: map[string]Meta{}, state: map[string]bool{}}
	mc := memberlistConfig(c)
	mc.Delegate = (*metaDelegate)(m)
	mc.Events = (*eventDelegate)(m)
	if !c.Keys.Empty() {
		keys, err := newKeyringManager(m, c.Keys, c.KeysChanged)
		if err != nil {
			return nil, err
		}
		m.keys = keys
		mc.Keyring = keys.ring
		m.local.Keys = keys.published()
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("speaker: start membership on %s:%d: %w", c.BindAddr, c.BindPort, err)
	}
	m.ml = ml
	if m.keys != nil {
		go m.keys.run()
	}
	return m, nil
}

// Join contacts the given addresses (host:port) in parallel and returns
// how many answered.
func (m *Membership) Join(addrs []string) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := 0
	sem := make(chan struct{}, 8)
	for _, a := range addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if n, err := m.ml.Join([]string{a}); err == nil && n > 0 {
				mu.Lock()
				joined++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return joined
}

// Alive returns the names of the live members (alive or suspect: a suspect
// member still announces, and moving its addresses on a false alarm would
// double the disruption), this one included.
func (m *Membership) Alive() map[string]bool {
	out := map[string]bool{m.self: true}
	for _, n := range m.ml.Members() {
		out[n.Name] = true
	}
	return out
}

// Started returns the live members other than this one whose metadata
// says their reconcile loop runs (Meta.Started).
func (m *Membership) Started() map[string]bool {
	alive := m.Alive()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for name, meta := range m.peers {
		if name != m.self && alive[name] && meta.Started {
			out[name] = true
		}
	}
	return out
}

// Addresses returns the address of every live member, this one included.
func (m *Membership) Addresses() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, n := range m.ml.Members() {
		if a, ok := netip.AddrFromSlice(n.Addr); ok {
			out[n.Name] = a.Unmap()
		}
	}
	return out
}

// Counts returns the number of live members and of members known to have
// died or left, for metrics. (memberlist does not expose whether a member
// is suspect, or whether a gone member left or died.)
func (m *Membership) Counts() (alive, gone int) {
	live := m.Alive()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.state {
		if !live[name] {
			gone++
		}
	}
	return len(live), gone
}

// Forget drops what membership remembers of the members that are not
// alive and that keep says are gone (their Node was deleted): their
// metadata and their count among the gone members. Without it, a cluster
// that replaces its nodes would keep every node it ever had.
func (m *Membership) Forget(gone func(name string) bool) {
	live := m.Alive()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.state {
		if !live[name] && gone(name) {
			delete(m.state, name)
			delete(m.peers, name)
		}
	}
	for name := range m.peers {
		if !live[name] && gone(name) {
			delete(m.peers, name)
		}
	}
}

// NodeForMAC returns the member whose metadata lists mac, dead members
// included (after a partition both sides see the other as dead).
func (m *Membership) NodeForMAC(mac net.HardwareAddr) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.peers))
	for n := range m.peers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, x := range m.peers[n].MACs {
			if bytes.Equal(x, mac) {
				return n, true
			}
		}
	}
	return "", false
}

// Verdicts returns, among the live members, those whose data plane is down
// and, per Service of services, those that withdrew it.
func (m *Membership) Verdicts(services []decide.Service) (down map[string]bool, withdrawn map[decide.ServiceKey][]string) {
	alive := m.Alive()
	m.mu.Lock()
	defer m.mu.Unlock()
	down = map[string]bool{}
	withdrawn = map[decide.ServiceKey][]string{}
	var names []string
	for n, meta := range m.peers {
		if !alive[n] {
			continue
		}
		if meta.DataPlaneDown {
			down[n] = true
		}
		if len(meta.Withdrawn) > 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return down, withdrawn
	}
	slices.Sort(names)
	for _, s := range services {
		h := ServiceHash(s.Key)
		for _, n := range names {
			if _, found := slices.BinarySearch(m.peers[n].Withdrawn, h); found {
				withdrawn[s.Key] = append(withdrawn[s.Key], n)
			}
		}
	}
	return down, withdrawn
}

// publishedMeta returns meta as the other members decode it from the
// metadata this member publishes (memberlist.MetaMaxSize bytes), and how
// many withdrawn hashes did not fit.
func publishedMeta(meta Meta) (Meta, int) {
	b, dropped := meta.encode(memberlist.MetaMaxSize)
	out, err := decodeMeta(b)
	if err != nil {
		// encode and decodeMeta are each other's inverse; a failure here is
		// a bug, and the node then claims no withdrawal, like its peers.
		return Meta{MACs: meta.MACs, DataPlaneDown: meta.DataPlaneDown, Started: meta.Started}, len(meta.Withdrawn)
	}
	return out, dropped
}

// SetLocal publishes new metadata for this member if it changed.
func (m *Membership) SetLocal(meta Meta) error {
	slices.Sort(meta.Withdrawn)
	meta.Withdrawn = slices.Compact(meta.Withdrawn)
	// The node judges itself by what the others can read, never by more:
	// hashes beyond memberlist's metadata limit are left out of its own view
	// too, so every speaker's election sees the same withdrawals.
	m.mu.Lock()
	meta.Keys = m.local.Keys
	published, dropped := publishedMeta(meta)
	same := metaEqual(m.local, meta)
	m.local = meta
	m.peers[m.self] = published
	m.mu.Unlock()
	if dropped > 0 && !same && m.log != nil {
		m.log.Warn("too many withdrawn Services for the member metadata; those left out stay announced by this node, as every speaker sees it",
			"withdrawn", len(meta.Withdrawn), "leftOut", dropped)
	}
	if same {
		return nil
	}
	if err := m.ml.UpdateNode(time.Second); err != nil {
		return fmt.Errorf("speaker: publish member metadata: %w", err)
	}
	return nil
}

func metaEqual(a, b Meta) bool {
	return a.DataPlaneDown == b.DataPlaneDown && a.Started == b.Started && slices.Equal(a.Withdrawn, b.Withdrawn) &&
		slices.EqualFunc(a.MACs, b.MACs, func(x, y net.HardwareAddr) bool { return bytes.Equal(x, y) }) &&
		(a.Keys == nil) == (b.Keys == nil) &&
		(a.Keys == nil || a.Keys.Primary == b.Keys.Primary && slices.Equal(a.Keys.Installed, b.Keys.Installed))
}

// Leave tells the other members this one is leaving, so they take its
// addresses over at once instead of after failure detection.
func (m *Membership) Leave(timeout time.Duration) error {
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("speaker: leave membership: %w", err)
	}
	return nil
}

// Shutdown stops membership without telling the others.
func (m *Membership) Shutdown() error {
	if m.keys != nil {
		m.keys.stop()
	}
	return m.ml.Shutdown()
}

// metaDelegate implements memberlist.Delegate: only metadata is used.
type metaDelegate Membership

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := d.local.encode(limit)
	return b
}
func (d *metaDelegate) NotifyMsg([]byte)                {}
func (d *metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *metaDelegate) LocalState(bool) []byte          { return nil }
func (d *metaDelegate) MergeRemoteState([]byte, bool)   {}
func (d *eventDelegate) NotifyJoin(n *memberlist.Node) {
	d.membership().logMember("speaker joined", n)
	d.note(n)
}
func (d *eventDelegate) NotifyLeave(n *memberlist.Node) {
	d.membership().logMember("speaker gone", n)
	d.note(n)
}
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) { d.note(n) }
func (d *eventDelegate) membership() *Membership         { return (*Membership)(d) }

func (m *Membership) logMember(msg string, n *memberlist.Node) {
	if m.log != nil {
		m.log.Info(msg, "member", n.Name, "address", n.Address())
	}
}

// eventDelegate implements memberlist.EventDelegate.
type eventDelegate Membership

func (d *eventDelegate) note(n *memberlist.Node) {
	m := d.membership()
	meta, err := decodeMeta(n.Meta)
	m.mu.Lock()
	if err == nil && n.Name != m.self {
		m.peers[n.Name] = meta
	}
	m.state[n.Name] = true
	m.mu.Unlock()
	if m.keys != nil {
		// A member that joined, left or republished its keyring may
		// unblock a rotation step (applied on the keyring's goroutine:
		// publishing from here would deadlock memberlist).
		m.keys.kick()
	}
	if m.changed != nil {
		m.changed()
	}
}

// memberlistLogWriter turns memberlist's "[LEVEL] memberlist: ..." lines
// into slog records.
type memberlistLogWriter struct{ log *slog.Logger }

func (w memberlistLogWriter) Write(p []byte) (int, error) {
	if w.log == nil {
		return len(p), nil
	}
	line := string(bytes.TrimSpace(p))
	level := slog.LevelDebug
	switch {
	case bytes.Contains(p, []byte("[ERR]")):
		level = slog.LevelError
	case bytes.Contains(p, []byte("[WARN]")):
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, "memberlist", "line", line)
	return len(p), nil
}

// JoinAddress formats a membership address.
func JoinAddress(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
