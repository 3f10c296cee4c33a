//go:build linux

package redisproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes the kernel SIGKILL cmd's process when the thread that
// started it exits (Pdeathsig); call it before cmd.Start. The Go runtime
// ends a thread only when a goroutine locked to it exits, so in practice
// the child dies with this process, even when this process is killed with
// SIGKILL. It is a no-op outside Linux.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
