package heartbeat

import (
	"strings"
	"testing"
)

func TestPacket(t *testing.T) {
	tests := []struct {
		name    string
		packet  []byte
		want    string
		wantSeq uint64
		wantErr bool
	}{
		{name: "round trip", packet: appendPacket(nil, "node-1", 42), want: "node-1", wantSeq: 42},
		{name: "long name cut", packet: appendPacket(nil, strings.Repeat("n", 300), 1), want: strings.Repeat("n", 255), wantSeq: 1},
		{name: "empty name", packet: appendPacket(nil, "", 1), wantErr: true},
		{name: "short", packet: []byte("HRB1"), wantErr: true},
		{name: "bad magic", packet: append([]byte("HRB2"), appendPacket(nil, "n", 1)[4:]...), wantErr: true},
		{name: "length beyond the packet", packet: appendPacket(nil, "node-1", 1)[:15], wantErr: true},
		{name: "trailing bytes", packet: append(appendPacket(nil, "node-1", 1), 'x'), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, seq, err := parsePacket(tt.packet)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePacket() error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (name != tt.want || seq != tt.wantSeq) {
				t.Errorf("parsePacket() = %q, %d; want %q, %d", name, seq, tt.want, tt.wantSeq)
			}
		})
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(appendPacket(nil, "node-1", 7))
	f.Add([]byte("HRB1\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		name, seq, err := parsePacket(p)
		if err != nil {
			return
		}
		if again := appendPacket(nil, name, seq); string(again) != string(p) {
			t.Fatalf("parsePacket(%x) = %q, %d, which encodes to %x", p, name, seq, again)
		}
	})
}
