package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is the redis-server process of the scenario: its port, data
// directory and log file stay the same across restarts. Its methods are
// safe for concurrent use; they serialize.
type redisServer struct {
	bin, dir, logPath string
	port              int
	readyTimeout      time.Duration

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when not running
	done chan struct{} // closed when cmd has exited
}

// startRedis starts redis-server from PATH on a free loopback port, with
// its data in dir (AOF, fsync always).
func startRedis(ctx context.Context, dir string, readyTimeout time.Duration) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not on PATH: %w", err)
	}
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		s := &redisServer{bin: bin, dir: dir, logPath: filepath.Join(dir, "redis.log"), port: port, readyTimeout: readyTimeout}
		if err = s.start(ctx); err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			return nil, err
		}
	}
	return nil, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start starts the server (again) and waits until it answers PING, which
// it does once its AOF is loaded. A failure's error carries the log's tail.
func (s *redisServer) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("redis-server already running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	offset, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--daemonize", "no",
		"--appendonly", "yes", "--appendfsync", "always")
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { // owned: every path below, and kill, waits for done
		_ = cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(ctx, cmd.Process.Pid, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on %s: %w; log tail:\n%s", s.addr(), err, tail(s.logPath, offset))
	}
	s.cmd, s.done = cmd, done
	return nil
}

func (s *redisServer) waitReady(ctx context.Context, pid int, done <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1, PoolSize: 1, DialTimeout: 500 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		info, err := c.Info(pctx, "server").Result()
		pcancel()
		switch {
		case err != nil:
			last = err
		case !strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", pid)):
			last = errors.New("another server answers on the port")
		default:
			if last = c.Ping(ctx).Err(); last == nil {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// kill sends SIGKILL and waits for the exit; a server not running is not
// an error.
func (s *redisServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// tail returns at most the last 2 KiB written to path from offset.
func tail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	b = b[offset:]
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}
