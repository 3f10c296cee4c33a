// Package keys derives the names of the helper keys that streamgroup keeps
// beside a stream or a list (dead letters, processing lists, heartbeats,
// consumer registries), so that on Redis Cluster each lies in the slot of
// the key it belongs to, and scripts touching both never fail with
// CROSSSLOT.
//
// Redis Cluster hashes only a key's hash tag when it has one: the part
// between the first "{" and the first "}" after it, if that part is not
// empty. Beside a key with a hash tag, appending a suffix keeps the slot.
// Beside a key without one, the derived name wraps the whole key in braces:
// "{jobs:email}:dead" hashes like "jobs:email".
package keys

import (
	"fmt"
	"strings"

	"github.com/streamgroup/streamgroup/internal/argerr"
)

// Beside returns the name of a helper key of base: base+suffix when base has
// a hash tag, "{"+base+"}"+suffix otherwise. The result always lies in the
// slot of base, except when base contains a "{" with no hash tag after it
// ("a{b", "a{}b"): then no derived name can share its slot, and
// SameSlot(base, Beside(base, suffix)) is false; callers on a cluster must
// refuse such a name.
func Beside(base, suffix string) string {
	if hasTag(base) || strings.ContainsAny(base, "{}") {
		return base + suffix
	}
	return "{" + base + "}" + suffix
}

// CheckSlot returns an error wrapping argerr.ErrInvalid when other, a key
// beside key (of a kind: "stream", "queue"), hashes to another Redis
// Cluster slot, so that every script touching both would fail with
// CROSSSLOT. option names the option that set other, "" when other was
// derived with Beside; what names other in the message.
func CheckSlot(kind, key, what, other, option string) error {
	switch {
	case SameSlot(key, other):
		return nil
	case option == "":
		return fmt.Errorf("%w: on Redis Cluster the %s name %q has an unmatched brace, so its %s %q hashes to another slot: drop the brace or give the %s a hash tag, as in \"{jobs}:email\"",
			argerr.ErrInvalid, kind, key, what, other, kind)
	}
	return fmt.Errorf("%w: on Redis Cluster %s %q (slot %d) must lie in the slot of the %s %q (slot %d): give both the same hash tag, such as %q, or leave %s empty for %q",
		argerr.ErrInvalid, option, other, Slot(other), kind, key, Slot(key), Beside(key, ":failed"), option, Beside(key, ":dead"))
}

// hasTag reports whether key has a hash tag.
func hasTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	closing := strings.IndexByte(key[open+1:], '}')
	return closing > 0
}

// tag returns the part of key that Redis Cluster hashes.
func tag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	closing := strings.IndexByte(key[open+1:], '}')
	if closing <= 0 {
		return key
	}
	return key[open+1 : open+1+closing]
}

// Slot returns the Redis Cluster hash slot of key (CRC16/XMODEM of its hash
// tag, modulo 16384).
func Slot(key string) int {
	return int(crc16(tag(key)) % 16384)
}

// SameSlot reports whether every key lies in the slot of the first.
func SameSlot(ks ...string) bool {
	for _, k := range ks[1:] {
		if Slot(k) != Slot(ks[0]) {
			return false
		}
	}
	return true
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// of the Redis Cluster specification.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
