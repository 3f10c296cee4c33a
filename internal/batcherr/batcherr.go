// Package batcherr holds what stream.BatchError and queue.BatchError share:
// a slice with one error per item of a batch, nil for items that succeeded.
package batcherr

import "fmt"

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

// Message is the text of a batch error of package pkg whose items (noun,
// plural nouns) are verbed ("add", "added") to key: how many failed and
// the first failure.
func Message(pkg, verb, verbed, noun, nouns, key string, errs []error) string {
	n, first := Failed(errs)
	if first < 0 {
		return fmt.Sprintf("%s: %s batch to %q: no %s failed", pkg, verb, key, noun)
	}
	return fmt.Sprintf("%s: %d of %d %s not %s to %q; %s %d: %v", pkg, n, len(errs), nouns, verbed, key, noun, first, errs[first])
}
