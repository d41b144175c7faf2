package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The results a finished run may have.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
	ResultBlocked = "blocked"
	ResultPartial = "partial"
)

// InterruptedError is the error recorded on a run that never finished (its process died); such
// a run is marked failed when the next run starts.
const InterruptedError = "interrupted: the process ended before the run finished"

// maxRunErrors caps the error messages kept per run; the rest are counted in one last line.
const maxRunErrors = 1000

// Counts are the numbers of changes a run made (or, in a dry run, would make).
type Counts struct {
	Created       int `json:"created"`
	Updated       int `json:"updated"`
	Deleted       int `json:"deleted"`
	Disabled      int `json:"disabled"`
	Adopted       int `json:"adopted"`
	MemberAdds    int `json:"memberAdds"`
	MemberRemoves int `json:"memberRemoves"`
	Failed        int `json:"failed"`
	Skipped       int `json:"skipped"`
	// Access counts the access section's changes; zero (and left out of the stored JSON) in a
	// run without one.
	Access AccessCounts `json:"access,omitzero"`
}

// AccessCounts are the access changes a run made (or, in a dry run, would make). Failed is also
// in the run's Counts.Failed, which counts every failed record.
type AccessCounts struct {
	AssignmentsCreated        int `json:"assignmentsCreated,omitempty"`
	AssignmentsDeleted        int `json:"assignmentsDeleted,omitempty"`
	PermissionSetsCreated     int `json:"permissionSetsCreated,omitempty"`
	PermissionSetsUpdated     int `json:"permissionSetsUpdated,omitempty"`
	PermissionSetsProvisioned int `json:"permissionSetsProvisioned,omitempty"`
	PermissionSetsDeleted     int `json:"permissionSetsDeleted,omitempty"`
	Failed                    int `json:"failed,omitempty"`
}

// Run is one run in the history. A run that has not finished has a zero Ended and an empty
// Result.
type Run struct {
	ID      int64
	Trigger string
	DryRun  bool
	Started time.Time
	Ended   time.Time
	Result  string
	Counts  Counts
	Errors  []string
	Plan    string
}

// Meta returns the value stored under key, and whether there is one.
func (s *SQLite) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.r.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("state: read meta %q: %w", key, err)
	}
	return v, true, nil
}

// SetMeta stores value under key, replacing any previous value.
func (s *SQLite) SetMeta(ctx context.Context, key, value string) error {
	if key == "" {
		return fmt.Errorf("state: set meta: empty key: %w", ErrInvalid)
	}
	if err := errors.Join(checkText("key", key), checkText("value", value)); err != nil {
		return fmt.Errorf("state: set meta: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: set meta %q: %w", key, err)
	}
	return nil
}

// DeleteMeta removes key; a missing key is not an error.
func (s *SQLite) DeleteMeta(ctx context.Context, key string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM meta WHERE key = ?", key)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: delete meta %q: %w", key, err)
	}
	return nil
}

// StartRun records the start of a run and returns its id. In the same transaction it marks any
// run still open (left behind by a crash) as failed with InterruptedError, ended at now, and
// prunes the history to the newest runs (WithKeepRuns).
func (s *SQLite) StartRun(ctx context.Context, trigger string, dryRun bool, now time.Time) (int64, error) {
	if trigger == "" {
		return 0, fmt.Errorf("state: start run: empty trigger: %w", ErrInvalid)
	}
	if err := checkText("trigger", trigger); err != nil {
		return 0, fmt.Errorf("state: start run: %w", err)
	}
	interrupted, _ := json.Marshal([]string{InterruptedError})
	var id int64
	var closed, pruned int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE runs SET ended_at = ?, result = ?, errors = ? WHERE ended_at IS NULL",
			formatTime(now), ResultFailed, string(interrupted))
		if err != nil {
			return fmt.Errorf("close interrupted runs: %w", err)
		}
		closed, _ = res.RowsAffected()
		res, err = tx.ExecContext(ctx, "INSERT INTO runs (trigger, dry_run, started_at) VALUES (?, ?, ?)",
			trigger, dryRun, formatTime(now))
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		res, err = tx.ExecContext(ctx, "DELETE FROM runs WHERE id <= ?", id-int64(s.keepRuns))
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		pruned, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("state: start %s run: %w", trigger, err)
	}
	if closed > 0 {
		s.log.Warn("earlier runs never finished; marked failed", "runs", closed, "run_id", id)
	}
	if pruned > 0 {
		s.log.Debug("pruned run history", "runs", pruned, "run_id", id)
	}
	return id, nil
}

// FinishRun records the end of run id: its result (ResultSuccess, ResultFailed, ResultBlocked
// or ResultPartial), counts, error messages (the first 1000 are kept) and plan summary. It
// overwrites a result recorded earlier, including an "interrupted" mark.
func (s *SQLite) FinishRun(ctx context.Context, id int64, result string, counts Counts, errs []string, plan string, now time.Time) error {
	c, e, err := finishArgs(id, result, counts, errs)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE runs SET ended_at = ?, result = ?, counts = ?, errors = ?, plan = ? WHERE id = ?",
			formatTime(now), result, c, e, cleanText(plan), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrRunNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: finish run %d: %w", id, err)
	}
	return nil
}

// finishArgs checks a run's result and encodes its counts and errors (the first maxRunErrors
// kept, cleaned with cleanText) for FinishRun.
func finishArgs(id int64, result string, counts Counts, errs []string) (c, e string, err error) {
	switch result {
	case ResultSuccess, ResultFailed, ResultBlocked, ResultPartial:
	default:
		return "", "", fmt.Errorf("state: finish run %d: result %q: %w", id, result, ErrInvalid)
	}
	if len(errs) > maxRunErrors {
		more := len(errs) - maxRunErrors
		errs = append(errs[:maxRunErrors:maxRunErrors], fmt.Sprintf("... and %d more errors", more))
	}
	clean := make([]string, len(errs))
	for i, e := range errs {
		clean[i] = cleanText(e)
	}
	cb, err := json.Marshal(counts)
	if err != nil {
		return "", "", fmt.Errorf("state: finish run %d: encode counts: %w", id, err)
	}
	eb, err := json.Marshal(clean)
	if err != nil {
		return "", "", fmt.Errorf("state: finish run %d: encode errors: %w", id, err)
	}
	return string(cb), string(eb), nil
}

// cleanText makes free text (a plan, an error message quoting a source record) storable in both
// stores: PostgreSQL's text holds neither NUL bytes nor invalid UTF-8.
func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

const runColumns = "id, trigger, dry_run, started_at, ended_at, result, counts, errors, plan"

// Runs returns up to limit runs, newest first; limit < 1 returns all that are kept.
func (s *SQLite) Runs(ctx context.Context, limit int) ([]Run, error) {
	if limit < 1 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+runColumns+" FROM runs ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("state: list runs: %w", err)
	}
	defer rows.Close()
	out, err := appendRows[Run](nil, rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("state: list runs: %w", err)
	}
	return out, nil
}

// GetRun returns run id, or an error wrapping ErrRunNotFound.
func (s *SQLite) GetRun(ctx context.Context, id int64) (Run, error) {
	return readRun(s.r.QueryRowContext(ctx, "SELECT "+runColumns+" FROM runs WHERE id = ?", id), id)
}

// LastSuccess returns when the newest successful run that was not a dry run ended.
func (s *SQLite) LastSuccess(ctx context.Context) (time.Time, bool, error) {
	return readLastSuccess(s.r.QueryRowContext(ctx,
		"SELECT ended_at FROM runs WHERE result = ? AND dry_run = 0 AND ended_at IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT 1",
		ResultSuccess).Scan)
}

func scanRun(row rowScanner) (Run, error) {
	var r Run
	var started string
	var ended sql.NullString
	var counts, errs string
	if err := row.Scan(&r.ID, &r.Trigger, &r.DryRun, &started, &ended, &r.Result, &counts, &errs, &r.Plan); err != nil {
		return Run{}, err
	}
	var err error
	if r.Started, err = parseTime(started); err != nil {
		return Run{}, fmt.Errorf("run %d: %w", r.ID, err)
	}
	if ended.Valid {
		if r.Ended, err = parseTime(ended.String); err != nil {
			return Run{}, fmt.Errorf("run %d: %w", r.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
		return Run{}, fmt.Errorf("run %d: decode counts: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(errs), &r.Errors); err != nil {
		return Run{}, fmt.Errorf("run %d: decode errors: %w", r.ID, err)
	}
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	return r, nil
}
