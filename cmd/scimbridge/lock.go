package main

import (
	"context"
	"errors"
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

// lockState takes the state store's writer lock for command, waiting up to state.lock_timeout. A
// lock held by another writer comes back as exit code 4.
func lockState(ctx context.Context, cfg *config.Config, command string) (*state.Lock, error) {
	path := cfg.StatePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	l, err := state.AcquireLock(ctx, path, lockInfo(command), time.Duration(cfg.State.LockTimeout))
	if errors.Is(err, state.ErrLocked) {
		return nil, &codeError{exitLocked, err}
	}
	return l, err
}
