package file

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/connectors"
)

// bigFile writes a directory file laid out like `scimbridge bench`'s: nUsers users of seven or
// eight keys, and nGroups groups holding nMembers memberships one per line, their sizes falling
// off with the group's rank (a few groups of thousands, many of tens). version changes the
// givenName of user changedUser(nUsers), so two versions differ in exactly one record.
func bigFile(nUsers, nGroups, nMembers, version int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.Grow(nUsers*220 + nMembers*20)
	b.WriteString("users:\n")
	for i := range nUsers {
		given := fmt.Sprintf("Given%d", i%997)
		if i == changedUser(nUsers) {
			given = fmt.Sprintf("Changed%d", version)
		}
		fmt.Fprintf(&b, "  - id: u-%07d\n    userName: user.%d@example.com\n    givenName: %s\n    familyName: Family%d\n    email: user.%d@example.com\n    title: \"Engineer %d\"\n    department: Dept%d\n",
			i, i, given, i%1009, i, i%7, i%50)
		if i > 0 {
			fmt.Fprintf(&b, "    manager: u-%07d\n", r.IntN(i))
		}
		if i%200 == 0 {
			b.WriteString("    suspended: true\n")
		}
	}
	b.WriteString("groups:\n")
	var h float64
	for g := range nGroups {
		h += 1 / float64(g+1)
	}
	for g := range nGroups {
		fmt.Fprintf(&b, "  - id: g-%05d\n    name: team-%05d\n    members:\n", g, g)
		size := max(1, min(nUsers, int(float64(nMembers)/(h*float64(g+1)))))
		start := r.IntN(nUsers)
		for m := range size {
			fmt.Fprintf(&b, "      - u-%07d\n", (start+m)%nUsers)
		}
	}
	return b.Bytes()
}

// changedUser is the index of the user whose record bigFile's versions change.
func changedUser(nUsers int) int { return min(500, nUsers/2) }

// benchRead reads through the source that prepare returns, prepare running outside the timer.
func benchRead(b *testing.B, prepare func(i int) connectors.Source) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		src := prepare(i)
		runtime.GC() // the garbage of the last read and of prepare is not this read's
		b.StartTimer()
		c0 := cpuTime()
		d, err := src.Read(ctx)
		cpu += cpuTime() - c0
		n++
		if err != nil || len(d.Users) == 0 {
			b.Fatalf("Read: %v", err)
		}
	}
	// CPU time (all threads, GC included) is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(n), "cpu-ms/op")
}

// heapInUse is the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRead100k reads a 100,000-user, 10,000-group, 1,000,000-membership file: with a new
// source each time (the first parse), again unchanged, and again after one record changed.
//
//	go test -run '^$' -bench Read100k -benchtime 5x ./connectors/file/
func BenchmarkRead100k(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "directory.yaml")
	versions := [][]byte{bigFile(100_000, 10_000, 1_000_000, 0), bigFile(100_000, 10_000, 1_000_000, 1)}
	b.Logf("file of %d bytes", len(versions[0]))
	write := func(data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	write(versions[0])
	open := func() connectors.Source {
		src, err := Config{Path: path}.Open(nil)
		if err != nil {
			b.Fatal(err)
		}
		return src
	}
	b.Run("first", func(b *testing.B) {
		benchRead(b, func(int) connectors.Source { return open() })
	})
	b.Run("identical", func(b *testing.B) {
		before := heapInUse()
		src := open()
		d, err := src.Read(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		withDir := heapInUse()
		runtime.KeepAlive(d)
		kept := heapInUse()
		benchRead(b, func(int) connectors.Source { return src })
		// What the source keeps between reads, and with it the Directory a read returns (which
		// the reconciler keeps in serve, sharing its entries with the source's cache).
		b.ReportMetric(float64(kept-before)/(1<<20), "MB-kept")
		b.ReportMetric(float64(withDir-before)/(1<<20), "MB-kept+dir")
	})
	b.Run("one-changed", func(b *testing.B) {
		src := open()
		if _, err := src.Read(context.Background()); err != nil {
			b.Fatal(err)
		}
		benchRead(b, func(i int) connectors.Source { write(versions[(i+1)%2]); return src })
	})
}

// BenchmarkDiff100k measures the feed's diff between two reads of a 100,000-user file that differ
// in one record: read by one source (as the feed reads them: the entries of unchanged records are
// shared), and parsed apart (nothing shared: every entry is compared value by value).
func BenchmarkDiff100k(b *testing.B) {
	v0, v1 := bigFile(100_000, 10_000, 1_000_000, 0), bigFile(100_000, 10_000, 1_000_000, 1)
	run := func(b *testing.B, old, cur *connectors.Directory) {
		at := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if got := diff(old, cur, at); len(got) != 1 {
				b.Fatalf("diff found %d changes, want 1", len(got))
			}
		}
	}
	b.Run("shared", func(b *testing.B) {
		var c parseCache
		_, old, _, err := c.parse(v0)
		if err != nil {
			b.Fatal(err)
		}
		_, cur, _, err := c.parse(v1)
		if err != nil {
			b.Fatal(err)
		}
		run(b, old, cur)
	})
	b.Run("apart", func(b *testing.B) {
		old, err := Parse(v0)
		if err != nil {
			b.Fatal(err)
		}
		cur, err := Parse(v1)
		if err != nil {
			b.Fatal(err)
		}
		run(b, old, cur)
	})
}
