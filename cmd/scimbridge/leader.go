package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// Leader election defaults. A replica that is not the leader tries the lock every standbyRetry.
// With PostgreSQL the leader runs a keepalive on its lock's session every keepalive, and the
// server ends a session idle for lease (idle_session_timeout), which releases the lock: so a
// follower takes over within about standbyRetry of a leader that exits or is killed (its socket
// closes), and within lease + standbyRetry of one that stops answering (paused, cut off). The
// leader itself stops starting requests once lease has passed since its last keepalive that
// was sent, before the server can have given the lock to another replica; a new term fences
// its store writes anyway.
const (
	standbyRetry     = 2 * time.Second
	defaultLease     = 15 * time.Second
	defaultKeepalive = 3 * time.Second
)

// errNotLeader ends a run whose replica lost the leadership (the lock, or its lease).
var errNotLeader = errors.New("this replica is no longer the leader: its lock or lease is gone")

// leaseOpts are the leader's timings.
type leaseOpts struct {
	lease, keepalive, retry time.Duration
}

func defaultLeaseOpts() leaseOpts {
	return leaseOpts{lease: defaultLease, keepalive: defaultKeepalive, retry: standbyRetry}
}

// check reports settings that cannot work: the keepalive must come well within the lease.
func (o leaseOpts) check() error {
	if o.lease <= 0 || o.keepalive <= 0 || o.keepalive > o.lease/2 {
		return fmt.Errorf("--lease %s and --keepalive %s: both must be positive and the keepalive at most half the lease", o.lease, o.keepalive)
	}
	return nil
}

// leader holds the state store's writer lock for a serve process (or one run of `lambda`). A
// replica that cannot take it runs no sync: a standby (SQLite) or a follower (PostgreSQL). Each
// time it takes the lock it begins a new leader term in the store and fences the store with it,
// so that writes of an older leader (paused past its lease, then woken up) fail with
// state.ErrFenced; and its runs get a context (guard) that ends at the next request boundary once
// the lock or the lease is lost.
type leader struct {
	location string // the state file, or the database URL
	postgres bool
	store    state.Store
	info     state.LockInfo
	holder   string
	log      *slog.Logger
	opts     leaseOpts

	lockMu sync.Mutex // one call at a time on the lock's connection
	mu     sync.Mutex
	lock   *state.Lock
	term   int64
	until  time.Time     // the lease as this process counts it (PostgreSQL)
	lost   chan struct{} // closed when the term ends
	reason string        // why this replica does not lead; "" while it leads
	// tried is closed once the first attempt at the lock has settled (taken or refused), so that
	// serve starts its controller knowing whether it leads: no standby warning for a lock it has
	// not yet tried.
	tried     chan struct{}
	triedOnce sync.Once
}

func newLeader(location string, store state.Store, info state.LockInfo, log *slog.Logger, opts leaseOpts) *leader {
	return &leader{location: location, postgres: state.IsPostgresURL(location), store: store, info: info,
		holder: fmt.Sprintf("%s (pid %d on %s)", info.Command, info.PID, info.Host),
		log:    log, opts: opts, reason: "the state lock has not been tried yet", tried: make(chan struct{})}
}

// firstTry waits until the first attempt at the lock has settled, or ctx ends.
func (l *leader) firstTry(ctx context.Context) {
	select {
	case <-l.tried:
	case <-ctx.Done():
	}
}

func (l *leader) settled() { l.triedOnce.Do(func() { close(l.tried) }) }

// lockLocation is where the lock is taken: on PostgreSQL the URL with idle_session_timeout set
// to the lease, for the lock's own session only, so that the server ends the session of a
// leader that stopped answering and releases its lock.
func (l *leader) lockLocation() string {
	if !l.postgres {
		return l.location
	}
	u, err := url.Parse(l.location)
	if err != nil {
		return l.location // AcquireLock reports it
	}
	q := u.Query()
	q.Set("idle_session_timeout", strconv.FormatInt(l.opts.lease.Milliseconds(), 10))
	u.RawQuery = q.Encode()
	return u.String()
}

// margin is how much earlier than the server this process counts its lease out.
func (l *leader) margin() time.Duration { return min(time.Second, l.opts.lease/4) }

// acquire tries the lock once; on success it begins a new term and fences the store with it.
func (l *leader) acquire(ctx context.Context) error {
	sent := time.Now()
	lock, err := state.AcquireLock(ctx, l.lockLocation(), l.info, 0)
	if err != nil {
		return err
	}
	term, err := l.store.BeginTerm(ctx, l.holder, time.Now().UTC())
	if err != nil {
		_ = lock.Release()
		return fmt.Errorf("begin a leader term: %w", err)
	}
	l.store.Fence(term)
	l.mu.Lock()
	l.lock, l.term, l.reason, l.lost = lock, term, "", make(chan struct{})
	l.until = sent.Add(l.opts.lease - l.margin())
	l.mu.Unlock()
	return nil
}

// run tries the lock every retry until ctx ends; while it holds it, it keeps it alive and, when
// it is lost, goes back to trying.
func (l *leader) run(ctx context.Context) {
	defer l.settled()
	logged, lastHolder := false, ""
	for ctx.Err() == nil {
		err := l.acquire(ctx)
		if err == nil {
			l.settled()
			if logged {
				l.log.Info("took the state lock; this replica now runs the syncs", "term", l.currentTerm())
			} else {
				l.log.Info("leading: holds the state lock", "term", l.currentTerm())
			}
			logged = true
			l.hold(ctx)
			// A replica that has just lost its lock is the likelier one to be in trouble: the
			// others get a retry's head start.
			sleep(ctx, l.opts.retry)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		reason, holder := err.Error(), err.Error()
		var le *state.LockedError
		if errors.As(err, &le) {
			reason, holder = "another replica holds the state lock", "another replica"
			if le.HolderKnown {
				reason += ": " + le.Holder.String()
				// The holder's record names its current run: a new run is no news.
				holder = fmt.Sprintf("pid %d on host %s", le.Holder.PID, le.Holder.Host)
			}
		}
		l.mu.Lock()
		l.reason = reason
		l.mu.Unlock()
		l.settled()
		changed := holder != lastHolder
		lastHolder = holder
		if changed || !logged {
			what := "standby: not running syncs"
			if l.postgres {
				what = "follower: not running syncs; requests go to the leader"
			}
			l.log.Warn(what, "reason", reason, "retry_every", l.opts.retry.String())
			logged = true
		}
		sleep(ctx, l.opts.retry)
	}
}

// hold runs the keepalive of the held lock until the lock or the lease is lost or ctx ends, and
// then lets the lock go.
func (l *leader) hold(ctx context.Context) {
	t := time.NewTicker(l.opts.keepalive)
	defer t.Stop()
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			l.Release()
			return
		case <-lost:
			l.Release()
			return
		case <-t.C:
		}
		sent := time.Now()
		if !l.leading(sent) {
			l.lose("the lease ran out before a keepalive (the process was paused or starved)")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.keepalive)
		l.lockMu.Lock()
		err := l.heldLock().Check(cctx)
		l.lockMu.Unlock()
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			l.lose("the state lock was lost: " + err.Error())
		default:
			l.mu.Lock()
			if l.lost == lost {
				l.until = sent.Add(l.opts.lease - l.margin())
			}
			l.mu.Unlock()
		}
	}
}

func (l *leader) heldLock() *state.Lock {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lock
}

func (l *leader) currentTerm() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term
}

// leading reports whether this replica holds the lock and, on PostgreSQL, its lease at now.
func (l *leader) leading(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock == nil || l.lost == nil {
		return false
	}
	select {
	case <-l.lost:
		return false
	default:
	}
	return !l.postgres || now.Before(l.until)
}

// lose ends the current term (once): the runs' guards end, and hold lets the lock go.
func (l *leader) lose(why string) {
	l.mu.Lock()
	if l.lost == nil {
		l.mu.Unlock()
		return
	}
	select {
	case <-l.lost:
		l.mu.Unlock()
		return
	default:
	}
	close(l.lost)
	term := l.term
	l.reason = why
	l.mu.Unlock()
	l.log.Warn("lost the leadership; runs stop at the next request boundary", "term", term, "reason", why)
}

// Standby reports whether this replica does not lead now, and why.
func (l *leader) Standby() (bool, string) {
	if l.leading(time.Now()) {
		return false, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reason == "" {
		return true, "the lease ran out"
	}
	return true, l.reason
}

// SetRunID records the run in progress in the lock's holder record.
func (l *leader) SetRunID(id int64) {
	l.lockMu.Lock()
	defer l.lockMu.Unlock()
	if err := l.heldLock().SetRunID(id); err != nil {
		l.log.Debug("record the run in the lock", "err", err)
	}
}

// Release lets go of the lock, if held, and ends the term.
func (l *leader) Release() {
	l.lose("released")
	l.lockMu.Lock()
	defer l.lockMu.Unlock()
	l.mu.Lock()
	lock := l.lock
	l.lock, l.until = nil, time.Time{}
	l.mu.Unlock()
	if lock != nil {
		if err := lock.Release(); err != nil {
			l.log.Debug("release the state lock", "err", err)
		}
	}
}

// guard returns ctx for one run of this term: it ends when the term ends (the lock or lease is
// lost), and its Err reports the loss at once, at the next request boundary, even before the
// keepalive has noticed it (a leader that wakes up after a pause).
func (l *leader) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	inner, cancel := context.WithCancelCause(ctx)
	if lost == nil {
		cancel(errNotLeader)
		return inner, func() {}
	}
	go func() {
		select {
		case <-lost:
			cancel(errNotLeader)
		case <-inner.Done():
		}
	}()
	return &guarded{Context: inner, l: l, lost: lost, cancel: cancel}, func() { cancel(context.Canceled) }
}

// guarded is a run's context that checks the lease on every Err.
type guarded struct {
	context.Context
	l      *leader
	lost   chan struct{}
	cancel context.CancelCauseFunc
}

func (g *guarded) Err() error {
	if err := g.Context.Err(); err != nil {
		return err
	}
	select {
	case <-g.lost:
	default:
		if g.l.leading(time.Now()) {
			return nil
		}
		g.l.lose("the lease ran out (the process was paused or starved)")
	}
	g.cancel(errNotLeader)
	return g.Context.Err()
}

// leaderRunner runs a sync only while this replica leads, on the leader's guard.
type leaderRunner struct {
	r    reconcile.Runner
	lead *leader
}

func (lr leaderRunner) RunOnce(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Result, error) {
	gctx, cancel := lr.lead.guard(ctx)
	defer cancel()
	if err := gctx.Err(); err != nil {
		return nil, fmt.Errorf("run not started: %w", context.Cause(gctx))
	}
	return lr.r.RunOnce(gctx, opts)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// runLock takes the one-writer lock for one run at a time (`scimbridge lambda`).
type runLock interface {
	// Acquire takes the lock without waiting; an error wrapping state.ErrLocked means another
	// run holds it. The context it returns ends when the lock is lost.
	Acquire(ctx context.Context) (context.Context, func(), error)
	Close()
}

// newRunLock returns the lock of the configured state store for one run at a time: the leader
// lock with a new term for each run.
func newRunLock(_ context.Context, rt *app, command string, log *slog.Logger) (runLock, error) {
	return &onceLock{rt: rt, command: command, log: log}, nil
}

type onceLock struct {
	rt      *app
	command string
	log     *slog.Logger
}

func (o *onceLock) Acquire(ctx context.Context) (context.Context, func(), error) {
	l := newLeader(o.rt.stateLoc, o.rt.state, lockInfo(o.command), o.log, defaultLeaseOpts())
	if err := l.acquire(ctx); err != nil {
		return nil, nil, err
	}
	hctx, stopHold := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.hold(hctx) }()
	gctx, cancel := l.guard(ctx)
	return gctx, func() { cancel(); stopHold(); <-done; l.Release() }, nil
}

func (o *onceLock) Close() {}
