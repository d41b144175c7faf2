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
