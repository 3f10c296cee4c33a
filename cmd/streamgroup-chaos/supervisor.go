package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// workerProc supervises one worker process slot: it starts the worker,
// restarts it under the same name after a fault stopped it, and stops it
// gracefully at the end. Its methods are safe for concurrent use.
type workerProc struct {
	name string
	exe  string
	args []string
	out  io.Writer // the worker's stdout and stderr: os.Stderr, so that each log line is one write
	log  *slog.Logger

	mu      sync.Mutex
	proc    *os.Process    // nil while down
	expect  syscall.Signal // the signal a fault sent; 0 for none
	pause   time.Duration  // how long to stay down after that
	unusual []string       // exits no fault explains
}

func newWorkerProc(name, exe string, args []string, out io.Writer, log *slog.Logger) *workerProc {
	return &workerProc{name: name, exe: exe, args: args, out: out, log: log.With("worker", name)}
}

// signal sends sig to the worker and makes the supervisor restart it pause
// after it exited. It reports false when the worker is down (or already
// being stopped by a fault).
func (w *workerProc) signal(sig syscall.Signal, pause time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil || w.expect != 0 {
		return false
	}
	if err := w.proc.Signal(sig); err != nil {
		return false
	}
	w.expect, w.pause = sig, pause
	return true
}

// problems returns the exits no fault explains.
func (w *workerProc) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.unusual...)
}

// supervise runs the worker until ctx is done, then stops it with SIGTERM
// (SIGKILL if it has not exited after its drain timeout and a margin) and
// returns. It returns an error only when the worker cannot be started.
func (w *workerProc) supervise(ctx context.Context) error {
	for {
		cmd := exec.Command(w.exe, append([]string{workerCommand}, w.args...)...)
		cmd.Stdout, cmd.Stderr = w.out, w.out
		redisproc.DieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", w.name, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }() // owned: received below on every path
		w.mu.Lock()
		w.proc, w.expect, w.pause = cmd.Process, 0, 0
		w.mu.Unlock()

		var err error
		stopping := false
		select {
		case err = <-done:
		case <-ctx.Done():
			stopping = true
			w.mu.Lock()
			if w.expect == 0 {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				w.expect = syscall.SIGTERM
			}
			w.mu.Unlock()
			t := time.NewTimer(workerDrain + 5*time.Second)
			select {
			case err = <-done:
			case <-t.C:
				_ = cmd.Process.Kill()
				err = <-done
				w.note("did not exit within %v of SIGTERM; killed", workerDrain+5*time.Second)
			}
			t.Stop()
		}

		w.mu.Lock()
		expect, pause := w.expect, w.pause
		w.proc, w.expect = nil, 0
		w.mu.Unlock()
		w.judge(expect, err)
		if stopping {
			return nil
		}
		if expect == 0 {
			pause = 500 * time.Millisecond
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// judge checks a worker's exit against the signal it was sent.
func (w *workerProc) judge(expect syscall.Signal, err error) {
	code, sig := exitStatus(err)
	switch {
	case expect == syscall.SIGKILL && sig == syscall.SIGKILL:
		w.log.Debug("exited", "signal", sig)
	case expect == syscall.SIGTERM && code == workerExitOK:
		w.log.Debug("exited after a graceful drain")
	case expect == syscall.SIGTERM && code == workerExitDrainTimeout:
		// Allowed (entries stay pending, nothing is lost), but worth a look.
		w.log.Warn("graceful stop hit the drain timeout")
	case expect == 0:
		w.note("exited on its own: %v", err)
	default:
		w.note("exited with %v after %v", err, expect)
	}
}

func (w *workerProc) note(format string, args ...any) {
	msg := w.name + " " + fmt.Sprintf(format, args...)
	w.log.Error(msg)
	w.mu.Lock()
	w.unusual = append(w.unusual, msg)
	w.mu.Unlock()
}

// exitStatus returns the exit code (-1 when killed) and the signal that
// killed the process (0 when it exited).
func exitStatus(err error) (int, syscall.Signal) {
	if err == nil {
		return 0, 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1, 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return ee.ExitCode(), 0
}
