package ipam

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an unsigned 128-bit integer. It holds IPv6 addresses as numbers and
// offsets inside a range, so address arithmetic never overflows a uint64.
type u128 struct {
	hi, lo uint64
}

// u128From returns addr as a number: the 32-bit value for IPv4, the 128-bit
// value for IPv6.
func u128From(addr netip.Addr) u128 {
	if addr.Is4() {
		b := addr.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := addr.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr converts u back to an address of family fam.
func (u u128) addr(fam Family) netip.Addr {
	if fam == IPv4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

// add returns u+v modulo 2^128.
func (u u128) add(v u128) u128 {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, c)
	return u128{hi, lo}
}

// sub returns u-v modulo 2^128.
func (u u128) sub(v u128) u128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, b)
	return u128{hi, lo}
}

// inc returns u+1 modulo 2^128.
func (u u128) inc() u128 { return u.add(u128{lo: 1}) }

// dec returns u-1 modulo 2^128.
func (u u128) dec() u128 { return u.sub(u128{lo: 1}) }
