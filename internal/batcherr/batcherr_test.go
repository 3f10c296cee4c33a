package batcherr

import (
	"errors"
	"testing"
)

func TestFailed(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	for _, tc := range []struct {
		errs         []error
		n, first, nn int
	}{
		{nil, 0, -1, 0},
		{[]error{nil, nil}, 0, -1, 0},
		{[]error{nil, a, nil, b}, 2, 1, 2},
	} {
		n, first := Failed(tc.errs)
		if n != tc.n || first != tc.first || len(NonNil(tc.errs)) != tc.nn {
			t.Errorf("Failed(%v) = %d, %d, NonNil %d; want %d, %d, %d", tc.errs, n, first, len(NonNil(tc.errs)), tc.n, tc.first, tc.nn)
		}
	}
}

func TestMessage(t *testing.T) {
	errs := []error{nil, errors.New("boom"), errors.New("b")}
	if got, want := Message("queue", "push", "pushed", "job", "jobs", "q", errs), `queue: 2 of 3 jobs not pushed to "q"; job 1: boom`; got != want {
		t.Errorf("Message = %q; want %q", got, want)
	}
	if got, want := Message("stream", "add", "added", "entry", "entries", "s", []error{nil}), `stream: add batch to "s": no entry failed`; got != want {
		t.Errorf("Message = %q; want %q", got, want)
	}
}
