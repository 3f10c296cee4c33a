//go:build !unix

package redisproc_test

import "os"

const stopSignal = os.Kill // unused: TestStopFallsBackToKill skips
