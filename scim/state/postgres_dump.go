package state

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Export reads everything the store holds, in one read-only snapshot (REPEATABLE READ).
func (s *Postgres) Export(ctx context.Context) (*Dump, error) {
	d := &Dump{Meta: map[string]string{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return d.readTables(func(query string, add func(rowScanner) error) error {
			rows, err := tx.Query(ctx, query)
			if err != nil {
				return err
			}
			defer rows.Close()
			return eachRow(rows, add)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("state: export %s: %w", s.loc, err)
	}
	d.sort()
	return d, nil
}

// Import writes d into the store in one transaction (see Store.Import), with COPY. It is fenced
// like every write.
func (s *Postgres) Import(ctx context.Context, d *Dump, replace bool) error {
	tables := []string{"members", "objects", "pending", "unowned", "meta", "runs"}
	err := s.write(ctx, func(tx pgx.Tx) error {
		if !replace {
			for _, t := range tables {
				var n int64
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return fmt.Errorf("%w: %s holds %d rows", ErrNotEmpty, t, n)
				}
			}
		}
		if _, err := tx.Exec(ctx, "TRUNCATE members, objects, pending, unowned, meta, runs"); err != nil {
			return err
		}
		cp := func(table string, cols []string, n int, row func(i int) []any) error {
			if n == 0 {
				return nil
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
			if err != nil {
				return fmt.Errorf("copy %s: %w", table, err)
			}
			return nil
		}
		// name_lower is derived from the data, so a dump does not carry it: it is computed here.
		err := cp("objects", []string{"kind", "external_id", "target_id", "data", "hash", "updated_at", "name_lower", "name_hash"}, len(d.Objects), func(i int) []any {
			o := d.Objects[i]
			return []any{string(o.Kind), o.ExternalID, o.TargetID, string(o.Data), o.Hash, formatTime(o.UpdatedAt), nameLower(o.Kind, o.Data), o.Hash}
		})
		if err == nil {
			err = cp("pending", []string{"kind", "external_id", "created_at"}, len(d.Pending), func(i int) []any {
				p := d.Pending[i]
				return []any{string(p.Kind), p.ExternalID, formatOptionalTime(p.At)}
			})
		}
		if err == nil {
			err = cp("members", []string{"group_external_id", "user_external_id"}, len(d.Members), func(i int) []any {
				return []any{d.Members[i].Group, d.Members[i].User}
			})
		}
		if err == nil {
			keys := slices.Sorted(maps.Keys(d.Meta))
			err = cp("meta", []string{"key", "value"}, len(keys), func(i int) []any { return []any{keys[i], d.Meta[keys[i]]} })
		}
		if err == nil {
			err = cp("unowned", []string{"kind", "target_id", "external_id", "name"}, len(d.Unowned), func(i int) []any {
				u := d.Unowned[i]
				return []any{string(u.Kind), u.TargetID, u.ExternalID, u.Name}
			})
		}
		if err == nil {
			err = cp("runs", []string{"id", "trigger", "dry_run", "started_at", "ended_at", "result", "counts", "errors", "plan"}, len(d.Runs),
				func(i int) []any { return runArgs(d.Runs[i]) })
		}
		if err == nil && len(d.Runs) > 0 {
			// The next run gets the next id, as SQLite's AUTOINCREMENT gives it.
			_, err = tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("state: import %d rows into %s: %w", d.Count(), s.loc, err)
	}
	// Statistics now, not when autovacuum gets to it: without them the planner reads a slice of
	// 100 ids or more (ObjectsByID, MembersOf, ...) by a full scan. A failure costs only that.
	if _, err := s.pool.Exec(ctx, "ANALYZE objects, members"); err != nil {
		s.log.Warn("analyze after import", "err", err)
	}
	return nil
}
