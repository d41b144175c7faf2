package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func lockInfo(cmd string) LockInfo {
	return LockInfo{PID: os.Getpid(), Host: "test-host", Command: cmd, Started: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)}
}

func TestLockIsExclusive(t *testing.T) {
	eachBackend(t, testLockIsExclusive)
}

func testLockIsExclusive(t *testing.T, path string) {
	ctx := context.Background()
	first, err := AcquireLock(ctx, path, lockInfo("sync"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SetRunID(42); err != nil {
		t.Fatal(err)
	}

	// A second writer (another open file description, as another process has) is refused at once
	// and told who holds the lock.
	start := time.Now()
	_, err = AcquireLock(ctx, path, lockInfo("serve"), 0)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second AcquireLock: got %v, want a *LockedError", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("lock_timeout 0 waited %s", waited)
	}
	if !le.HolderKnown || le.Holder.Command != "sync" || le.Holder.RunID != 42 || le.Holder.PID != os.Getpid() {
		t.Errorf("holder: got %+v (known %v), want the first lock's sync run 42", le.Holder, le.HolderKnown)
	}
	for _, want := range []string{shownLocation(path), fmt.Sprintf("pid %d", os.Getpid()), "test-host", "run 42", "2026-12-02T01:00:00Z", "state unlock --force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	held, info, known, err := Locked(path)
	if err != nil || !held || !known || info.RunID != 42 {
		t.Errorf("Locked: got %v %+v %v %v, want held by run 42", held, info, known, err)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if held, _, _, err := Locked(path); err != nil || held {
		t.Errorf("Locked after Release: got %v %v, want free", held, err)
	}
	second, err := AcquireLock(ctx, path, lockInfo("serve"), 0)
	if err != nil {
		t.Fatalf("AcquireLock after Release: %v", err)
	}
	defer second.Release()
	if _, info, _, _ := Locked(path); info.Command != "serve" || info.RunID != 0 {
		t.Errorf("holder after the second acquire: got %+v, want the serve holder", info)
	}
	if err := second.Check(ctx); err != nil {
		t.Errorf("Check of a held lock: %v", err)
	}
}

// shownLocation is how messages name a store's location: a database URL without its password.
func shownLocation(loc string) string {
	if IsPostgresURL(loc) {
		return RedactURL(loc)
	}
	return loc
}

func TestLockWaitsForTheHolder(t *testing.T) {
	eachBackend(t, testLockWaitsForTheHolder)
}

func testLockWaitsForTheHolder(t *testing.T, path string) {
	ctx := context.Background()
	first, err := AcquireLock(ctx, path, lockInfo("sync"), 0)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		released <- time.Now()
		first.Release()
	}()
	start := time.Now()
	second, err := AcquireLock(ctx, path, lockInfo("sync"), 10*time.Second)
	acquired := time.Now()
	if err != nil {
		t.Fatalf("waiting AcquireLock: %v", err)
	}
	second.Release()
	rel := <-released
	// The path this test names: the second writer started while the lock was held, and got it
	// only after the release (not before, not long after).
	if start.After(rel) {
		t.Fatalf("the second AcquireLock started %s after the release: it never waited", start.Sub(rel))
	}
	if acquired.Before(rel) {
		t.Errorf("took the lock %s before its holder released it", rel.Sub(acquired))
	}
	if got := acquired.Sub(rel); got > 5*time.Second {
		t.Errorf("took the lock %s after its release", got)
	}

	// A wait that runs out names how long it waited.
	holder, err := AcquireLock(ctx, path, lockInfo("sync"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	_, err = AcquireLock(ctx, path, lockInfo("sync"), 250*time.Millisecond)
	var le *LockedError
	if !errors.As(err, &le) || le.Waited < 250*time.Millisecond || !strings.Contains(err.Error(), "after waiting") {
		t.Errorf("timed-out AcquireLock: got %v, want a LockedError after waiting 250ms", err)
	}

	// A cancelled context ends the wait.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := AcquireLock(cctx, path, lockInfo("sync"), time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AcquireLock with a cancelled context: got %v, want context.DeadlineExceeded", err)
	}
}

func TestLockOfInMemoryStore(t *testing.T) {
	for _, path := range []string{"", ":memory:"} {
		a, err := AcquireLock(context.Background(), path, lockInfo("sync"), 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := AcquireLock(context.Background(), path, lockInfo("sync"), 0)
		if err != nil {
			t.Fatalf("%q: a private in-memory store needs no lock: %v", path, err)
		}
		a.Release()
		b.Release()
	}
}

func TestForceUnlock(t *testing.T) {
	eachBackend(t, testForceUnlock)
}

func testForceUnlock(t *testing.T, path string) {
	ctx := context.Background()
	stuck, err := AcquireLock(ctx, path, lockInfo("sync"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Release()
	if err := ForceUnlock(path); err != nil {
		t.Fatal(err)
	}
	// The old holder can tell that its lock is gone.
	if err := stuck.Check(ctx); !errors.Is(err, ErrLockLost) {
		t.Errorf("Check of a lock removed by force: got %v, want ErrLockLost", err)
	}
	next, err := AcquireLock(ctx, path, lockInfo("sync"), 0)
	if err != nil {
		t.Fatalf("AcquireLock after ForceUnlock: %v", err)
	}
	defer next.Release()
	// The new holder owns the file under the name; a third writer waits for it, not for the old one.
	if _, err := AcquireLock(ctx, path, lockInfo("sync"), 0); !errors.Is(err, ErrLocked) {
		t.Errorf("third AcquireLock: got %v, want ErrLocked", err)
	}
	if IsPostgresURL(path) {
		return
	}
	if err := ForceUnlock(filepath.Join(t.TempDir(), "none.db")); err != nil {
		t.Errorf("ForceUnlock without a lock file: %v", err)
	}
}

// lockChildEnv names the state file a child process locks and then holds until it is killed.
const lockChildEnv = "SCIMBRIDGE_STATE_LOCK_CHILD"

func TestLockChild(t *testing.T) {
	path := os.Getenv(lockChildEnv)
	if path == "" {
		t.Skip("only runs as the child of TestLockDiesWithItsHolder")
	}
	l, err := AcquireLock(context.Background(), path, LockInfo{PID: os.Getpid(), Host: "child", Command: "sync"}, 0)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	l.Release()
}

// TestLockDiesWithItsHolder kills a process that holds the lock with SIGKILL: the next writer
// takes the lock at once, with no unlock by hand.
func TestLockDiesWithItsHolder(t *testing.T) {
	eachBackend(t, testLockDiesWithItsHolder)
}

func testLockDiesWithItsHolder(t *testing.T, path string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("child: %q", line)
	}
	_, err = AcquireLock(context.Background(), path, lockInfo("sync"), 0)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid {
		t.Fatalf("while the child holds it: got %v, want locked by pid %d", err, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	start := time.Now()
	// The kernel releases a flock with the process. PostgreSQL releases the advisory lock when the
	// server reads the closed socket of the session, a moment later.
	var wait time.Duration
	if IsPostgresURL(path) {
		wait = 5 * time.Second
	}
	l, err := AcquireLock(context.Background(), path, lockInfo("sync"), wait)
	if err != nil {
		t.Fatalf("after SIGKILL of the holder: %v", err)
	}
	defer l.Release()
	t.Logf("lock taken %s after the holder was killed", time.Since(start))
}

// A writer refused just after another took the lock, before the holder wrote its record, still
// names the holder: it reads the record again for a moment instead of reporting an unknown one.
func TestLockNamesAHolderThatHasJustTakenIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := tryLock(LockPath(path)) // the lock taken, the record not written yet
	if err != nil {
		t.Fatal(err)
	}
	holder := &Lock{path: LockPath(path), f: f, info: LockInfo{PID: 777, Host: "fresh", Command: "sync"}}
	defer holder.Release()
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = holder.write()
	}()
	_, err = AcquireLock(context.Background(), path, lockInfo("sync"), 0)
	var le *LockedError
	if !errors.As(err, &le) || !le.HolderKnown || le.Holder.PID != 777 {
		t.Fatalf("got %v (holder known %v), want locked by pid 777", err, le != nil && le.HolderKnown)
	}
	if strings.Contains(err.Error(), "after waiting") {
		t.Errorf("a run that does not wait says it waited: %v", err)
	}

	// After a clean release the file holds no stale record.
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	if _, known, _ := ReadLock(path); known {
		t.Errorf("a released lock still names its holder")
	}
}
