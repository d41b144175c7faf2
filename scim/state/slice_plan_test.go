package state

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// slicePlans returns the query plans of the three slice reads (ObjectsByID of users, MembersOf,
// GroupsOf) of ids, by method name, one line per plan node: EXPLAIN QUERY PLAN in SQLite,
// EXPLAIN in PostgreSQL. With noSeqScan, PostgreSQL is told to avoid sequential scans (as a
// small table would otherwise be scanned), which shows whether an index can serve the query.
func slicePlans(t testing.TB, s Store, ids []string, noSeqScan bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	switch s := s.(type) {
	case *SQLite:
		list, err := json.Marshal(ids)
		if err != nil {
			t.Fatal(err)
		}
		for name, q := range map[string]struct {
			query string
			args  []any
		}{
			"ObjectsByID": {sqliteObjectsByID, []any{string(KindUser), string(list)}},
			"MembersOf":   {sqliteMembersOf, []any{string(list)}},
			"GroupsOf":    {sqliteGroupsOf, []any{string(list)}},
		} {
			rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.query, q.args...)
			if err != nil {
				t.Fatalf("explain %s: %v", name, err)
			}
			var lines []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				lines = append(lines, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			out[name] = strings.Join(lines, "\n")
		}
	case *Postgres:
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if noSeqScan {
				if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
					return err
				}
			}
			for name, q := range map[string]struct {
				query string
				args  []any
			}{
				"ObjectsByID": {pgObjectsByID, []any{string(KindUser), ids}},
				"MembersOf":   {pgMembersOf, []any{ids}},
				"GroupsOf":    {pgGroupsOf, []any{ids}},
			} {
				rows, err := tx.Query(ctx, "EXPLAIN "+q.query, q.args...)
				if err != nil {
					return err
				}
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				out[name] = strings.Join(lines, "\n")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("explain: %v", err)
		}
	default:
		t.Fatalf("no plans for a %T", s)
	}
	return out
}

// checkSlicePlans fails unless every slice read looks its ids up in the primary key or the
// index of its table (members_by_user for GroupsOf), all of the key the ids fill, and none scans a
// whole table (or, in ObjectsByID, every object of the kind).
func checkSlicePlans(t testing.TB, s Store, plans map[string]string) {
	t.Helper()
	want := map[string][]string{ // all of these in the plan
		"ObjectsByID": {"SEARCH objects USING PRIMARY KEY (kind=? AND external_id=?)"},
		"MembersOf":   {"SEARCH members USING PRIMARY KEY (group_external_id=?)"},
		"GroupsOf":    {"SEARCH members USING COVERING INDEX members_by_user (user_external_id=?)"},
	}
	if _, ok := s.(*Postgres); ok {
		want = map[string][]string{
			"ObjectsByID": {"objects_pkey", "Index Cond: ((kind = 'user'::text) AND (external_id = ANY "},
			"MembersOf":   {"members_pkey", "Index Cond: (group_external_id = ANY "},
			"GroupsOf":    {"members_by_user", "Index Cond: (user_external_id = ANY "},
		}
	}
	for name, plan := range plans {
		ok := len(want[name]) > 0
		for _, w := range want[name] {
			ok = ok && strings.Contains(plan, w)
		}
		for _, scan := range []string{"SCAN objects", "SCAN members", "Seq Scan"} {
			ok = ok && !strings.Contains(plan, scan)
		}
		if !ok {
			t.Errorf("%s plan:\n%s\nwant all of %q and no full scan", name, plan, want[name])
		}
	}
}

// TestSlicePlansUseTheKeys checks the plans of the slice reads: lookups by key, never a scan of
// a whole table. PostgreSQL's tables are analyzed first, as autovacuum does, so that the planner
// knows their size.
func TestSlicePlansUseTheKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		users, groups := sliceFixture(t, s, 100, 10)
		if pg, ok := s.(*Postgres); ok {
			if _, err := pg.pool.Exec(context.Background(), "ANALYZE objects, members"); err != nil {
				t.Fatal(err)
			}
		}
		plans := slicePlans(t, s, append(users[:5], groups[:5]...), true)
		checkSlicePlans(t, s, plans)
	})
}
