package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/scimbridge/scimbridge/scim"
)

// nameFixture fills s with users and groups whose names mix cases and letters that
// strings.ToLower folds in ways SQL's lower() would not (É, ß, Turkish İ, Greek Σ), some folding
// to one name (stale state two owned objects share), groups named as users, and objects of other
// kinds whose data holds a userName. It returns the names it used.
func nameFixture(t testing.TB, s Store) []string {
	t.Helper()
	users := map[string]string{ // externalId: userName
		"u-alice":   "Alice@Example.COM",
		"u-elodie":  "ÉLODIE@example.com",
		"u-elodie2": "élodie2@example.com",
		"u-strasse": "straße@example.com",
		"u-STRASSE": "STRASSE@example.com",
		"u-irem":    "İrem@example.com",
		"u-irem2":   "irem@example.com",
		"u-sisyfos": "ΣΊΣΥΦΟΣ",
		"u-bob":     "Bob",
		"u-bob2":    "BOB", // the same name as u-bob once lower-cased
		"u-nul":     "nul\x00byte",
	}
	groups := map[string]string{ // externalId: displayName
		"g-admins": "Admins",
		"g-alice":  "alice@example.com", // a group named as a user
		"g-élite":  "ÉLITE",
	}
	var objs []Object
	var names []string
	for id, name := range users {
		objs = append(objs, mustUser(t, "tu-"+id, scim.User{ExternalID: id, UserName: name, DisplayName: "Admins", Active: true}, t0))
		names = append(names, name)
	}
	for id, name := range groups {
		objs = append(objs, mustGroup(t, "tg-"+id, scim.Group{ExternalID: id, DisplayName: name}, t0))
		names = append(names, name)
	}
	objs = append(objs, Object{Kind: KindPermissionSet, ExternalID: "Alice@Example.COM", TargetID: "arn:ps",
		Data: json.RawMessage(`{"userName":"Alice@Example.COM","displayName":"Admins"}`)})
	must(t, s.PutObjects(context.Background(), objs))
	slices.Sort(names)
	return names
}

// byName is ObjectsByName in Go: the objects of kind among objs whose decoded userName (users)
// or displayName (groups) equals one of names once both are lower-cased.
func byName(t testing.TB, objs []Object, kind Kind, names []string) []Object {
	t.Helper()
	set := map[string]bool{}
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	out := []Object{}
	for _, o := range objs {
		var name string
		switch kind {
		case KindUser:
			u, err := o.User()
			must(t, err)
			name = u.UserName
		case KindGroup:
			g, err := o.Group()
			must(t, err)
			name = g.DisplayName
		default:
			continue
		}
		if name != "" && !strings.ContainsRune(name, 0) && set[strings.ToLower(name)] {
			out = append(out, o)
		}
	}
	return out
}

// checkByName compares ObjectsByName(kind, names) with byName over Objects(kind), and returns
// the externalIds found.
func checkByName(t *testing.T, s Store, kind Kind, names []string) []string {
	t.Helper()
	ctx := context.Background()
	got, err := s.ObjectsByName(ctx, kind, names)
	if err != nil {
		t.Fatalf("ObjectsByName(%s, %q) = %v", kind, names, err)
	}
	all, err := s.Objects(ctx, kind)
	must(t, err)
	if diff := cmp.Diff(got, byName(t, all, kind, names)); diff != "" {
		t.Errorf("ObjectsByName(%s, %q) (-got +want):\n%s", kind, names, diff)
	}
	ids := []string{}
	for _, o := range got {
		ids = append(ids, o.ExternalID)
	}
	return ids
}

func TestObjectsByName(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		all := nameFixture(t, s)
		cases := []struct {
			name  string
			kind  Kind
			names []string
			want  []string // the externalIds found, in order
		}{
			{"nil", KindUser, nil, []string{}},
			{"unknown", KindUser, []string{"nobody", "alice", "Alice@Example"}, []string{}},
			{"exact", KindUser, []string{"Alice@Example.COM"}, []string{"u-alice"}},
			{"other case", KindUser, []string{"aLICE@example.com"}, []string{"u-alice"}},
			{"É folds to é", KindUser, []string{"élodie@EXAMPLE.com", "ÉLODIE2@example.com"}, []string{"u-elodie", "u-elodie2"}},
			// strings.ToLower keeps ß, and does not turn SS into ß.
			{"ß", KindUser, []string{"STRAßE@example.com"}, []string{"u-strasse"}},
			{"SS", KindUser, []string{"strasse@example.com"}, []string{"u-STRASSE"}},
			// strings.ToLower maps İ to a plain i (Unicode's simple mapping, not the Turkish one
			// nor the full one, i with a combining dot), so İrem and irem are one name.
			{"Turkish İ", KindUser, []string{"İREM@EXAMPLE.COM"}, []string{"u-irem", "u-irem2"}},
			{"I", KindUser, []string{"IREM@example.com"}, []string{"u-irem", "u-irem2"}},
			{"i with a combining dot", KindUser, []string{"i̇rem@example.com"}, []string{}},
			{"Σ", KindUser, []string{"σίσυφοσ"}, []string{"u-sisyfos"}},
			{"two holders", KindUser, []string{"bob"}, []string{"u-bob", "u-bob2"}},
			{"duplicates", KindUser, []string{"Bob", "BOB", "bob", "Alice@Example.COM", "alice@example.com"}, []string{"u-alice", "u-bob", "u-bob2"}},
			{"names no store holds", KindUser, []string{"", "nul\x00byte", "\xff", "Bob\xff"}, []string{}},
			{"a group named as a user", KindGroup, []string{"ALICE@example.com"}, []string{"g-alice"}},
			{"groups", KindGroup, []string{"admins", "élite", "Bob"}, []string{"g-admins", "g-élite"}},
			{"users are not found by displayName", KindUser, []string{"Admins"}, []string{}},
			{"other kinds have no name", KindPermissionSet, []string{"Alice@Example.COM", "Admins"}, []string{}},
		}
		for _, tc := range cases {
			if got := checkByName(t, s, tc.kind, tc.names); !slices.Equal(got, tc.want) {
				t.Errorf("%s: ObjectsByName(%s, %q) found %q, want %q", tc.name, tc.kind, tc.names, got, tc.want)
			}
		}
		for _, kind := range []Kind{KindUser, KindGroup} {
			checkByName(t, s, kind, all)
		}
		if _, err := s.ObjectsByName(ctx, Kind("no kind!"), []string{"bob"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("ObjectsByName(bad kind) = %v, want ErrInvalid", err)
		}

		// A rename is found under the new name only; a deleted object is gone.
		must(t, s.PutObjects(ctx, []Object{
			mustUser(t, "tu-u-alice", scim.User{ExternalID: "u-alice", UserName: "Alicia@example.com", Active: true}, t0),
			mustGroup(t, "tg-g-admins", scim.Group{ExternalID: "g-admins", DisplayName: "Operators"}, t0),
		}))
		must(t, s.DeleteObjects(ctx, KindUser, []string{"u-bob"}))
		for _, tc := range []struct {
			kind  Kind
			names []string
			want  []string
		}{
			{KindUser, []string{"alice@example.com"}, []string{}},
			{KindUser, []string{"ALICIA@example.com"}, []string{"u-alice"}},
			{KindUser, []string{"bob"}, []string{"u-bob2"}},
			{KindGroup, []string{"admins"}, []string{}},
			{KindGroup, []string{"operators", "alice@example.com"}, []string{"g-admins", "g-alice"}},
		} {
			if got := checkByName(t, s, tc.kind, tc.names); !slices.Equal(got, tc.want) {
				t.Errorf("after writes: ObjectsByName(%s, %q) found %q, want %q", tc.kind, tc.names, got, tc.want)
			}
		}
	})
}

// TestObjectsByNameOfManyNames asks for 40,000 names in one call, past SQLite's limit of 32,766
// bound parameters: the list is one parameter.
func TestObjectsByNameOfManyNames(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		users, _ := sliceFixture(t, s, 300, 10)
		var names []string
		for _, id := range users {
			names = append(names, strings.ToUpper(id+"@example.com"))
		}
		for i := len(names); i < 40_000; i++ {
			names = append(names, fmt.Sprintf("Absent%05d@example.com", i))
		}
		got, err := s.ObjectsByName(ctx, KindUser, names)
		if err != nil {
			t.Fatalf("ObjectsByName(%d names) = %v", len(names), err)
		}
		want, err := s.Objects(ctx, KindUser)
		must(t, err)
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("ObjectsByName(%d names) (-got +want):\n%s", len(names), diff)
		}
	})
}

// TestImportNamesObjects imports a dump, which does not carry the lower-cased names: the
// destination computes them, so ObjectsByName finds the imported objects.
func TestImportNamesObjects(t *testing.T) {
	ctx := context.Background()
	src := openStore(t, t.TempDir()+"/src.db")
	nameFixture(t, src)
	d, err := src.Export(ctx)
	must(t, err)
	eachStore(t, func(t *testing.T, s Store) {
		must(t, s.Import(ctx, d, false))
		if got := checkByName(t, s, KindUser, []string{"BOB", "élodie@example.com"}); !slices.Equal(got, []string{"u-bob", "u-bob2", "u-elodie"}) {
			t.Errorf("after import: found %q", got)
		}
		if got := checkByName(t, s, KindGroup, []string{"Élite"}); !slices.Equal(got, []string{"g-élite"}) {
			t.Errorf("after import: found %q", got)
		}
	})
}

// namePlan returns the query plan of ObjectsByName(users, names), one line per plan node (see
// slicePlans).
func namePlan(t testing.TB, s Store, names []string, noSeqScan bool) string {
	t.Helper()
	ctx := context.Background()
	keys := lookupNames(names)
	var lines []string
	switch s := s.(type) {
	case *SQLite:
		list, err := json.Marshal(keys)
		must(t, err)
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+sqliteObjectsByName, string(KindUser), string(list))
		must(t, err)
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			must(t, rows.Scan(&id, &parent, &unused, &detail))
			lines = append(lines, detail)
		}
		must(t, rows.Err())
	case *Postgres:
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if noSeqScan {
				if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
					return err
				}
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+pgObjectsByName, string(KindUser), keys)
			if err != nil {
				return err
			}
			lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		must(t, err)
	default:
		t.Fatalf("no plans for a %T", s)
	}
	return strings.Join(lines, "\n")
}

// checkNamePlan fails unless the plan looks the names up in the index objects_by_name, on both
// its columns, reads the rows an older build wrote from the partial index objects_unnamed, and
// scans no table.
func checkNamePlan(t testing.TB, s Store, plan string) {
	t.Helper()
	want := []string{"SEARCH objects USING INDEX objects_by_name (kind=? AND name_lower=?)", "SEARCH objects USING INDEX objects_unnamed (kind=?)"}
	if _, ok := s.(*Postgres); ok {
		want = []string{"objects_by_name", "Index Cond: ((kind = 'user'::text) AND (name_lower = ANY ", "objects_unnamed", "Index Cond: (kind = 'user'::text)"}
	}
	ok := true
	for _, w := range want {
		ok = ok && strings.Contains(plan, w)
	}
	for _, scan := range []string{"SCAN objects", "Seq Scan", "objects_pkey"} {
		ok = ok && !strings.Contains(plan, scan)
	}
	if !ok {
		t.Errorf("ObjectsByName plan:\n%s\nwant all of %q and no full scan", plan, want)
	}
}

// TestObjectsByNamePlanUsesTheIndex checks the plan of ObjectsByName: lookups in objects_by_name,
// never a scan of every object. PostgreSQL's tables are analyzed first, as autovacuum does.
func TestObjectsByNamePlanUsesTheIndex(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		users, _ := sliceFixture(t, s, 100, 10)
		if pg, ok := s.(*Postgres); ok {
			if _, err := pg.pool.Exec(context.Background(), "ANALYZE objects"); err != nil {
				t.Fatal(err)
			}
		}
		names := []string{users[3] + "@EXAMPLE.com", users[50] + "@example.com", "nobody"}
		checkNamePlan(t, s, namePlan(t, s, names, true))
	})
}

// writeAsOlderBuild upserts objs as a build from before name_lower writes them (a replica of an
// older version during a rolling upgrade): the statement of its PutObjects, which leaves
// name_lower and name_hash alone.
func writeAsOlderBuild(t *testing.T, s Store, objs ...Object) {
	t.Helper()
	ctx := context.Background()
	const q = `INSERT INTO objects (kind, external_id, target_id, data, hash, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (kind, external_id) DO UPDATE SET
	target_id = excluded.target_id, data = excluded.data, hash = excluded.hash, updated_at = excluded.updated_at`
	for _, o := range objs {
		args := []any{string(o.Kind), o.ExternalID, o.TargetID, string(o.Data), o.Hash, formatTime(o.UpdatedAt)}
		var err error
		switch s := s.(type) {
		case *SQLite:
			_, err = s.w.ExecContext(ctx, q, args...)
		case *Postgres:
			_, err = s.pool.Exec(ctx, q, args...)
		}
		must(t, err)
	}
}

// unnamedRows counts the objects whose name_hash is not their hash: those an older build wrote.
func unnamedRows(t *testing.T, s Store) int {
	t.Helper()
	ctx := context.Background()
	const q = "SELECT count(*) FROM objects WHERE name_hash <> hash"
	var n int
	switch s := s.(type) {
	case *SQLite:
		must(t, s.r.QueryRowContext(ctx, q).Scan(&n))
	case *Postgres:
		must(t, s.pool.QueryRow(ctx, q).Scan(&n))
	}
	return n
}

// TestObjectsByNameAfterAnOlderBuildWrote: rows an older build wrote after the migration (a new
// user, renames), whose name_lower is missing or stale, are found by the names in their data
// and not by their stale names; the next write of this build names them again.
func TestObjectsByNameAfterAnOlderBuildWrote(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		user := func(id, name string) Object {
			return mustUser(t, "tu-"+id, scim.User{ExternalID: id, UserName: name, Active: true}, t0)
		}
		must(t, s.PutObjects(ctx, []Object{user("u-a", "Ann"), user("u-b", "Ben"), user("u-d", "Dora")}))
		renamed := []Object{user("u-a", "Anna"), user("u-b", "ANN"), user("u-c", "Cleo")}
		writeAsOlderBuild(t, s, renamed...)
		if n := unnamedRows(t, s); n != 3 {
			t.Errorf("rows an older build wrote: got %d, want 3", n)
		}
		check := func(when string) {
			t.Helper()
			for _, tc := range []struct {
				names []string
				want  []string
			}{
				{[]string{"ann"}, []string{"u-b"}},
				{[]string{"Anna", "CLEO"}, []string{"u-a", "u-c"}},
				{[]string{"ben"}, []string{}},
				{[]string{"dora", "ann", "ann"}, []string{"u-b", "u-d"}},
				{[]string{"nobody"}, []string{}},
			} {
				if got := checkByName(t, s, KindUser, tc.names); !slices.Equal(got, tc.want) {
					t.Errorf("%s: ObjectsByName(%q) found %q, want %q", when, tc.names, got, tc.want)
				}
			}
		}
		check("after an older build wrote")
		must(t, s.PutObjects(ctx, renamed))
		if n := unnamedRows(t, s); n != 0 {
			t.Errorf("rows an older build wrote, after this build wrote them again: got %d, want 0", n)
		}
		check("after this build wrote them again")
	})
}
