package stream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

const maxU = ^uint64(0)

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    stream.ID
		wantErr bool
	}{
		{in: "0-0", want: stream.ID{}},
		{in: "0", want: stream.ID{}},
		{in: "1-2", want: stream.ID{Ms: 1, Seq: 2}},
		{in: "1526919030474-55", want: stream.ID{Ms: 1526919030474, Seq: 55}},
		{in: "1526919030474", want: stream.ID{Ms: 1526919030474}},
		{in: "007-08", want: stream.ID{Ms: 7, Seq: 8}},
		{in: "18446744073709551615-18446744073709551615", want: stream.ID{Ms: maxU, Seq: maxU}},
		{in: "", wantErr: true},
		{in: "-", wantErr: true},
		{in: "+", wantErr: true},
		{in: "*", wantErr: true},
		{in: "$", wantErr: true},
		{in: ">", wantErr: true},
		{in: "1-", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "a-1", wantErr: true},
		{in: "1-a", wantErr: true},
		{in: "1-2-3", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1-+2", wantErr: true},
		{in: " 1-2", wantErr: true},
		{in: "1-2 ", wantErr: true},
		{in: "1.5-2", wantErr: true},
		{in: "1-*", wantErr: true},
		{in: "18446744073709551616-0", wantErr: true},
		{in: "0-18446744073709551616", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := stream.ParseID(tt.in)
			if tt.wantErr {
				if !errors.Is(err, stream.ErrInvalidID) {
					t.Errorf("ParseID(%q) = %v, %v; want an error wrapping ErrInvalidID", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseID(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestIDString(t *testing.T) {
	tests := []struct {
		id   stream.ID
		want string
	}{
		{stream.ID{}, "0-0"},
		{stream.ID{Ms: 1, Seq: 2}, "1-2"},
		{stream.ID{Ms: maxU, Seq: maxU}, "18446744073709551615-18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.id.String(); got != tt.want {
				t.Errorf("%#v.String() = %q; want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestIDCompare(t *testing.T) {
	tests := []struct {
		a, b stream.ID
		want int
	}{
		{stream.ID{}, stream.ID{}, 0},
		{stream.ID{Ms: 1, Seq: 5}, stream.ID{Ms: 1, Seq: 5}, 0},
		{stream.ID{Ms: 1, Seq: 5}, stream.ID{Ms: 1, Seq: 6}, -1},
		{stream.ID{Ms: 1, Seq: 6}, stream.ID{Ms: 1, Seq: 5}, 1},
		{stream.ID{Ms: 1, Seq: maxU}, stream.ID{Ms: 2, Seq: 0}, -1},
		{stream.ID{Ms: 2, Seq: 0}, stream.ID{Ms: 1, Seq: maxU}, 1},
		{stream.ID{Ms: 9}, stream.ID{Ms: 10}, -1}, // numeric, not textual, order
		{stream.ID{Ms: maxU, Seq: maxU}, stream.ID{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.a.String()+"_vs_"+tt.b.String(), func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Errorf("%v.Compare(%v) = %d; want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestIDNext(t *testing.T) {
	tests := []struct {
		id, want stream.ID
	}{
		{stream.ID{}, stream.ID{Seq: 1}},
		{stream.ID{Ms: 5, Seq: 7}, stream.ID{Ms: 5, Seq: 8}},
		{stream.ID{Ms: 5, Seq: maxU}, stream.ID{Ms: 6}},
		{stream.ID{Ms: maxU, Seq: maxU - 1}, stream.ID{Ms: maxU, Seq: maxU}},
		{stream.ID{Ms: maxU, Seq: maxU}, stream.ID{Ms: maxU, Seq: maxU}}, // largest: itself
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			got := tt.id.Next()
			if got != tt.want {
				t.Errorf("%v.Next() = %v; want %v", tt.id, got, tt.want)
			}
			if tt.id != got && got.Compare(tt.id) != 1 {
				t.Errorf("%v.Next() = %v is not greater", tt.id, got)
			}
		})
	}
}

func TestMessageTime(t *testing.T) {
	tests := []struct {
		id   string
		want time.Time
	}{
		{"1526919030474-55", time.UnixMilli(1526919030474)},
		{"0-1", time.UnixMilli(0)},
		{"not-an-id", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			m := &stream.Message{ID: tt.id}
			if got := m.Time(); !got.Equal(tt.want) {
				t.Errorf("Message{ID: %q}.Time() = %v; want %v", tt.id, got, tt.want)
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"0-0", "1-2", "1526919030474", "18446744073709551615-18446744073709551615",
		"1-", "-", "+1", "1-2-3", "18446744073709551616-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := stream.ParseID(s)
		if err != nil {
			if !errors.Is(err, stream.ErrInvalidID) {
				t.Fatalf("ParseID(%q) error %v does not wrap ErrInvalidID", s, err)
			}
			return
		}
		again, err := stream.ParseID(id.String())
		if err != nil || again != id {
			t.Fatalf("ParseID(%q) = %v; ParseID(%q) = %v, %v; want the same ID", s, id, id.String(), again, err)
		}
		if again.Compare(id) != 0 {
			t.Fatalf("%v.Compare(itself) = %d; want 0", id, again.Compare(id))
		}
	})
}
