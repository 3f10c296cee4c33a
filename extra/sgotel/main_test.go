package sgotel_test

import (
	"os"
	"testing"

	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
