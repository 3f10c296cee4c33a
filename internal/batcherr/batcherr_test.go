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
