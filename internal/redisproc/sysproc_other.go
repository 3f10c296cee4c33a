//go:build !linux

package redisproc

import "os/exec"

// DieWithParent is a no-op outside Linux: there the caller's own cleanup is
// the only thing that stops a child.
func DieWithParent(*exec.Cmd) {}
