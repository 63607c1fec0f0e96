package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// ErrInvalidAddress is returned (wrapped) by ParseAddressBlock and
// ParseServiceAnnotations for an address, CIDR or range that cannot be used.
var ErrInvalidAddress = errors.New("config: invalid address")

// ParseAddressBlock parses one entry of an IPPool's spec.addresses: a CIDR
// (198.51.100.0/24, 2001:db8::/64) with no bits set beyond its prefix length,
// or an inclusive range first-last of two addresses of one family, first not
// greater than last, written without spaces. It accepts exactly what the
// CRD's CEL rules accept: addresses as net/netip reads them, without zones,
// and no IPv4-mapped IPv6 addresses. Its cost is linear in len(s).
func ParseAddressBlock(s string) (netipx.IPRange, error) {
	r, reason := parseAddressBlock(s)
	if reason != "" {
		return netipx.IPRange{}, fmt.Errorf("%w: %s", ErrInvalidAddress, reason)
	}
	return r, nil
}

// parseAddressBlock is ParseAddressBlock with the reason for refusing s as a
// sentence for a user, or "" when s is valid.
func parseAddressBlock(s string) (netipx.IPRange, string) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netipx.IPRange{}, fmt.Sprintf("%q is not a valid CIDR (198.51.100.0/24, 2001:db8::/64)", s)
		}
		if p.Addr().Is4In6() {
			return netipx.IPRange{}, fmt.Sprintf("%q is an IPv4-mapped IPv6 CIDR: write it as IPv4", s)
		}
		if p.Masked() != p {
			return netipx.IPRange{}, fmt.Sprintf("%q has address bits set beyond its prefix length: write %s", s, p.Masked())
		}
		return netipx.RangeOfPrefix(p), ""
	}
	first, last, ok := strings.Cut(s, "-")
	if !ok || strings.Contains(last, "-") {
		return netipx.IPRange{}, fmt.Sprintf("%q is neither a CIDR (198.51.100.0/24) nor a range first-last (198.51.100.10-198.51.100.20)", s)
	}
	from, reason := parseAddrReason(first)
	if reason != "" {
		return netipx.IPRange{}, fmt.Sprintf("range %q: %s", s, reason)
	}
	to, reason := parseAddrReason(last)
	if reason != "" {
		return netipx.IPRange{}, fmt.Sprintf("range %q: %s", s, reason)
	}
	if from.Is4() != to.Is4() {
		return netipx.IPRange{}, fmt.Sprintf("range %q mixes IPv4 and IPv6: both ends must be of the same family", s)
	}
	if to.Less(from) {
		return netipx.IPRange{}, fmt.Sprintf("range %q runs backwards: its first address is greater than its last", s)
	}
	return netipx.IPRangeFrom(from, to), ""
}

// parseAddr parses one IP address the way the API server's CEL ip() does:
// net/netip syntax, no zone, no IPv4-mapped IPv6 address.
func parseAddr(s string) (netip.Addr, error) {
	a, reason := parseAddrReason(s)
	if reason != "" {
		return netip.Addr{}, fmt.Errorf("%w: %s", ErrInvalidAddress, reason)
	}
	return a, nil
}

func parseAddrReason(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Sprintf("%q is not an IP address", s)
	case a.Zone() != "":
		return netip.Addr{}, fmt.Sprintf("%q has a zone, which is not allowed", s)
	case a.Is4In6():
		return netip.Addr{}, fmt.Sprintf("%q is an IPv4-mapped IPv6 address: write it as IPv4", s)
	}
	return a, ""
}

// formatRange writes r as a CIDR when it is one, else as first-last.
func formatRange(r netipx.IPRange) string {
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.From().String() + "-" + r.To().String()
}

// formatRanges writes ranges separated by commas.
func formatRanges(rs []netipx.IPRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = formatRange(r)
	}
	return strings.Join(parts, ", ")
}
