package keys

import "testing"

func TestSlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"123456789", 12739}, // the spec's CRC16 check value 0x31C3
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", Slot("foo{}{bar}")},
		{"foo{{bar}}zap", Slot("{bar")},
		{"foo{bar}{zap}", Slot("bar")},
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d; want %d", tc.key, got, tc.want)
		}
	}
	if Slot("foo{}{bar}") != int(crc16("foo{}{bar}")%16384) {
		t.Errorf("an empty hash tag must hash the whole key")
	}
}

func TestBeside(t *testing.T) {
	for _, tc := range []struct {
		base, want string
		same       bool
	}{
		{"jobs:email", "{jobs:email}:dead", true},
		{"{jobs}:email", "{jobs}:email:dead", true},
		{"a{b}c", "a{b}c:dead", true},
		{"a{b", "a{b:dead", false},
		{"a{}b", "a{}b:dead", false},
		{"a}b", "a}b:dead", false},
	} {
		got := Beside(tc.base, ":dead")
		if got != tc.want {
			t.Errorf("Beside(%q) = %q; want %q", tc.base, got, tc.want)
		}
		if same := SameSlot(tc.base, got); same != tc.same {
			t.Errorf("SameSlot(%q, %q) = %v; want %v", tc.base, got, same, tc.same)
		}
	}
}
