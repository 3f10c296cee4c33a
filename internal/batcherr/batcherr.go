// Package batcherr holds what stream.BatchError and queue.BatchError share:
// a slice with one error per item of a batch, nil for items that succeeded.
package batcherr

// Failed returns how many of errs are non-nil and the index of the first
// (-1 when none is).
func Failed(errs []error) (n, first int) {
	first = -1
	for i, err := range errs {
		if err != nil {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	return n, first
}

// NonNil returns the non-nil errors of errs, for Unwrap.
func NonNil(errs []error) []error {
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
