package controller

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestNewMemberlistKey(t *testing.T) {
	a, err := newMemberlistKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(a))
	if err != nil {
		t.Fatalf("key %q is not base64: %v", a, err)
	}
	if len(raw) != MemberlistKeyBytes {
		t.Errorf("key decodes to %d bytes, want %d", len(raw), MemberlistKeyBytes)
	}
	b, err := newMemberlistKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two keys are equal")
	}
}
