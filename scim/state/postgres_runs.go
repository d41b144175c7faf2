package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Meta returns the value stored under key, and whether there is one.
func (s *Postgres) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("state: read meta %q: %w", key, err)
	}
	return v, true, nil
}

// SetMeta stores value under key, replacing any previous value.
func (s *Postgres) SetMeta(ctx context.Context, key, value string) error {
	if key == "" {
		return fmt.Errorf("state: set meta: empty key: %w", ErrInvalid)
	}
	if err := errors.Join(checkText("key", key), checkText("value", value)); err != nil {
		return fmt.Errorf("state: set meta: %w", err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: set meta %q: %w", key, err)
	}
	return nil
}

// DeleteMeta removes key; a missing key is not an error.
func (s *Postgres) DeleteMeta(ctx context.Context, key string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM meta WHERE key = $1", key)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: delete meta %q: %w", key, err)
	}
	return nil
}

// StartRun records the start of a run and returns its id, closing runs left open and pruning the
// history (see SQLite.StartRun).
func (s *Postgres) StartRun(ctx context.Context, trigger string, dryRun bool, now time.Time) (int64, error) {
	if trigger == "" {
		return 0, fmt.Errorf("state: start run: empty trigger: %w", ErrInvalid)
	}
	if err := checkText("trigger", trigger); err != nil {
		return 0, fmt.Errorf("state: start run: %w", err)
	}
	interrupted, _ := json.Marshal([]string{InterruptedError})
	var id, closed, pruned int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE runs SET ended_at = $1, result = $2, errors = $3 WHERE ended_at IS NULL",
			formatTime(now), ResultFailed, string(interrupted))
		if err != nil {
			return fmt.Errorf("close interrupted runs: %w", err)
		}
		closed = tag.RowsAffected()
		if err := tx.QueryRow(ctx, "INSERT INTO runs (trigger, dry_run, started_at) VALUES ($1, $2, $3) RETURNING id",
			trigger, dryRun, formatTime(now)).Scan(&id); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		tag, err = tx.Exec(ctx, "DELETE FROM runs WHERE id <= $1", id-int64(s.keepRuns))
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		pruned = tag.RowsAffected()
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

// FinishRun records the end of run id (see SQLite.FinishRun).
func (s *Postgres) FinishRun(ctx context.Context, id int64, result string, counts Counts, errs []string, plan string, now time.Time) error {
	c, e, err := finishArgs(id, result, counts, errs)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE runs SET ended_at = $1, result = $2, counts = $3, errors = $4, plan = $5 WHERE id = $6",
			formatTime(now), result, c, e, cleanText(plan), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrRunNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: finish run %d: %w", id, err)
	}
	return nil
}

// Runs returns up to limit runs, newest first; limit < 1 returns all that are kept.
func (s *Postgres) Runs(ctx context.Context, limit int) ([]Run, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := s.pool.Query(ctx, "SELECT "+runColumns+" FROM runs ORDER BY id DESC LIMIT $1", lim)
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
func (s *Postgres) GetRun(ctx context.Context, id int64) (Run, error) {
	return readRun(s.pool.QueryRow(ctx, "SELECT "+runColumns+" FROM runs WHERE id = $1", id), id)
}

// LastSuccess returns when the newest successful run that was not a dry run ended.
func (s *Postgres) LastSuccess(ctx context.Context) (time.Time, bool, error) {
	return readLastSuccess(s.pool.QueryRow(ctx,
		"SELECT ended_at FROM runs WHERE result = $1 AND NOT dry_run AND ended_at IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT 1",
		ResultSuccess).Scan)
}

// ReplaceUnowned records objs as the whole set of unowned objects the target holds.
func (s *Postgres) ReplaceUnowned(ctx context.Context, objs []Unowned) error {
	if err := checkUnowned(objs); err != nil {
		return fmt.Errorf("state: record %d unowned objects: %w", len(objs), err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM unowned"); err != nil {
			return err
		}
		return pgInsertUnowned(ctx, tx, objs)
	})
	if err != nil {
		return fmt.Errorf("state: record %d unowned objects: %w", len(objs), err)
	}
	return nil
}

// AddUnowned records objs beside the unowned objects already recorded.
func (s *Postgres) AddUnowned(ctx context.Context, objs []Unowned) error {
	if err := checkUnowned(objs); err != nil {
		return fmt.Errorf("state: add %d unowned objects: %w", len(objs), err)
	}
	if err := s.write(ctx, func(tx pgx.Tx) error { return pgInsertUnowned(ctx, tx, objs) }); err != nil {
		return fmt.Errorf("state: add %d unowned objects: %w", len(objs), err)
	}
	return nil
}

// ListUnowned returns the unowned objects recorded, in no particular order.
func (s *Postgres) ListUnowned(ctx context.Context) ([]Unowned, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+unownedColumns+" FROM unowned")
	if err != nil {
		return nil, fmt.Errorf("state: list unowned objects: %w", err)
	}
	defer rows.Close()
	out, err := appendRows[Unowned](nil, rows, scanUnowned)
	if err != nil {
		return nil, fmt.Errorf("state: list unowned objects: %w", err)
	}
	return out, nil
}

// pgInsertUnowned upserts objs by (Kind, TargetID); of duplicates in objs the last one wins.
func pgInsertUnowned(ctx context.Context, tx pgx.Tx, objs []Unowned) error {
	if len(objs) == 0 {
		return nil
	}
	last := map[[2]string]Unowned{}
	for _, o := range objs {
		last[[2]string{string(o.Kind), o.TargetID}] = o
	}
	keys := slices.SortedFunc(maps.Keys(last), func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return strings.Compare(a[1], b[1])
	})
	kinds, tids, eids, names := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		o := last[k]
		kinds[i], tids[i], eids[i], names[i] = string(o.Kind), o.TargetID, o.ExternalID, o.Name
	}
	_, err := tx.Exec(ctx, `INSERT INTO unowned (kind, target_id, external_id, name)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (kind, target_id) DO UPDATE SET external_id = excluded.external_id, name = excluded.name`, kinds, tids, eids, names)
	return err
}
