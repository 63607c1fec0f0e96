package membership

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The gossip key Secret (docs/reference.md, "The gossip key Secret"): each
// data entry named KeyEntry or KeyEntry-<suffix> holds one key, the base64
// encoding of 16, 24 or 32 bytes (AES-128, -192 or -256); the entry named
// PrimaryEntry names the key entry that encrypts. Every listed key
// decrypts. PrimaryEntry may be left out when there is exactly one key.
const (
	// KeyEntry is the name of the single key entry the controller writes,
	// and the prefix of every other key entry.
	KeyEntry = "key"
	// PrimaryEntry names the key entry that encrypts.
	PrimaryEntry = "primary"
	// MaxKeys bounds the keys of one Secret: every member publishes the
	// fingerprints of its installed keys in its 512 bytes of metadata.
	MaxKeys = 8
)

// keyEntryName matches the names of key entries.
var keyEntryName = regexp.MustCompile(`^key(-[-._a-zA-Z0-9]{1,60})?$`)

// ErrBadKeySet reports a gossip key Secret that does not say which keys to
// use; the speaker keeps the keys it has.
var ErrBadKeySet = errors.New("membership: invalid gossip key Secret")

// Key is one gossip key of the Secret.
type Key struct {
	// Name is the Secret's data entry that holds it.
	Name string
	// Secret is the key itself, 16, 24 or 32 bytes.
	Secret []byte
}

// KeySet is what the Secret says: the keys to install, sorted by name, and
// which of them encrypts. The zero KeySet means no encryption.
type KeySet struct {
	Keys    []Key
	Primary string
}

// Empty reports whether ks holds no key.
func (ks KeySet) Empty() bool { return len(ks.Keys) == 0 }

// primaryKey returns the primary key's bytes, nil when ks is empty.
func (ks KeySet) primaryKey() []byte {
	for _, k := range ks.Keys {
		if k.Name == ks.Primary {
			return k.Secret
		}
	}
	return nil
}

// SingleKey is the KeySet of one key, which is the primary.
func SingleKey(secret []byte) KeySet {
	return KeySet{Keys: []Key{{Name: KeyEntry, Secret: secret}}, Primary: KeyEntry}
}

// ParseKeySet reads a gossip key Secret's data (or the files of its
// mounted volume, name to content). It refuses, with ErrBadKeySet and what
// is wrong, a Secret without keys, with an entry that is neither a key nor
// PrimaryEntry, with a key that is not 16, 24 or 32 bytes (base64 or raw),
// with the same key twice, with several keys and no PrimaryEntry, or with
// a PrimaryEntry naming no key entry.
func ParseKeySet(entries map[string][]byte) (KeySet, error) {
	var ks KeySet
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	primary, hasPrimary := "", false
	for _, name := range names {
		switch {
		case name == PrimaryEntry:
			primary, hasPrimary = strings.TrimSpace(string(entries[name])), true
		case keyEntryName.MatchString(name):
			secret, ok := decodeKey(entries[name])
			if !ok {
				return KeySet{}, fmt.Errorf("%w: entry %q is not the base64 of 16, 24 or 32 bytes", ErrBadKeySet, name)
			}
			for _, k := range ks.Keys {
				if bytes.Equal(k.Secret, secret) {
					return KeySet{}, fmt.Errorf("%w: entries %q and %q hold the same key", ErrBadKeySet, k.Name, name)
				}
			}
			ks.Keys = append(ks.Keys, Key{Name: name, Secret: secret})
		default:
			return KeySet{}, fmt.Errorf("%w: entry %q is neither %q, %q nor %q-<suffix>", ErrBadKeySet, name, PrimaryEntry, KeyEntry, KeyEntry)
		}
	}
	switch {
	case len(ks.Keys) == 0:
		return KeySet{}, fmt.Errorf("%w: no key entry (%q or %q-<suffix>)", ErrBadKeySet, KeyEntry, KeyEntry)
	case len(ks.Keys) > MaxKeys:
		return KeySet{}, fmt.Errorf("%w: %d keys, at most %d", ErrBadKeySet, len(ks.Keys), MaxKeys)
	case !hasPrimary && len(ks.Keys) > 1:
		return KeySet{}, fmt.Errorf("%w: %d keys and no %q entry naming the one that encrypts", ErrBadKeySet, len(ks.Keys), PrimaryEntry)
	case !hasPrimary:
		primary = ks.Keys[0].Name
	}
	ks.Primary = primary
	if ks.primaryKey() == nil {
		return KeySet{}, fmt.Errorf("%w: %q names %q, which is no key entry", ErrBadKeySet, PrimaryEntry, primary)
	}
	return ks, nil
}

// decodeKey reads a key in base64, surrounding white space ignored. Raw
// bytes are not accepted: the base64 text of a short key can itself be
// 16, 24 or 32 bytes long.
func decodeKey(b []byte) ([]byte, bool) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	return k, err == nil && (len(k) == 16 || len(k) == 24 || len(k) == 32)
}

// Fingerprint names a key without revealing it: the first 4 bytes of its
// SHA-256, in hex (`base64 -d | sha256sum | cut -c1-8`).
func Fingerprint(secret []byte) string {
	return fmt.Sprintf("%08x", fingerprint(secret))
}

func fingerprint(secret []byte) uint32 {
	sum := sha256.Sum256(secret)
	return binary.BigEndian.Uint32(sum[:4])
}

// PeerKeys is what a live member publishes about its keyring.
type PeerKeys struct {
	Name string
	// Published is false for a member that publishes no keyring (a speaker
	// of an earlier version): no step that could cut it off is taken.
	Published bool
	// Installed are the fingerprints of the keys it decrypts with.
	Installed []uint32
	// Primary is the fingerprint of the key it encrypts with.
	Primary uint32
}

// KeyPlan is how a member's keyring moves towards the Secret's KeySet.
type KeyPlan struct {
	// Add are keys to install (they only decrypt).
	Add [][]byte
	// Use, when set, is the key to encrypt with from now on.
	Use []byte
	// Remove are keys to uninstall.
	Remove [][]byte
	// Waiting says which steps wait for which member, sorted.
	Waiting []string
}

// PlanKeyring computes the next steps from the keyring a member has
// (installed keys and the primary) to want, given what the other live
// members publish. It never cuts two members off each other:
//
//   - a key of want that is not installed is installed at once (a member
//     that decrypts with one more key talks to everyone it did);
//   - the primary becomes want's primary only when every live member has
//     it installed (else they could not read this member);
//   - a key want no longer lists is removed only when it is not this
//     member's primary and no live member encrypts with it (else this
//     member could not read that one).
//
// A member that publishes no keyring blocks the last two steps. A member
// whose keyring is empty takes want's primary at once: it talks to no one
// yet.
func PlanKeyring(want KeySet, installed [][]byte, primary []byte, peers []PeerKeys) KeyPlan {
	var p KeyPlan
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b PeerKeys) int { return strings.Compare(a.Name, b.Name) })
	has := func(keys [][]byte, k []byte) bool {
		return slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) })
	}
	for _, k := range want.Keys {
		if !has(installed, k.Secret) {
			p.Add = append(p.Add, k.Secret)
		}
	}
	if target := want.primaryKey(); target != nil && !bytes.Equal(primary, target) {
		fp := fingerprint(target)
		var lacking []string
		for _, peer := range peers {
			if !peer.Published || !slices.Contains(peer.Installed, fp) {
				lacking = append(lacking, peer.Name)
			}
		}
		if len(primary) == 0 || len(lacking) == 0 {
			p.Use, primary = target, target
		} else {
			p.Waiting = append(p.Waiting, fmt.Sprintf("encrypting with key %08x waits until %s install it", fp, nameList(lacking)))
		}
	}
	for _, k := range installed {
		if bytes.Equal(k, primary) || slices.ContainsFunc(want.Keys, func(w Key) bool { return bytes.Equal(w.Secret, k) }) {
			continue
		}
		fp := fingerprint(k)
		var users []string
		for _, peer := range peers {
			if !peer.Published || peer.Primary == fp {
				users = append(users, peer.Name)
			}
		}
		if len(users) == 0 {
			p.Remove = append(p.Remove, k)
		} else {
			p.Waiting = append(p.Waiting, fmt.Sprintf("removing key %08x waits until %s stop encrypting with it", fp, nameList(users)))
		}
	}
	slices.Sort(p.Waiting)
	return p
}

// nameList joins names, at most five of them, so a message stays short in
// a large cluster.
func nameList(names []string) string {
	const most = 5
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}
