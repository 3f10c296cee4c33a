//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL the child when the thread that
// started it exits. The Go runtime only ends a thread when a goroutine exits
// while locked to it, and the harness starts servers from ordinary
// goroutines, so in practice the child dies with the test process, including
// on a panic or a go test timeout.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
