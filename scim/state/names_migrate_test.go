package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// oldObjects are what a store written before name_lower holds: more users than one batch of the
// fill (fillBatch) holds, groups, and a permission set, with names that mix cases and letters
// beyond ASCII.
func oldObjects(t testing.TB) []Object {
	t.Helper()
	var objs []Object
	for i := range fillBatch + 200 {
		id := fmt.Sprintf("u%05d", i)
		name := fmt.Sprintf("User%05d@Example.com", i)
		if i%3 == 0 {
			name = fmt.Sprintf("ÉLODIE%05d@example.com", i)
		}
		objs = append(objs, mustUser(t, "tu-"+id, scim.User{ExternalID: id, UserName: name, Active: true}, t0))
	}
	for j := range 20 {
		id := fmt.Sprintf("g%02d", j)
		objs = append(objs, mustGroup(t, "tg-"+id, scim.Group{ExternalID: id, DisplayName: fmt.Sprintf("Straße %02d", j)}, t0))
	}
	return append(objs, Object{Kind: KindPermissionSet, ExternalID: "Admins", TargetID: "arn:ps", Data: []byte(`{"userName":"User00001@Example.com"}`), Hash: "h", UpdatedAt: t0})
}

// checkOldNames checks that ObjectsByName finds the objects of oldObjects by their names, in
// other cases, after the migration.
func checkOldNames(t *testing.T, s Store, objs []Object) {
	t.Helper()
	ctx := context.Background()
	var userNames []string
	for _, o := range objs {
		if o.Kind == KindUser {
			u, err := o.User()
			must(t, err)
			userNames = append(userNames, strings.ToUpper(u.UserName))
		}
	}
	got, err := s.ObjectsByName(ctx, KindUser, userNames)
	must(t, err)
	if len(got) != len(userNames) {
		t.Errorf("ObjectsByName(every user's name) found %d users, want %d", len(got), len(userNames))
	}
	if got := checkByName(t, s, KindUser, []string{"élodie00003@EXAMPLE.COM", "user01100@example.com", "user00003@example.com"}); !slices.Equal(got, []string{"u00003", "u01100"}) {
		t.Errorf("ObjectsByName(users) found %q, want u00003 and u01100", got)
	}
	if got := checkByName(t, s, KindGroup, []string{"STRAßE 07", "straße 19"}); !slices.Equal(got, []string{"g07", "g19"}) {
		t.Errorf("ObjectsByName(groups) found %q, want g07 and g19", got)
	}
	if got, err := s.ObjectsByName(ctx, KindPermissionSet, []string{"user00001@example.com"}); err != nil || len(got) != 0 {
		t.Errorf("ObjectsByName(permission sets) = %v, %v; want none", got, err)
	}
	if n := unnamedRows(t, s); n != 0 {
		t.Errorf("after the migration, %d rows are marked as written by an older build, want none", n)
	}
}

// failFill makes the fill of migration version (in fills) fail after it has done its work, as
// a crash before the commit would, until the test ends.
func failFill[F any](t *testing.T, fills map[int]F, version int, wrap func(F) F) {
	real := fills[version]
	fills[version] = wrap(real)
	t.Cleanup(func() { fills[version] = real })
}

var errCrash = errors.New("crash before the commit")

// TestMigrateSQLiteNames opens a file of schema version 3 holding users and groups: migration 4
// names every row, batch by batch, so that ObjectsByName finds them. A first open whose
// migration fails after filling (a crash before its commit) leaves the file at version 3 and
// its rows as they were; the next open does the whole step.
func TestMigrateSQLiteNames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	must(t, err)
	for _, q := range []string{migrations[0], migrations[1], migrations[2], fmt.Sprintf("PRAGMA application_id = %d", applicationID), "PRAGMA user_version = 3"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	objs := oldObjects(t)
	tx, err := db.BeginTx(ctx, nil)
	must(t, err)
	for _, o := range objs {
		_, err := tx.ExecContext(ctx, "INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?)", string(o.Kind), o.ExternalID, o.TargetID, string(o.Data), o.Hash, formatTime(o.UpdatedAt))
		must(t, err)
	}
	must(t, tx.Commit())
	must(t, db.Close())

	failFill(t, migrationFills, 4, func(fill func(context.Context, *sql.Tx) error) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error { return errors.Join(fill(ctx, tx), errCrash) }
	})
	if s, err := Open(ctx, path); !errors.Is(err, errCrash) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with a failing migration = %v, want the crash", err)
	}
	db, err = sql.Open("sqlite", "file:"+path)
	must(t, err)
	var version, named int
	must(t, db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	must(t, db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info('objects') WHERE name = 'name_lower'").Scan(&named))
	must(t, db.Close())
	if version != 3 || named != 0 {
		t.Errorf("after a failed migration: schema version %d, %d name_lower columns; want 3 and none", version, named)
	}
	migrationFills[4] = sqliteFillNames
	s, err := Open(ctx, path)
	must(t, err)
	defer s.Close()
	must(t, s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	if version != SchemaVersion {
		t.Errorf("schema version: got %d, want %d", version, SchemaVersion)
	}
	must(t, s.IntegrityCheck(ctx))
	all, err := s.Export(ctx)
	must(t, err)
	want := &Dump{Objects: objs}
	want.sort()
	if diff := Diff(&Dump{Objects: all.Objects}, want); diff != nil {
		t.Errorf("objects after migration: %q", diff)
	}
	checkOldNames(t, s, objs)
}

// TestMigratePostgresNames is TestMigrateSQLiteNames for PostgreSQL's migration 3.
func TestMigratePostgresNames(t *testing.T) {
	ctx := context.Background()
	loc := pgtest.URL(t)
	conn, err := pgx.Connect(ctx, loc)
	must(t, err)
	defer conn.Close(ctx)
	must(t, migratePostgres(ctx, conn, "test", 2, discardLog{}))
	objs := oldObjects(t)
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"objects"}, []string{"kind", "external_id", "target_id", "data", "hash", "updated_at"},
		pgx.CopyFromSlice(len(objs), func(i int) ([]any, error) {
			o := objs[i]
			return []any{string(o.Kind), o.ExternalID, o.TargetID, string(o.Data), o.Hash, formatTime(o.UpdatedAt)}, nil
		}))
	must(t, err)

	failFill(t, pgMigrationFills, 3, func(fill func(context.Context, pgx.Tx) error) func(context.Context, pgx.Tx) error {
		return func(ctx context.Context, tx pgx.Tx) error { return errors.Join(fill(ctx, tx), errCrash) }
	})
	if s, err := OpenPostgres(ctx, loc); !errors.Is(err, errCrash) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("OpenPostgres with a failing migration = %v, want the crash", err)
	}
	var version int
	must(t, conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&version))
	if version != 2 {
		t.Errorf("schema version after a failed migration: got %d, want 2", version)
	}
	pgMigrationFills[3] = pgFillNames
	s := openStore(t, loc)
	must(t, conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&version))
	if version != PostgresSchemaVersion {
		t.Errorf("schema version: got %d, want %d", version, PostgresSchemaVersion)
	}
	checkOldNames(t, s, objs)
}
