package heartbeat

import (
	"encoding/binary"
	"errors"
)

// A heartbeat is one UDP datagram:
//
//	"HRB1" | sequence (uint64, big endian) | name length (1 byte) | name
//
// The sequence counts the sender's heartbeats since it started; the name is
// its member name (the node name).
var magic = [4]byte{'H', 'R', 'B', '1'}

// maxName is the longest name a heartbeat carries (a node name is at most
// 253 bytes).
const maxName = 255

var errBadPacket = errors.New("heartbeat: malformed packet")

// appendPacket appends the heartbeat of name with sequence seq to b.
func appendPacket(b []byte, name string, seq uint64) []byte {
	name = name[:min(len(name), maxName)]
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, byte(len(name)))
	return append(b, name...)
}

// parsePacket returns the sender's name and sequence of a heartbeat.
func parsePacket(p []byte) (name string, seq uint64, err error) {
	if len(p) < 13 || [4]byte(p[:4]) != magic || int(p[12]) != len(p)-13 || p[12] == 0 {
		return "", 0, errBadPacket
	}
	return string(p[13:]), binary.BigEndian.Uint64(p[4:12]), nil
}
