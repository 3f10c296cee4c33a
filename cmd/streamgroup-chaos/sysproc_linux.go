//go:build linux

package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL the child when the thread that
// started it exits. The Go runtime ends a thread only when a goroutine
// locked to it exits, which this command never does, so in practice the
// child dies with this process, even when it is killed with SIGKILL.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
