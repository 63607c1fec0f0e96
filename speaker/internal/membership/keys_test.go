package membership

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	keyA = bytes.Repeat([]byte{'a'}, 32)
	keyB = bytes.Repeat([]byte{'b'}, 32)
	keyC = bytes.Repeat([]byte{'c'}, 16)
)

func b64(k []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(k)) }

func TestParseKeySet(t *testing.T) {
	tests := []struct {
		name    string
		entries map[string][]byte
		want    KeySet
		wantErr bool
	}{
		{
			name:    "the controller's Secret: one key, base64",
			entries: map[string][]byte{"key": b64(keyA)},
			want:    KeySet{Keys: []Key{{"key", keyA}}, Primary: "key"},
		},
		{
			name:    "one key of 16 bytes, any name, trailing newline",
			entries: map[string][]byte{"key-2025-06": append(b64(keyC), '\n')},
			want:    KeySet{Keys: []Key{{"key-2025-06", keyC}}, Primary: "key-2025-06"},
		},
		{
			name:    "rotation step 1: new key added, old one stays primary",
			entries: map[string][]byte{"key": b64(keyA), "key-2": append(b64(keyB), '\n'), "primary": []byte("key")},
			want:    KeySet{Keys: []Key{{"key", keyA}, {"key-2", keyB}}, Primary: "key"},
		},
		{
			name:    "rotation step 2: new key primary",
			entries: map[string][]byte{"key": b64(keyA), "key-2": b64(keyB), "primary": []byte("key-2\n")},
			want:    KeySet{Keys: []Key{{"key", keyA}, {"key-2", keyB}}, Primary: "key-2"},
		},
		{
			name:    "rotation step 3: old key removed",
			entries: map[string][]byte{"key-2": b64(keyB), "primary": []byte("key-2")},
			want:    KeySet{Keys: []Key{{"key-2", keyB}}, Primary: "key-2"},
		},
		{name: "no key", entries: map[string][]byte{}, wantErr: true},
		{name: "only primary", entries: map[string][]byte{"primary": []byte("key")}, wantErr: true},
		{name: "two keys, no primary", entries: map[string][]byte{"key": b64(keyA), "key-2": b64(keyB)}, wantErr: true},
		{name: "primary names a removed key", entries: map[string][]byte{"key-2": b64(keyB), "primary": []byte("key")}, wantErr: true},
		{name: "primary names a non-key", entries: map[string][]byte{"key": b64(keyA), "primary": []byte("primary")}, wantErr: true},
		{name: "short key", entries: map[string][]byte{"key": b64(keyA[:10])}, wantErr: true},
		{name: "raw bytes", entries: map[string][]byte{"key": bytes.Repeat([]byte{1}, 32)}, wantErr: true},
		{name: "same key twice", entries: map[string][]byte{"key": b64(keyA), "key-2": b64(keyA), "primary": []byte("key")}, wantErr: true},
		{name: "typo in an entry name", entries: map[string][]byte{"key": b64(keyA), "key-2": b64(keyB), "primray": []byte("key")}, wantErr: true},
		{name: "too many keys", entries: func() map[string][]byte {
			m := map[string][]byte{"primary": []byte("key-0")}
			for i := range MaxKeys + 1 {
				m["key-"+string(rune('0'+i))] = b64(bytes.Repeat([]byte{byte(i)}, 16))
			}
			return m
		}(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeySet(tt.entries)
			if tt.wantErr {
				if !errors.Is(err, ErrBadKeySet) {
					t.Fatalf("ParseKeySet: %v, want ErrBadKeySet", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseKeySet(f *testing.F) {
	f.Add("key", string(b64(keyA)), "key-2", string(b64(keyB)), "key")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, primary string) {
		ks, err := ParseKeySet(map[string][]byte{n1: []byte(v1), n2: []byte(v2), PrimaryEntry: []byte(primary)})
		if err != nil {
			return
		}
		if ks.primaryKey() == nil {
			t.Errorf("accepted %+v without a primary key", ks)
		}
		for _, k := range ks.Keys {
			if l := len(k.Secret); l != 16 && l != 24 && l != 32 {
				t.Errorf("accepted a %d-byte key", l)
			}
		}
	})
}

func TestFingerprint(t *testing.T) {
	// printf 'a%.0s' $(seq 32) | sha256sum | cut -c1-8
	if got := Fingerprint(keyA); got != "3ba3f5f4" {
		t.Errorf("Fingerprint = %s", got)
	}
}

func TestPlanKeyring(t *testing.T) {
	fa, fb := fingerprint(keyA), fingerprint(keyB)
	ks := func(primary string, names ...string) KeySet {
		all := map[string][]byte{"a": keyA, "b": keyB, "c": keyC}
		var out KeySet
		for _, n := range names {
			out.Keys = append(out.Keys, Key{Name: n, Secret: all[n]})
		}
		out.Primary = primary
		return out
	}
	peer := func(name string, primary uint32, installed ...uint32) PeerKeys {
		return PeerKeys{Name: name, Published: true, Installed: installed, Primary: primary}
	}
	tests := []struct {
		name      string
		want      KeySet
		installed [][]byte
		primary   []byte
		peers     []PeerKeys
		plan      KeyPlan
	}{
		{
			name: "start: empty keyring takes the Secret as it is",
			want: ks("a", "a"),
			plan: KeyPlan{Add: [][]byte{keyA}, Use: keyA},
		},
		{
			name: "steady state: nothing to do", want: ks("a", "a"),
			installed: [][]byte{keyA}, primary: keyA,
			peers: []PeerKeys{peer("n2", fa, fa)},
		},
		{
			name: "step 1: a new secondary key is installed at once, whatever the peers have",
			want: ks("a", "a", "b"), installed: [][]byte{keyA}, primary: keyA,
			peers: []PeerKeys{peer("n2", fa, fa), {Name: "old"}},
			plan:  KeyPlan{Add: [][]byte{keyB}},
		},
		{
			name: "step 2: the new key is used once every live peer has it",
			want: ks("b", "a", "b"), installed: [][]byte{keyA, keyB}, primary: keyA,
			peers: []PeerKeys{peer("n2", fa, fa, fb), peer("n3", fb, fa, fb)},
			plan:  KeyPlan{Use: keyB},
		},
		{
			name: "step 2, a peer lags: keep encrypting with the old key",
			want: ks("b", "a", "b"), installed: [][]byte{keyA, keyB}, primary: keyA,
			peers: []PeerKeys{peer("n3", fa, fa), peer("n2", fa, fa, fb)},
			plan:  KeyPlan{Waiting: []string{"encrypting with key " + Fingerprint(keyB) + " waits until n3 install it"}},
		},
		{
			name: "step 2, a peer publishes no keyring (earlier version): wait",
			want: ks("b", "a", "b"), installed: [][]byte{keyA, keyB}, primary: keyA,
			peers: []PeerKeys{{Name: "n2"}},
			plan:  KeyPlan{Waiting: []string{"encrypting with key " + Fingerprint(keyB) + " waits until n2 install it"}},
		},
		{
			name: "step 2 and 3 seen at once: new key installed and used, old one kept for a peer still encrypting with it",
			want: ks("b", "b"), installed: [][]byte{keyA, keyB}, primary: keyA,
			peers: []PeerKeys{peer("n2", fa, fa, fb)},
			plan: KeyPlan{Use: keyB, Waiting: []string{
				"removing key " + Fingerprint(keyA) + " waits until n2 stop encrypting with it"}},
		},
		{
			name: "step 3: the old key goes once no live peer encrypts with it",
			want: ks("b", "b"), installed: [][]byte{keyA, keyB}, primary: keyB,
			peers: []PeerKeys{peer("n2", fb, fa, fb), peer("n3", fb, fb)},
			plan:  KeyPlan{Remove: [][]byte{keyA}},
		},
		{
			name: "step 3 without step 2 on a lagging peer: the primary waits, so the old key stays",
			want: ks("b", "b"), installed: [][]byte{keyA, keyB}, primary: keyA,
			peers: []PeerKeys{peer("n2", fa, fa)},
			plan: KeyPlan{Waiting: []string{
				"encrypting with key " + Fingerprint(keyB) + " waits until n2 install it"}},
		},
		{
			name: "the Secret replaced by a new key at once: install it, use it only when peers have it",
			want: ks("c", "c"), installed: [][]byte{keyA}, primary: keyA,
			peers: []PeerKeys{peer("n2", fa, fa)},
			plan: KeyPlan{Add: [][]byte{keyC}, Waiting: []string{
				"encrypting with key " + Fingerprint(keyC) + " waits until n2 install it"}},
		},
		{
			name: "alone: every step at once",
			want: ks("c", "c"), installed: [][]byte{keyA, keyB}, primary: keyA,
			plan: KeyPlan{Add: [][]byte{keyC}, Use: keyC, Remove: [][]byte{keyA, keyB}},
		},
		{
			name: "rollback to the old key while both are installed: allowed when peers still have it",
			want: ks("a", "a", "b"), installed: [][]byte{keyA, keyB}, primary: keyB,
			peers: []PeerKeys{peer("n2", fb, fa, fb)},
			plan:  KeyPlan{Use: keyA},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanKeyring(tt.want, tt.installed, tt.primary, tt.peers)
			if diff := cmp.Diff(tt.plan, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
