package ipam

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// Count is an exact, non-negative number of addresses, from 0 up to and
// including 2^128 (the size of ::/0), so no IPv6 pool can overflow it. The zero
// value is 0. Counts are comparable with ==.
type Count struct {
	top, hi, lo uint64 // a 192-bit unsigned integer; top is 0 or 1 in practice
}

// CountOf returns n as a Count.
func CountOf(n uint64) Count { return Count{lo: n} }

// countFrom128 returns u as a Count.
func countFrom128(u u128) Count { return Count{hi: u.hi, lo: u.lo} }

// Add returns c+d.
func (c Count) Add(d Count) Count {
	lo, carry := bits.Add64(c.lo, d.lo, 0)
	hi, carry := bits.Add64(c.hi, d.hi, carry)
	top, _ := bits.Add64(c.top, d.top, carry)
	return Count{top, hi, lo}
}

// Sub returns c-d, or 0 when d is larger than c: a Count is never negative.
func (c Count) Sub(d Count) Count {
	if c.Cmp(d) <= 0 {
		return Count{}
	}
	lo, borrow := bits.Sub64(c.lo, d.lo, 0)
	hi, borrow := bits.Sub64(c.hi, d.hi, borrow)
	top, _ := bits.Sub64(c.top, d.top, borrow)
	return Count{top, hi, lo}
}

// Cmp returns -1, 0 or +1 as c is less than, equal to or greater than d.
func (c Count) Cmp(d Count) int {
	for _, p := range [3][2]uint64{{c.top, d.top}, {c.hi, d.hi}, {c.lo, d.lo}} {
		if p[0] < p[1] {
			return -1
		}
		if p[0] > p[1] {
			return 1
		}
	}
	return 0
}

// IsZero reports whether c is 0.
func (c Count) IsZero() bool { return c == Count{} }

// Uint64 returns c as a uint64 and true, or math.MaxUint64 and false when c
// does not fit.
func (c Count) Uint64() (uint64, bool) {
	if c.top != 0 || c.hi != 0 {
		return math.MaxUint64, false
	}
	return c.lo, true
}

// Float64 returns c rounded to the nearest float64, for metrics.
func (c Count) Float64() float64 {
	f, _ := new(big.Float).SetInt(c.Big()).Float64()
	return f
}

// Big returns c as a new big.Int.
func (c Count) Big() *big.Int {
	b := new(big.Int).SetUint64(c.top)
	b.Lsh(b, 64).Or(b, new(big.Int).SetUint64(c.hi))
	b.Lsh(b, 64).Or(b, new(big.Int).SetUint64(c.lo))
	return b
}

// String returns c in decimal, the form the IPPool status stores.
func (c Count) String() string {
	if c.top == 0 && c.hi == 0 {
		return strconv.FormatUint(c.lo, 10)
	}
	return c.Big().String()
}
