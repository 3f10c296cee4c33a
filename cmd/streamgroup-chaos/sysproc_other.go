//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing off Linux: children are stopped by the
// command's own cleanup, and workers also watch their parent (watchParent).
func dieWithParent(*exec.Cmd) {}
