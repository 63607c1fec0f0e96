package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Defaults and bounds of BGPPeer fields, as the CRD documents them.
const (
	DefaultBGPPort          = 179
	DefaultHoldTime         = 90 * time.Second
	DefaultBFDInterval      = 300 * time.Millisecond
	DefaultBFDMultiplier    = 3
	DefaultGRRestartTime    = 120 * time.Second
	DefaultPasswordKey      = "password"
	minHoldTime             = 3 * time.Second
	maxHoldTime             = 65535 * time.Second
	minBFDInterval          = 10 * time.Millisecond
	maxBFDInterval          = 60 * time.Second
	maxGRRestartTime        = 4095 * time.Second
	maxTCPMD5PasswordLength = 80
)

// BGPPeer is a validated BGPPeer, with its password resolved from its Secret.
type BGPPeer struct {
	// Name is the BGPPeer's name.
	Name string
	// Address is the router's address; invalid (zero) for an unnumbered
	// peer, which has Interface instead.
	Address netip.Addr
	// Interface is the node interface of an unnumbered session (RFC 5549):
	// the router is the one at the other end of it, reached over IPv6
	// link-local addresses. "" for a peer with an Address.
	Interface string
	// Port is the router's TCP port.
	Port uint16
	// PeerASN and MyASN are the router's and the speakers' AS numbers.
	PeerASN, MyASN uint32
	// HoldTime is the BGP hold time, from 3 s to 65535 s.
	HoldTime time.Duration
	// KeepaliveTime is the keepalive interval (a third of HoldTime by default).
	KeepaliveTime time.Duration
	// Password is the TCP MD5 password, "" for none.
	Password string
	// EBGPMultihop raises the session's TTL for a router several hops away.
	EBGPMultihop bool
	// SourceAddress is the local address to connect from; invalid (zero) when unset.
	SourceAddress netip.Addr
	// BFD holds the BFD timers; BFD.Enabled says whether BFD runs.
	BFD BFD
	// GracefulRestart holds the graceful restart settings.
	GracefulRestart GracefulRestart

	created time.Time
	nodes   nodeSelectors
}

// BFD are a session's BFD settings.
type BFD struct {
	Enabled      bool
	MinRx, MinTx time.Duration
	Multiplier   uint8
}

// GracefulRestart are a session's graceful restart settings.
type GracefulRestart struct {
	Enabled     bool
	RestartTime time.Duration
}

// IBGP reports whether the session is internal BGP (same AS on both ends).
func (p BGPPeer) IBGP() bool { return p.PeerASN == p.MyASN }

// SelectsNode reports whether a node with these labels peers with this router.
func (p BGPPeer) SelectsNode(nodeLabels map[string]string) bool { return p.nodes.matches(nodeLabels) }

// Unnumbered reports whether the session runs over Interface's IPv6
// link-local address instead of to an Address.
func (p BGPPeer) Unnumbered() bool { return p.Interface != "" }

// endpoint identifies the router a peer opens its session with on a node:
// its address, or its interface for an unnumbered peer. Two peers with the
// same endpoint on one node clash.
type endpoint struct {
	addr      netip.Addr
	ifaceName string
}

func (p BGPPeer) endpoint() endpoint { return endpoint{addr: p.Address, ifaceName: p.Interface} }

func (e endpoint) String() string {
	if e.ifaceName != "" {
		return "interface " + e.ifaceName
	}
	return e.addr.String()
}

// wins reports whether p keeps a peer address that q also uses on a node:
// the older peer, then the first by name.
func (p BGPPeer) wins(q BGPPeer) bool {
	return cmp.Or(p.created.Compare(q.created), strings.Compare(p.Name, q.Name)) < 0
}

// buildBGPPeers validates the BGPPeers and resolves their passwords. Peers
// with a problem are left out. The result is sorted by name.
func buildBGPPeers(s Snapshot, problems problemSet) []BGPPeer {
	secrets := indexSecrets(s.Secrets)
	objs := usableObjects(s.BGPPeers, func(p *v1alpha1.BGPPeer) (string, time.Time) { return p.Name, p.CreationTimestamp.Time })
	out := make([]BGPPeer, 0, len(objs))
	for _, obj := range objs {
		ref := ObjectRef{Kind: KindBGPPeer, Name: obj.Name}
		p := buildBGPPeer(ref, obj, s.SecretNamespace, secrets, problems)
		if excluded(ref, problems) {
			continue
		}
		out = append(out, p)
	}
	reportDuplicatePeers(out, s.Nodes, problems)
	slices.SortFunc(out, func(a, b BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func buildBGPPeer(ref ObjectRef, obj *v1alpha1.BGPPeer, secretNamespace string, secrets map[secretKey]*corev1.Secret, problems problemSet) BGPPeer {
	bad := func(format string, args ...any) {
		problems.add(ref, notReady(v1alpha1.ReasonInvalidField, fmt.Sprintf(format, args...)))
	}
	spec := obj.Spec
	p := BGPPeer{Name: obj.Name, created: obj.CreationTimestamp.Time, Port: DefaultBGPPort, EBGPMultihop: spec.EBGPMultihop}

	switch {
	case spec.Interface != "" && spec.PeerAddress != "":
		bad("spec sets both peerAddress and interface: keep one (interface makes an unnumbered session)")
	case spec.Interface != "":
		if reason := interfaceNameProblem(spec.Interface); reason != "" {
			bad("spec.interface %q %s", spec.Interface, reason)
		} else {
			p.Interface = spec.Interface
		}
		if spec.SourceAddress != "" {
			bad("spec.sourceAddress cannot be used with spec.interface: an unnumbered session runs from the interface's IPv6 link-local address")
		}
		if spec.EBGPMultihop {
			bad("spec.ebgpMultihop cannot be used with spec.interface: an unnumbered router is directly connected")
		}
		if b := spec.BFD; b != nil && (b.Enabled == nil || *b.Enabled) {
			bad("spec.bfd cannot be used with spec.interface: the speaker's BFD (GoBGP v4.9.0) is not run over link-local addresses")
		}
	default:
		if a, reason := parseAddrReason(spec.PeerAddress); reason != "" {
			bad("spec.peerAddress: %s", reason)
		} else if a.IsUnspecified() {
			bad("spec.peerAddress %s is the unspecified address", a)
		} else {
			p.Address = a
		}
	}
	if spec.SourceAddress != "" && spec.Interface == "" {
		if a, reason := parseAddrReason(spec.SourceAddress); reason != "" {
			bad("spec.sourceAddress: %s", reason)
		} else if p.Address.IsValid() && a.Is4() != p.Address.Is4() {
			bad("spec.sourceAddress %s and spec.peerAddress %s are of different IP families", a, p.Address)
		} else {
			p.SourceAddress = a
		}
	}
	if asn, ok := asNumber(spec.PeerASN); ok {
		p.PeerASN = asn
	} else {
		bad("spec.peerASN %d is out of range: use 1 to 4294967295", spec.PeerASN)
	}
	if asn, ok := asNumber(spec.MyASN); ok {
		p.MyASN = asn
	} else {
		bad("spec.myASN %d is out of range: use 1 to 4294967295", spec.MyASN)
	}
	if spec.EBGPMultihop && spec.PeerASN == spec.MyASN {
		bad("spec.ebgpMultihop applies only to eBGP sessions, but peerASN equals myASN")
	}
	if spec.Port != nil {
		if *spec.Port < 1 || *spec.Port > 65535 {
			bad("spec.port %d is out of range: use 1 to 65535", *spec.Port)
		} else {
			p.Port = uint16(*spec.Port)
		}
	}

	p.HoldTime = DefaultHoldTime
	if spec.HoldTime != nil {
		p.HoldTime = spec.HoldTime.Duration
		switch h := p.HoldTime; {
		case h == 0:
			bad("spec.holdTime 0s (no keepalives) is not supported: the speaker's GoBGP takes 0 for its 90s default; use whole seconds from 3s to 65535s")
		case h < minHoldTime || h > maxHoldTime || h%time.Second != 0:
			bad("spec.holdTime %s is out of range: use whole seconds from 3s to 65535s", h)
		}
	}
	p.KeepaliveTime = (p.HoldTime / 3).Truncate(time.Second)
	if spec.KeepaliveTime != nil {
		k := spec.KeepaliveTime.Duration
		switch {
		case k < 0 || k%time.Second != 0:
			bad("spec.keepaliveTime %s must be whole seconds", k)
		case p.HoldTime == 0 && k != 0:
			bad("spec.keepaliveTime %s must be 0s or unset when holdTime is 0s", k)
		case p.HoldTime != 0 && k >= p.HoldTime:
			bad("spec.keepaliveTime %s must be shorter than holdTime %s", k, p.HoldTime)
		}
		p.KeepaliveTime = k
	}

	if b := spec.BFD; b != nil {
		p.BFD = BFD{Enabled: b.Enabled == nil || *b.Enabled, MinRx: DefaultBFDInterval, MinTx: DefaultBFDInterval, Multiplier: DefaultBFDMultiplier}
		for _, t := range []struct {
			field string
			in    *metav1.Duration
			out   *time.Duration
		}{{"minRx", b.MinRx, &p.BFD.MinRx}, {"minTx", b.MinTx, &p.BFD.MinTx}} {
			if t.in == nil {
				continue
			}
			if d := t.in.Duration; d < minBFDInterval || d > maxBFDInterval {
				bad("spec.bfd.%s %s is out of range: use 10ms to 60s", t.field, d)
			}
			*t.out = t.in.Duration
		}
		if b.Multiplier != nil {
			if m := *b.Multiplier; m < 2 || m > 255 {
				bad("spec.bfd.multiplier %d is out of range: use 2 to 255", m)
			} else {
				p.BFD.Multiplier = uint8(m)
			}
		}
	}
	if p.BFD.Enabled && spec.EBGPMultihop {
		bad("spec.bfd cannot be used with spec.ebgpMultihop: the speaker's BFD is single-hop only (GoBGP has no multihop BFD, RFC 5883); disable one of them")
	}
	if g := spec.GracefulRestart; g != nil {
		p.GracefulRestart = GracefulRestart{Enabled: g.Enabled == nil || *g.Enabled, RestartTime: DefaultGRRestartTime}
		if g.RestartTime != nil {
			if d := g.RestartTime.Duration; d < time.Second || d > maxGRRestartTime || d%time.Second != 0 {
				bad("spec.gracefulRestart.restartTime %s is out of range: use whole seconds from 1s to 4095s", d)
			}
			p.GracefulRestart.RestartTime = g.RestartTime.Duration
		}
	}

	var err error
	if p.nodes, err = newNodeSelectors(spec.NodeSelectors); err != nil {
		problems.add(ref, notReady(v1alpha1.ReasonInvalidSelector, fmt.Sprintf("spec.%v", err)))
	}

	switch {
	case spec.Password != "" && spec.PasswordSecretRef != nil:
		bad("spec sets both password and passwordSecretRef: keep one")
	case spec.Password != "":
		if len(spec.Password) > maxTCPMD5PasswordLength {
			bad("spec.password is %d bytes long: TCP MD5 allows at most %d", len(spec.Password), maxTCPMD5PasswordLength)
		}
		p.Password = spec.Password
	case spec.PasswordSecretRef != nil:
		p.Password = resolvePassword(ref, *spec.PasswordSecretRef, secretNamespace, secrets, problems)
	}
	return p
}

// maxInterfaceNameLength is Linux's IFNAMSIZ less the terminating NUL.
const maxInterfaceNameLength = 15

// interfaceNameProblem says why name cannot be a Linux interface name, or "".
func interfaceNameProblem(name string) string {
	switch {
	case len(name) > maxInterfaceNameLength:
		return fmt.Sprintf("is longer than %d bytes", maxInterfaceNameLength)
	case name == "." || name == "..":
		return "is not an interface name"
	case strings.ContainsAny(name, "/%: \t\n"):
		return "holds a character an interface name cannot have ('/', '%', ':' or white space)"
	}
	return ""
}

// asNumber converts an AS number, which must be from 1 to 4294967295.
func asNumber(v int64) (uint32, bool) {
	if v < 1 || v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}

type secretKey struct{ namespace, name string }

func indexSecrets(in []*corev1.Secret) map[secretKey]*corev1.Secret {
	out := make(map[secretKey]*corev1.Secret, len(in))
	for _, s := range in {
		if s == nil {
			continue
		}
		k := secretKey{s.Namespace, s.Name}
		if _, dup := out[k]; !dup { // first wins: deterministic for a given input
			out[k] = s
		}
	}
	return out
}

// resolvePassword reads a password from its Secret, reporting what is missing.
func resolvePassword(ref ObjectRef, sr v1alpha1.SecretKeyReference, secretNamespace string, secrets map[secretKey]*corev1.Secret, problems problemSet) string {
	ns := sr.Namespace
	if ns == "" {
		ns = secretNamespace
	}
	key := sr.Key
	if key == "" {
		key = DefaultPasswordKey
	}
	if ns == "" {
		problems.add(ref, notReady(v1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Herald's own namespace, where spec.passwordSecretRef's Secret is read, is not known: run Herald with --namespace")))
		return ""
	}
	secret, ok := secrets[secretKey{ns, sr.Name}]
	if !ok {
		problems.add(ref, notReady(v1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %s/%s named in spec.passwordSecretRef does not exist: create it with the password under key %q", ns, sr.Name, key)))
		return ""
	}
	value, ok := secret.Data[key]
	if !ok {
		if s, found := secret.StringData[key]; found {
			value, ok = []byte(s), true
		}
	}
	switch {
	case !ok:
		problems.add(ref, notReady(v1alpha1.ReasonSecretKeyNotFound, fmt.Sprintf(
			"Secret %s/%s has no key %q: add the password under that key or set spec.passwordSecretRef.key", ns, sr.Name, key)))
		return ""
	case len(value) == 0:
		problems.add(ref, notReady(v1alpha1.ReasonSecretKeyNotFound, fmt.Sprintf(
			"key %q of Secret %s/%s is empty: put the password there", key, ns, sr.Name)))
		return ""
	case len(value) > maxTCPMD5PasswordLength:
		problems.add(ref, notReady(v1alpha1.ReasonInvalidField, fmt.Sprintf(
			"key %q of Secret %s/%s holds %d bytes: TCP MD5 allows at most %d", key, ns, sr.Name, len(value), maxTCPMD5PasswordLength)))
		return ""
	}
	return string(value)
}

// maxListedNodes bounds how many node names a message spells out.
const maxListedNodes = 3

// reportDuplicatePeers finds, on each node, peers that share an address. The
// peer that wins (older, then first by name) keeps the address on that node;
// the others are reported, naming the winner and the nodes.
func reportDuplicatePeers(peers []BGPPeer, nodes []*corev1.Node, problems problemSet) {
	type clash struct {
		loser, winner string
	}
	clashNodes := map[clash][]string{}
	for _, n := range nodes {
		if n == nil || n.Name == "" {
			continue
		}
		for _, p := range peers {
			if !p.SelectsNode(n.Labels) {
				continue
			}
			if w, ok := winnerFor(peers, p.endpoint(), n.Labels); ok && w.Name != p.Name {
				c := clash{loser: p.Name, winner: w.Name}
				clashNodes[c] = append(clashNodes[c], n.Name)
			}
		}
	}
	clashes := make([]clash, 0, len(clashNodes))
	for c := range clashNodes {
		clashes = append(clashes, c)
	}
	slices.SortFunc(clashes, func(a, b clash) int {
		return cmp.Or(strings.Compare(a.loser, b.loser), strings.Compare(a.winner, b.winner))
	})
	for _, c := range clashes {
		names := sortedUnique(clashNodes[c])
		var addr endpoint
		for _, p := range peers {
			if p.Name == c.loser {
				addr = p.endpoint()
			}
		}
		problems.add(ObjectRef{Kind: KindBGPPeer, Name: c.loser}, notReady(v1alpha1.ReasonDuplicatePeer, fmt.Sprintf(
			"BGPPeer %q also peers with %s from node %s, and keeps that session (the older peer wins, then the first by name); this peer is not used there: give the peers disjoint nodeSelectors or delete one",
			c.winner, addr, describeNodes(names))))
	}
}

// winnerFor returns, among the peers that select a node with these labels
// and have endpoint e (an address, or an interface), the one that keeps the
// session.
func winnerFor(peers []BGPPeer, e endpoint, nodeLabels map[string]string) (BGPPeer, bool) {
	var best BGPPeer
	found := false
	for _, p := range peers {
		if p.endpoint() != e || !p.SelectsNode(nodeLabels) {
			continue
		}
		if !found || p.wins(best) {
			best, found = p, true
		}
	}
	return best, found
}

func describeNodes(names []string) string {
	if len(names) <= maxListedNodes {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListedNodes], ", "), len(names)-maxListedNodes)
}

// PasswordSecrets returns the names of the Secrets in secretNamespace from which
// the BGPPeers that select a node with nodeLabels read their passwords, sorted and
// without duplicates: the only Secrets a speaker on that node needs. A
// passwordSecretRef naming another namespace (which the schema refuses) and a peer
// whose nodeSelectors do not parse (Build leaves it out) name none. It costs one
// selector parse per peer.
func PasswordSecrets(peers []*v1alpha1.BGPPeer, secretNamespace string, nodeLabels map[string]string) []string {
	var names []string
	for _, p := range peers {
		ref := p.Spec.PasswordSecretRef
		if ref == nil || ref.Name == "" || (ref.Namespace != "" && ref.Namespace != secretNamespace) {
			continue
		}
		sel, err := newNodeSelectors(p.Spec.NodeSelectors)
		if err != nil || !sel.matches(nodeLabels) {
			continue
		}
		names = append(names, ref.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
