package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrFenced reports a write refused because the leader term moved on since the store was fenced
// with its term: another replica became leader. The error is a *FencedError.
var ErrFenced = errors.New("fenced: another replica has become the leader")

// FencedError is a write refused by the fence: the store was fenced with Term and the leader
// term is now Current, begun by Holder.
type FencedError struct {
	Term, Current int64
	Holder        string
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("fenced: this process leads term %d but the leader term is now %d (%s): another replica has become the leader; nothing was written",
		e.Term, e.Current, e.Holder)
}

// Is makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// Term is the leader term recorded in the store: its number (0 before the first BeginTerm), who
// began it and when.
type Term struct {
	Term       int64
	Holder     string
	AcquiredAt time.Time
}

// fence holds the term a store was fenced with (0: not fenced).
type fence struct{ v atomic.Int64 }

func (f *fence) term() int64    { return f.v.Load() }
func (f *fence) set(term int64) { f.v.Store(term) }

// Fence makes every later write of s check, in its transaction, that the leader term is still
// term, or fail with ErrFenced; Fence(0) turns the check off.
func (s *SQLite) Fence(term int64) { s.fence.set(term) }

// BeginTerm starts a new leader term: it increments the term, records holder and now, and
// returns the new term. Call Fence with it to make the store refuse writes once another term
// begins.
func (s *SQLite) BeginTerm(ctx context.Context, holder string, now time.Time) (int64, error) {
	if holder == "" {
		return 0, fmt.Errorf("state: begin leader term: empty holder: %w", ErrInvalid)
	}
	var term int64
	// Not s.write: beginning a term is what a fenced store must still be able to do.
	tx, err := s.w.BeginTx(ctx, nil)
	if err == nil {
		err = tx.QueryRowContext(ctx, "UPDATE leader SET term = term + 1, holder = ?, acquired_at = ? WHERE id = 1 RETURNING term",
			holder, formatTime(now)).Scan(&term)
		if err == nil {
			err = tx.Commit()
		} else {
			err = errors.Join(err, rollback(tx))
		}
	}
	if err != nil {
		return 0, fmt.Errorf("state: begin leader term for %s: %w", holder, err)
	}
	s.log.Info("began leader term", "term", term, "holder", holder)
	return term, nil
}

// Leader returns the current leader term.
func (s *SQLite) Leader(ctx context.Context) (Term, error) {
	var t Term
	var at string
	err := s.r.QueryRowContext(ctx, "SELECT term, holder, acquired_at FROM leader WHERE id = 1").Scan(&t.Term, &t.Holder, &at)
	if err == nil && at != "" {
		t.AcquiredAt, err = parseTime(at)
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("the leader row is missing: %w", ErrCorrupt)
	}
	if err != nil {
		return Term{}, fmt.Errorf("state: read leader term: %w", err)
	}
	return t, nil
}
