package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/scim/state"
)

// standbyRetry is how often a standby replica of serve tries the state lock again.
const standbyRetry = 5 * time.Second

// leader holds the state store's writer lock for the life of a serve process. A replica that
// cannot take it is a standby: it runs no sync, reports itself not ready, and keeps trying, so it
// takes over within standbyRetry of the holder going away.
type leader struct {
	statePath string
	info      state.LockInfo
	log       *slog.Logger
	retry     time.Duration

	mu     sync.Mutex
	lock   *state.Lock
	reason string // why this replica is a standby; "" once it leads
}

func newLeader(statePath string, info state.LockInfo, log *slog.Logger) *leader {
	return &leader{statePath: statePath, info: info, log: log, retry: standbyRetry,
		reason: "the state lock has not been tried yet"}
}

// run tries the lock every retry interval until it holds it or ctx ends; until then Standby
// reports why this replica waits.
func (l *leader) run(ctx context.Context) {
	logged := false
	for {
		lock, err := state.AcquireLock(ctx, l.statePath, l.info, 0)
		if err == nil {
			l.mu.Lock()
			l.lock, l.reason = lock, ""
			l.mu.Unlock()
			if logged {
				l.log.Info("took the state lock; this replica now runs the syncs")
			}
			return
		}
		reason := err.Error()
		var le *state.LockedError
		if errors.As(err, &le) {
			reason = "another replica holds the state lock"
			if le.HolderKnown {
				reason += ": " + le.Holder.String()
			}
		}
		l.mu.Lock()
		changed := l.reason != reason
		l.reason = reason
		l.mu.Unlock()
		if changed || !logged {
			l.log.Warn("standby: not running syncs", "reason", reason, "retry_every", l.retry.String())
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.retry):
		}
	}
}

// Standby reports whether this replica waits for the lock, and why.
func (l *leader) Standby() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lock == nil, l.reason
}

// SetRunID records the run in progress in the lock file.
func (l *leader) SetRunID(id int64) {
	l.mu.Lock()
	lock := l.lock
	l.mu.Unlock()
	if err := lock.SetRunID(id); err != nil {
		l.log.Debug("record the run in the lock file", "err", err)
	}
}

// Release lets go of the lock, if held.
func (l *leader) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.lock.Release()
	l.lock = nil
}

// runLock takes the one-writer lock for one run at a time (`scimbridge lambda`).
type runLock interface {
	// Acquire takes the lock without waiting; an error wrapping state.ErrLocked means another
	// run holds it. The context it returns, when not nil, ends when the lock is lost.
	Acquire(ctx context.Context) (context.Context, func(), error)
	Close()
}

// newRunLock returns the lock of the configured state store.
func newRunLock(_ context.Context, rt *app, command string, log *slog.Logger) (runLock, error) {
	return &fileRunLock{path: rt.cfg.StatePath(), command: command, log: log}, nil
}

// fileRunLock is the SQLite state's file lock, taken for each run.
type fileRunLock struct {
	path, command string
	log           *slog.Logger
}

func (l *fileRunLock) Acquire(ctx context.Context) (context.Context, func(), error) {
	lock, err := state.AcquireLock(ctx, l.path, lockInfo(l.command), 0)
	if err != nil {
		return nil, nil, err
	}
	return nil, func() {
		if err := lock.Release(); err != nil {
			l.log.Warn("release the state lock", "err", err)
		}
	}, nil
}

func (l *fileRunLock) Close() {}
