package state

// The state lock, after Terraform's state lock: one writer at a time per state store. A run that
// writes to the target (sync, serve's runs) takes the lock before it reads the target and holds it
// to the end; a dry run and `check` never take it and are never blocked by it.
//
// For SQLite the lock is an OS file lock (flock) on a file beside the database, "<state>.lock".
// The kernel releases it when the holding process dies however it dies (SIGKILL, OOM kill, a node
// lost with a local volume), so a dead holder never needs clearing by hand. The file also records
// who holds it (pid, host, command, run id, start time), for the message a second writer gets.
//
// Where it works: local filesystems, and volumes that several containers or pods share on one
// node. Over the network it needs a filesystem with working locks: NFSv4 (Amazon EFS included)
// and SMB do; NFSv3 needs lockd, and an NFS mount with the `nolock` option makes every lock
// succeed, so two writers on two hosts would both run. A lock left on a server by a client that
// vanished is released when the server's lease expires (about 90 s on NFSv4); `scimbridge state
// unlock --force` removes the lock file for cases that do not resolve themselves.
//
// For PostgreSQL (a postgres:// location) the lock is a session advisory lock; see
// lock_postgres.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLocked reports that another writer holds the state lock; the error is a *LockedError.
var ErrLocked = errors.New("state store is locked by another writer")

// LockInfo says who holds a state lock, as recorded in the lock file.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	RunID   int64     `json:"runId,omitempty"`
	Started time.Time `json:"startedAt"`
}

func (i LockInfo) String() string {
	s := fmt.Sprintf("pid %d on host %s (scimbridge %s", i.PID, i.Host, i.Command)
	if i.RunID != 0 {
		s += fmt.Sprintf(", run %d", i.RunID)
	}
	if !i.Started.IsZero() {
		s += ", since " + i.Started.UTC().Format(time.RFC3339)
	}
	return s + ")"
}

// LockedError is returned when the lock is held by another writer.
type LockedError struct {
	Path string
	// Holder is what the lock file says; HolderKnown is false when it could not be read.
	Holder      LockInfo
	HolderKnown bool
	// Waited is how long the caller waited for the lock.
	Waited time.Duration
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.HolderKnown {
		who = e.Holder.String()
	}
	waited := ""
	if e.Waited > 0 {
		waited = fmt.Sprintf(" after waiting %s", e.Waited.Round(time.Millisecond))
	}
	return fmt.Sprintf("state: %s is locked by %s%s: only one run may write at a time; wait for it to finish "+
		"(state.lock_timeout makes a run wait), or, only if that process is gone for good and the lock "+
		"stays, run `scimbridge state unlock --force`", e.Path, who, waited)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held state lock. Release it when the run ends; a process that dies releases it too.
type Lock struct {
	path string
	f    *os.File  // the flock; nil for an in-memory store, which no other process can reach
	pg   *pgx.Conn // the session holding the advisory lock, for PostgreSQL
	info LockInfo
}

// LockPath is the lock file of the state file at statePath.
func LockPath(statePath string) string { return statePath + ".lock" }

// lockPoll is how often a waiting writer tries the lock again.
const lockPoll = 200 * time.Millisecond

// AcquireLock takes the exclusive writer lock of the state store at statePath (a file path, or a
// postgres:// URL: see lock_postgres.go), waiting up to wait for a holder to let go (0: fail at
// once). It returns a *LockedError (errors.Is ErrLocked) when the lock stays held, or ctx's
// error. The lock of an in-memory store ("" or ":memory:") always succeeds.
func AcquireLock(ctx context.Context, statePath string, info LockInfo, wait time.Duration) (*Lock, error) {
	if IsPostgresURL(statePath) {
		return acquirePostgresLock(ctx, statePath, info, wait)
	}
	if statePath == "" || statePath == ":memory:" {
		return &Lock{info: info}, nil
	}
	path := LockPath(statePath)
	return pollLock(ctx, statePath, wait, func() (*Lock, error) {
		f, err := tryLock(path)
		if err != nil && !errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("state: lock %s: %w", path, err)
		}
		if f == nil {
			return nil, nil
		}
		l := &Lock{path: path, f: f, info: info}
		if err := l.write(); err != nil {
			_ = l.Release()
			return nil, err
		}
		return l, nil
	}, func() (LockInfo, bool) { return readHolder(ctx, statePath) })
}

// pollLock calls try, every lockPoll for up to wait, until it takes the lock (a Lock) or fails (an
// error); (nil, nil) means the lock is held. Past wait it answers a *LockedError naming path and
// the holder that holder reads; on ctx's end, ctx's error.
func pollLock(ctx context.Context, path string, wait time.Duration, try func() (*Lock, error), holder func() (LockInfo, bool)) (*Lock, error) {
	start := time.Now()
	for {
		if l, err := try(); l != nil || err != nil {
			return l, err
		}
		waited := time.Since(start)
		if waited >= wait {
			h, known := holder()
			le := &LockedError{Path: path, Holder: h, HolderKnown: known}
			if wait > 0 {
				le.Waited = waited
			}
			return nil, le
		}
		t := time.NewTimer(min(lockPoll, wait-waited))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// tryLock opens the lock file and takes its lock without waiting. It returns errWouldBlock when
// another open file description holds it. A lock file removed or replaced between the open and the
// lock (`state unlock --force`) is opened again, so that two writers never hold locks on two
// different files under one name.
func tryLock(path string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock(f); err != nil {
			f.Close()
			return nil, err
		}
		same, err := sameFile(f, path)
		if err != nil {
			f.Close()
			return nil, err
		}
		if same {
			return f, nil
		}
		f.Close() // the name now points elsewhere: lock what it points to
	}
	return nil, errors.New("the lock file keeps being replaced")
}

func sameFile(f *os.File, path string) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

// write records the holder in the lock file.
func (l *Lock) write() error {
	b, err := jsonLine(l.info)
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("state: write lock %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("state: write lock %s: %w", l.path, err)
	}
	return nil
}

// SetRunID records the run the holder is running now (0 between runs), for the message a waiting
// writer gets.
func (l *Lock) SetRunID(id int64) error {
	if l == nil {
		return nil
	}
	l.info.RunID = id
	switch {
	case l.pg != nil:
		return l.writePG(context.Background())
	case l.f != nil:
		return l.write()
	}
	return nil
}

// Check reports whether the lock is still held: it fails wrapping ErrLockLost when the lock's
// database session ended or no longer holds it (PostgreSQL), or when the lock file was removed
// or replaced (`state unlock --force`). A leader calls it before each request boundary.
func (l *Lock) Check(ctx context.Context) error {
	switch {
	case l == nil:
		return fmt.Errorf("state: no lock: %w", ErrLockLost)
	case l.pg != nil:
		return l.checkPG(ctx)
	case l.f != nil:
		same, err := sameFile(l.f, l.path)
		if err != nil {
			return fmt.Errorf("state: lock %s: %w: %w", l.path, ErrLockLost, err)
		}
		if !same {
			return fmt.Errorf("state: lock %s: %w: the lock file was removed or replaced", l.path, ErrLockLost)
		}
	}
	return nil
}

func jsonLine(info LockInfo) ([]byte, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func parseLockInfo(b []byte) (LockInfo, bool) {
	var info LockInfo
	if err := json.Unmarshal(b, &info); err != nil || info.PID == 0 {
		return LockInfo{}, false
	}
	return info, true
}

// Release lets go of the lock. The lock file stays (removing it would race with a writer that has
// just opened it); its content no longer matters once nobody holds it.
func (l *Lock) Release() error {
	if l != nil && l.pg != nil {
		err := l.releasePG()
		l.pg = nil
		return err
	}
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0) // no stale holder record for a writer that reads the file before the next holder writes its own
	err := l.f.Close()  // closing the last descriptor releases the flock
	l.f = nil
	return err
}

// holderWrite is how long a holder may take to write its record after taking the lock: a writer
// refused in that window reads the file again rather than report an unknown holder.
const holderWrite = 200 * time.Millisecond

// readHolder reads the holder's record, waiting up to holderWrite for a holder that has just taken
// the lock to write it.
func readHolder(ctx context.Context, statePath string) (LockInfo, bool) {
	deadline := time.Now().Add(holderWrite)
	for {
		info, known, _ := ReadLock(statePath)
		if known || time.Now().After(deadline) || ctx.Err() != nil {
			return info, known
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ReadLock returns what the lock file of statePath says about its holder; known is false when
// there is no lock file or it holds no record.
func ReadLock(statePath string) (info LockInfo, known bool, err error) {
	f, err := os.Open(LockPath(statePath))
	if errors.Is(err, os.ErrNotExist) {
		return LockInfo{}, false, nil
	}
	if err != nil {
		return LockInfo{}, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return LockInfo{}, false, err
	}
	info, known = parseLockInfo(b)
	return info, known, nil
}

// Locked reports whether another writer holds the lock of statePath now, and who.
func Locked(statePath string) (held bool, info LockInfo, known bool, err error) {
	if IsPostgresURL(statePath) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return lockedPostgres(ctx, statePath)
	}
	if statePath == "" || statePath == ":memory:" {
		return false, LockInfo{}, false, nil
	}
	path := LockPath(statePath)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, LockInfo{}, false, nil
	}
	f, err := tryLock(path)
	switch {
	case errors.Is(err, errWouldBlock):
		info, known := readHolder(context.Background(), statePath)
		return true, info, known, nil
	case err != nil:
		return false, LockInfo{}, false, fmt.Errorf("state: lock %s: %w", path, err)
	}
	f.Close()
	return false, LockInfo{}, false, nil
}

// ForceUnlock removes the lock file of statePath, so that the next writer takes a new lock even if
// a process still holds the old one. Only for a lock that does not go away by itself (a hung
// process, a network filesystem that keeps a dead client's lock): if the holder is in fact still
// writing, two writers then run at once. For PostgreSQL it ends the database session that holds
// the lock.
func ForceUnlock(statePath string) error {
	if IsPostgresURL(statePath) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return forceUnlockPostgres(ctx, statePath)
	}
	err := os.Remove(LockPath(statePath))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: remove lock %s: %w", LockPath(statePath), err)
	}
	return nil
}
