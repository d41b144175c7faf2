package main

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestFitMemoryLimitFollowsTheLiveHeap: serve's default soft limit is raised above twice the live
// heap when what it keeps (the directory of its change feed) outgrows it, and a limit from
// GOMEMLIMIT (memoryLimit 0) is never touched.
func TestFitMemoryLimitFollowsTheLiveHeap(t *testing.T) {
	before, saved := debug.SetMemoryLimit(-1), memoryLimit
	t.Cleanup(func() { debug.SetMemoryLimit(before); memoryLimit = saved })

	kept := make([][]byte, 64)
	for i := range kept {
		kept[i] = bytes.Repeat([]byte{byte(i)}, 1<<20) // 64 MiB live
	}
	runtime.GC()

	memoryLimit = 0 // GOMEMLIMIT was given
	debug.SetMemoryLimit(before)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	fitMemoryLimit(log)
	if got := debug.SetMemoryLimit(-1); got != before || memoryLimit != 0 {
		t.Errorf("with GOMEMLIMIT given the limit moved: %d (memoryLimit %d), want %d", got, memoryLimit, before)
	}

	memoryLimit = 16 << 20
	debug.SetMemoryLimit(memoryLimit)
	fitMemoryLimit(log)
	got := debug.SetMemoryLimit(-1)
	if cgroupMemoryLimit() == 0 && (got < 128<<20 || got != memoryLimit) {
		t.Errorf("limit %d MiB (memoryLimit %d MiB) with 64 MiB live, want at least 128 MiB", got>>20, memoryLimit>>20)
	}
	if !strings.Contains(logs.String(), "soft memory limit raised above") && !strings.Contains(logs.String(), "give the container more memory") {
		t.Errorf("nothing logged about the limit: %s", logs.String())
	}
	runtime.KeepAlive(kept)
}
