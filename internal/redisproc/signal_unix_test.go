//go:build unix

package redisproc_test

import "syscall"

const stopSignal = syscall.SIGSTOP
