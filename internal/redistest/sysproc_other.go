//go:build !linux

package redistest

import "os/exec"

// dieWithParent is a no-op outside Linux: there Main and t.Cleanup are the
// only things that stop a server.
func dieWithParent(*exec.Cmd) {}
