package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// defaultMemoryLimit is the soft memory limit of the Go runtime for `sync` and `serve` when
// GOMEMLIMIT is not set and no container limit is found (the emulator and bench commands, which
// hold a whole target in memory, keep Go's default). A sync of 100,000 users, 10,000 groups and
// 1,000,000 memberships keeps at most about 280 MB live; with the default GC pacing its heap
// would grow to twice that between collections. Above the limit the collector works harder
// instead; it is soft, so a larger directory still syncs, only with more GC work (see
// warnIfMemoryLimited).
const defaultMemoryLimit = 360 << 20

// memoryLimit is the soft memory limit setMemoryLimit set, for warnIfMemoryLimited.
var memoryLimit int64

// memoryCeiling is how far fitMemoryLimit may raise memoryLimit: 90% of the container's limit
// (setMemoryLimit reads it once), or no bound outside a container.
var memoryCeiling int64 = math.MaxInt64

// setMemoryLimit applies the default soft memory limit unless GOMEMLIMIT says otherwise: 90% of
// the cgroup's memory limit when the process runs in a container that has one, else
// defaultMemoryLimit. It returns the limit set (0 when GOMEMLIMIT was given).
func setMemoryLimit() int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return 0
	}
	limit := int64(defaultMemoryLimit)
	if cg := cgroupMemoryLimit(); cg > 0 {
		limit = cg / 10 * 9
		memoryCeiling = limit
	}
	debug.SetMemoryLimit(limit)
	memoryLimit = limit
	return limit
}

// cgroupMemoryLimit reads the cgroup v2 (or v1) memory limit of this process; 0 when there is none.
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && v > 0 && v < 1<<50 { // "max" and v1's "no limit" value are not limits
			return v
		}
	}
	return 0
}

// warnIfMemoryLimited logs when the soft memory limit made the collector work harder during the
// run: the directory needs more memory than the limit, and a higher GOMEMLIMIT would be faster.
func warnIfMemoryLimited(log *slog.Logger, limit int64) {
	if limit == 0 {
		return
	}
	s := []metrics.Sample{{Name: "/gc/limiter/last-enabled:gc-cycle"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 && s[0].Value.Uint64() > 0 {
		log.Warn("the memory limit slowed this run: the collector ran to stay under it; set GOMEMLIMIT higher (for example 1GiB) for a faster run of a directory this large",
			"memory_limit_mib", limit>>20)
	}
}

// memoryLimitFit remembers whether fitMemoryLimit already said it could not fit the limit.
var memoryLimitFit struct {
	sync.Mutex
	warned bool
}

// fitMemoryLimit raises the default soft memory limit of serve to two and a half times the live
// heap after a run, when twice the live heap (Go's default pacing) is above it: serve keeps the last complete source read in
// memory for its change feed, which at 100,000 users alone exceeds defaultMemoryLimit, and under
// the limit the collector would then run without pause. A limit from GOMEMLIMIT is left as it
// is; under a container's limit it is raised no further than 90% of that, with a warning once.
func fitMemoryLimit(log *slog.Logger) {
	memoryLimitFit.Lock()
	defer memoryLimitFit.Unlock()
	if memoryLimit == 0 {
		return
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	want := 2 * int64(s[0].Value.Uint64())
	if want <= memoryLimit {
		return
	}
	ceiling := memoryCeiling
	if want > ceiling {
		if !memoryLimitFit.warned && memoryLimit < ceiling {
			debug.SetMemoryLimit(ceiling)
			memoryLimit = ceiling
		}
		if !memoryLimitFit.warned {
			memoryLimitFit.warned = true
			log.Warn("the directory kept in memory needs more than the container's memory allows for a fast collector; give the container more memory",
				"live_heap_mib", want/2>>20, "memory_limit_mib", memoryLimit>>20)
		}
		return
	}
	want = min(want+want/4, ceiling) // headroom, so that a heap growing slowly does not log on every run
	log.Info("soft memory limit raised above twice the live heap (the directory is kept in memory for the change feed); set GOMEMLIMIT to choose it",
		"from_mib", memoryLimit>>20, "to_mib", want>>20)
	debug.SetMemoryLimit(want)
	memoryLimit = want
}
