package config

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"
)

func TestParseAddressBlock(t *testing.T) {
	rng := func(a, b string) netipx.IPRange {
		return netipx.IPRangeFrom(netip.MustParseAddr(a), netip.MustParseAddr(b))
	}
	tests := []struct {
		in      string
		want    netipx.IPRange
		wantErr string // "" for success
	}{
		{in: "198.51.100.0/24", want: rng("198.51.100.0", "198.51.100.255")},
		{in: "198.51.100.7/32", want: rng("198.51.100.7", "198.51.100.7")},
		{in: "2001:db8::/64", want: rng("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff")},
		{in: "203.0.113.10-203.0.113.20", want: rng("203.0.113.10", "203.0.113.20")},
		{in: "203.0.113.5-203.0.113.5", want: rng("203.0.113.5", "203.0.113.5")},
		{in: "2001:db8::10-2001:db8::ff", want: rng("2001:db8::10", "2001:db8::ff")},
		{in: "2001:DB8::1-2001:0db8::2", want: rng("2001:db8::1", "2001:db8::2")},
		{in: "198.51.100.7/24", wantErr: `config: invalid address: "198.51.100.7/24" has address bits set beyond its prefix length: write 198.51.100.0/24`},
		{in: "198.51.100.0/33", wantErr: `config: invalid address: "198.51.100.0/33" is not a valid CIDR (198.51.100.0/24, 2001:db8::/64)`},
		{in: "::ffff:198.51.100.0/120", wantErr: `config: invalid address: "::ffff:198.51.100.0/120" is an IPv4-mapped IPv6 CIDR: write it as IPv4`},
		{in: "198.51.100.20-198.51.100.10", wantErr: `config: invalid address: range "198.51.100.20-198.51.100.10" runs backwards: its first address is greater than its last`},
		{in: "2001:db8::1:0-2001:db8::ffff", wantErr: `config: invalid address: range "2001:db8::1:0-2001:db8::ffff" runs backwards: its first address is greater than its last`},
		{in: "198.51.100.1-2001:db8::1", wantErr: `config: invalid address: range "198.51.100.1-2001:db8::1" mixes IPv4 and IPv6: both ends must be of the same family`},
		{in: "198.51.100.1 - 198.51.100.3", wantErr: `config: invalid address: range "198.51.100.1 - 198.51.100.3": "198.51.100.1 " is not an IP address`},
		{in: "198.51.100.01-198.51.100.3", wantErr: `config: invalid address: range "198.51.100.01-198.51.100.3": "198.51.100.01" is not an IP address`},
		{in: "fe80::1%eth0-fe80::2", wantErr: `config: invalid address: range "fe80::1%eth0-fe80::2": "fe80::1%eth0" has a zone, which is not allowed`},
		{in: "::ffff:198.51.100.1-::ffff:198.51.100.2", wantErr: `config: invalid address: range "::ffff:198.51.100.1-::ffff:198.51.100.2": "::ffff:198.51.100.1" is an IPv4-mapped IPv6 address: write it as IPv4`},
		{in: "a-b-c", wantErr: `config: invalid address: "a-b-c" is neither a CIDR (198.51.100.0/24) nor a range first-last (198.51.100.10-198.51.100.20)`},
		{in: "198.51.100.1", wantErr: `config: invalid address: "198.51.100.1" is neither a CIDR (198.51.100.0/24) nor a range first-last (198.51.100.10-198.51.100.20)`},
		{in: "", wantErr: `config: invalid address: "" is neither a CIDR (198.51.100.0/24) nor a range first-last (198.51.100.10-198.51.100.20)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAddressBlock(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseAddressBlock(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidAddress) {
					t.Errorf("error %v does not wrap ErrInvalidAddress", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAddressBlock(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want.String(), got.String()); diff != "" {
				t.Errorf("ParseAddressBlock(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzParseAddressBlock checks that the parser never panics, that what it
// accepts is a valid range of one family that does not run backwards, and
// that the range written back parses to itself.
func FuzzParseAddressBlock(f *testing.F) {
	for _, s := range []string{"198.51.100.0/24", "203.0.113.10-203.0.113.20", "2001:db8::/64",
		"2001:db8::ff-2001:db8::1", "198.51.100.1-2001:db8::1", "::ffff:1.2.3.4/128", "1.2.3.4/33", "-", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseAddressBlock(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error %v does not wrap ErrInvalidAddress", err)
			}
			return
		}
		if !r.IsValid() || r.From().Is4() != r.To().Is4() || r.To().Less(r.From()) {
			t.Fatalf("ParseAddressBlock(%q) = %v: not a valid single-family range", s, r)
		}
		again, err := ParseAddressBlock(formatRange(r))
		if err != nil || again != r {
			t.Fatalf("round trip of %q via %q = %v, %v", s, formatRange(r), again, err)
		}
	})
}
