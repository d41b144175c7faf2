package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/scim/state"
)

// exitLocked is the exit code of a run that could not take the state lock: another writer holds
// it (see package state's doc on the lock).
const exitLocked = 4

// lockInfo describes this process as a lock holder.
func lockInfo(command string) state.LockInfo {
	host, _ := os.Hostname()
	return state.LockInfo{PID: os.Getpid(), Host: host, Command: command, Started: time.Now().UTC()}
}

// lockState takes the state store's writer lock for command, waiting up to state.lock_timeout
// (and saying so in the log): the flock beside the SQLite file, or the session advisory lock of
// the PostgreSQL database. A lock held by another writer comes back as exit code 4.
func lockState(ctx context.Context, cfg *config.Config, command string, log *slog.Logger) (*state.Lock, error) {
	path, err := cfg.StateLocation(ctx, newSecrets(log))
	if err != nil {
		return nil, err
	}
	if !cfg.UsesPostgres() {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
	}
	info, wait := lockInfo(command), time.Duration(cfg.State.LockTimeout)
	l, err := state.AcquireLock(ctx, path, info, 0)
	var le *state.LockedError
	if errors.As(err, &le) && wait > 0 {
		holder := "another process"
		if le.HolderKnown {
			holder = le.Holder.String()
		}
		log.Warn("waiting for the state lock", "holder", holder, "lock_timeout", wait.String())
		started := time.Now()
		if l, err = state.AcquireLock(ctx, path, info, wait); err == nil {
			log.Warn("took the state lock", "waited", time.Since(started).Round(time.Millisecond).String())
		}
	}
	if errors.Is(err, state.ErrLocked) {
		return nil, &codeError{exitLocked, err}
	}
	return l, err
}
