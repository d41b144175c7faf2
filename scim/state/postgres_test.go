package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// fill writes a little of everything into s, the run history included (one run left open).
func fill(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	must(t, s.PutObjects(ctx, []Object{
		mustUser(t, "tu1", scim.User{ExternalID: "u1", UserName: "ann", Active: true}, t0),
		mustUser(t, "tu2", scim.User{ExternalID: "u2", UserName: "bob"}, t0.Add(time.Nanosecond)),
		mustGroup(t, "tg1", scim.Group{ExternalID: "g1", DisplayName: "Finance"}, t0),
		mustGroup(t, "tg2", scim.Group{ExternalID: "g2", DisplayName: "Ops"}, t0),
		{Kind: "permissionSet", ExternalID: "ps-admin", TargetID: "arn:aws:sso:::permissionSet/x", Data: json.RawMessage(`{"name":"Admin"}`), UpdatedAt: t0},
	}))
	must(t, s.AddMemberships(ctx, []Membership{{"g1", "u1"}, {"g1", "u2"}, {"g2", "u2"}}))
	must(t, s.RecordPending(ctx, KindUser, []string{"u3"}, testNow))
	must(t, s.RecordPending(ctx, "accountAssignment", []string{"a1"}, testNow))
	must(t, s.SetMeta(ctx, "feed.ldap.cursor", "usn:12345"))
	must(t, s.ReplaceUnowned(ctx, []Unowned{{Kind: KindUser, TargetID: "t9", ExternalID: "x9", Name: "manual@example.com"}}))
	id, err := s.StartRun(ctx, "cli", false, t0)
	must(t, err)
	must(t, s.FinishRun(ctx, id, ResultPartial, Counts{Created: 4, MemberAdds: 3, Failed: 1}, []string{"user \"u3\": 400"}, "+ 4", t0.Add(time.Second)))
	_, err = s.StartRun(ctx, "schedule", true, t0.Add(time.Minute))
	must(t, err)
}

func TestExportImportAcrossStores(t *testing.T) {
	ctx := context.Background()
	src, _ := openTemp(t)
	fill(t, src)
	want, err := src.Export(ctx)
	must(t, err)
	if len(want.Objects) != 5 || len(want.Members) != 3 || len(want.Pending) != 2 || len(want.Runs) != 2 || len(want.Meta) != 1 || len(want.Unowned) != 1 {
		t.Fatalf("export of the filled store: got %d objects %d members %d pending %d runs %d meta %d unowned",
			len(want.Objects), len(want.Members), len(want.Pending), len(want.Runs), len(want.Meta), len(want.Unowned))
	}
	eachStore(t, func(t *testing.T, dst Store) {
		must(t, dst.Import(ctx, want, false))
		got, err := dst.Export(ctx)
		must(t, err)
		if d := Diff(want, got); d != nil {
			t.Errorf("Diff after import: %v", d)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("export after import (-want +got):\n%s", diff)
		}
		if pg, ok := dst.(*Postgres); ok { // the planner has statistics for the slice reads at once
			var analyzed bool
			must(t, pg.pool.QueryRow(ctx, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'objects'").Scan(&analyzed))
			if !analyzed {
				t.Error("objects not analyzed after an import into PostgreSQL")
			}
		}
		// A second import into the now non-empty store is refused and changes nothing.
		if err := dst.Import(ctx, &Dump{Meta: map[string]string{"x": "y"}}, false); !errors.Is(err, ErrNotEmpty) {
			t.Errorf("Import into a non-empty store: got %v, want ErrNotEmpty", err)
		}
		// The next run gets the next id; the copied open run is closed as interrupted.
		id, err := dst.StartRun(ctx, "cli", false, t0.Add(time.Hour))
		must(t, err)
		if want := want.Runs[len(want.Runs)-1].ID + 1; id != want {
			t.Errorf("next run id: got %d, want %d", id, want)
		}
		// Replace drops what was there.
		must(t, dst.Import(ctx, &Dump{Meta: map[string]string{"x": "y"}}, true))
		got, err = dst.Export(ctx)
		must(t, err)
		if diff := cmp.Diff(&Dump{Meta: map[string]string{"x": "y"}}, got); diff != "" {
			t.Errorf("export after a replacing import (-want +got):\n%s", diff)
		}
	})
}

func TestDiffNamesTheTableAndRow(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	fill(t, s)
	a, err := s.Export(ctx)
	must(t, err)
	must(t, s.SetMeta(ctx, "feed.ldap.cursor", "usn:9"))
	must(t, s.RemoveMembers(ctx, "g1", []string{"u2"}))
	b, err := s.Export(ctx)
	must(t, err)
	want := []string{
		`members: 3 and 2 rows, first difference at group "g1" user "u2"`,
		`meta: 1 and 1 rows, first difference at key "feed.ldap.cursor"`,
	}
	if diff := cmp.Diff(want, Diff(a, b)); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
}

func TestOpenKindsAreKeptAlike(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		fill(t, s)
		ps, err := s.Objects(ctx, "permissionSet")
		must(t, err)
		if len(ps) != 1 || ps[0].TargetID != "arn:aws:sso:::permissionSet/x" || string(ps[0].Data) != `{"name":"Admin"}` {
			t.Errorf("permission sets: got %+v", ps)
		}
		pend, err := s.Pending(ctx, "accountAssignment")
		must(t, err)
		if !pend["a1"] || len(pend) != 1 {
			t.Errorf("pending assignments: got %v", pend)
		}
		st, err := s.Stats(ctx)
		must(t, err)
		if diff := cmp.Diff(Stats{Users: 2, Groups: 2, Memberships: 3, PendingUsers: 1}, st); diff != "" {
			t.Errorf("Stats counts users and groups only (-want +got):\n%s", diff)
		}
		// A membership of a permission set is refused: memberships belong to groups.
		if err := s.AddMembers(ctx, "ps-admin", []string{"u1"}); !errors.Is(err, ErrNotOwned) {
			t.Errorf("AddMembers to a permission set: got %v, want ErrNotOwned", err)
		}
		for _, k := range []Kind{"", "two words", Kind(strings.Repeat("k", 65)), "bad/kind"} {
			if _, err := s.Objects(ctx, k); !errors.Is(err, ErrInvalid) {
				t.Errorf("Objects(%q): got %v, want ErrInvalid", k, err)
			}
		}
		// Text PostgreSQL cannot hold is refused by both stores alike, naming the field.
		err = s.PutObjects(ctx, []Object{{Kind: KindUser, ExternalID: "bad\x00id", TargetID: "t", Data: json.RawMessage(`{}`)}})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "external id") {
			t.Errorf("PutObjects with a NUL byte: got %v, want ErrInvalid naming the external id", err)
		}
		if err := s.SetMeta(ctx, "k", "\xff"); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetMeta with invalid UTF-8: got %v, want ErrInvalid", err)
		}
		// Free text of a run is cleaned instead: a run's end is never lost to it.
		id, err := s.StartRun(ctx, "cli", false, t0)
		must(t, err)
		must(t, s.FinishRun(ctx, id, ResultFailed, Counts{}, []string{"bad \xff\x00 value"}, "plan \x00", t0))
		r, err := s.GetRun(ctx, id)
		must(t, err)
		if diff := cmp.Diff([]string{"bad \uFFFD value"}, r.Errors); diff != "" || r.Plan != "plan " {
			t.Errorf("cleaned run text: plan %q, errors (-want +got):\n%s", r.Plan, diff)
		}
	})
}

// TestMigrateSQLiteFromVersion2 opens a file of schema version 2 holding objects, memberships,
// pending creates and unowned objects: version 3 keeps every row (memberships included, though
// their parent table is rebuilt), accepts open kinds, and starts the leader term at 0.
func TestMigrateSQLiteFromVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	must(t, err)
	for _, q := range []string{migrations[0], migrations[1], fmt.Sprintf("PRAGMA application_id = %d", applicationID), "PRAGMA user_version = 2",
		`INSERT INTO objects VALUES ('group', 'g1', 'tg1', '{}', 'h', '2026-11-29T10:00:00.000000000Z'), ('user', 'u1', 'tu1', '{"userName":"a"}', 'h2', '2026-11-29T10:00:00.000000000Z')`,
		`INSERT INTO members (group_external_id, user_external_id) VALUES ('g1', 'u1'), ('g1', 'u2')`,
		`INSERT INTO pending VALUES ('user', 'u2', '2026-12-01T10:00:00.000000000Z')`,
		`INSERT INTO unowned VALUES ('user', 't9', 'x9', 'manual')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(t, db.Close())
	s, err := Open(ctx, path)
	must(t, err)
	defer s.Close()
	must(t, s.IntegrityCheck(ctx))
	var version int
	must(t, s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	if version != SchemaVersion {
		t.Errorf("schema version: got %d, want %d", version, SchemaVersion)
	}
	d, err := s.Export(ctx)
	must(t, err)
	want := &Dump{
		Objects: []Object{
			{Kind: KindGroup, ExternalID: "g1", TargetID: "tg1", Data: json.RawMessage(`{}`), Hash: "h", UpdatedAt: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)},
			{Kind: KindUser, ExternalID: "u1", TargetID: "tu1", Data: json.RawMessage(`{"userName":"a"}`), Hash: "h2", UpdatedAt: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)},
		},
		Pending: []PendingCreate{{Kind: KindUser, ExternalID: "u2", At: testNow}},
		Members: []Membership{{"g1", "u1"}, {"g1", "u2"}},
		Meta:    map[string]string{},
		Unowned: []Unowned{{Kind: KindUser, TargetID: "t9", ExternalID: "x9", Name: "manual"}},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("state after migrating from version 2 (-want +got):\n%s", diff)
	}
	if term, err := s.Leader(ctx); err != nil || term.Term != 0 {
		t.Errorf("leader term after migration: got %+v, %v; want 0", term, err)
	}
	// The rebuilt objects table still cascades to memberships.
	must(t, s.DeleteObjects(ctx, KindGroup, []string{"g1"}))
	if m, _ := s.Members(ctx); len(m) != 0 {
		t.Errorf("members after deleting their group: %v", m)
	}
	must(t, s.PutObjects(ctx, []Object{{Kind: "permissionSet", ExternalID: "p", TargetID: "tp", Data: json.RawMessage(`{}`)}}))
}

// TestMigratePostgresFromPreviousVersion writes state into a database at schema version N-1,
// then opens it: the last migration is applied and every row is kept.
func TestMigratePostgresFromPreviousVersion(t *testing.T) {
	ctx := context.Background()
	loc := pgtest.URL(t)
	conn, err := pgx.Connect(ctx, loc)
	must(t, err)
	defer conn.Close(ctx)
	must(t, migratePostgres(ctx, conn, "test", PostgresSchemaVersion-1, discardLog{}))
	for _, q := range []string{
		`INSERT INTO objects VALUES ('group', 'g1', 'tg1', '{}', 'h', '2026-11-29T10:00:00.000000000Z')`,
		`INSERT INTO members (group_external_id, user_external_id) VALUES ('g1', 'u1')`,
		`INSERT INTO meta VALUES ('k', 'v')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := openStore(t, loc)
	var version int
	must(t, conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&version))
	if version != PostgresSchemaVersion {
		t.Errorf("schema version: got %d, want %d", version, PostgresSchemaVersion)
	}
	m, err := s.Members(ctx)
	must(t, err)
	v, _, err := s.Meta(ctx, "k")
	must(t, err)
	if diff := cmp.Diff(map[string][]string{"g1": {"u1"}}, m); diff != "" || v != "v" {
		t.Errorf("after migration: meta %q, members (-want +got):\n%s", v, diff)
	}
	term, err := s.BeginTerm(ctx, "a", t0)
	if err != nil || term != 1 {
		t.Errorf("first term after migration: got %d, %v; want 1", term, err)
	}

	// A database of a newer scimbridge is refused.
	_, err = conn.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", PostgresSchemaVersion+1)
	must(t, err)
	if _, err := OpenPostgres(ctx, loc); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("OpenPostgres of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
}

// TestPostgresForeignTables refuses a database whose tables of our names are not ours.
func TestPostgresForeignTables(t *testing.T) {
	ctx := context.Background()
	loc := pgtest.URL(t)
	conn, err := pgx.Connect(ctx, loc)
	must(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE TABLE runs (id int)")
	must(t, err)
	if _, err := OpenPostgres(ctx, loc); !errors.Is(err, ErrForeignFile) {
		t.Errorf("OpenPostgres of a database with a foreign runs table: got %v, want ErrForeignFile", err)
	}
}

// TestConcurrentOpensOfANewStore opens one new store from several processes' worth of stores at
// once: every open succeeds and each migration is applied once.
func TestConcurrentOpensOfANewStore(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, loc string) {
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				s, err := OpenStore(ctx, loc)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d: %v", i, err)
			}
		}
		s := openStore(t, loc)
		must(t, s.IntegrityCheck(ctx))
		if pg, ok := s.(*Postgres); ok {
			var n int
			must(t, pg.pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n))
			if n != PostgresSchemaVersion {
				t.Errorf("schema_migrations holds %d rows, want %d", n, PostgresSchemaVersion)
			}
		}
	})
}

func TestPostgresIntegrityCheck(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.URL(t)).(*Postgres)
	must(t, s.IntegrityCheck(ctx))
	_, err := s.pool.Exec(ctx, "DELETE FROM leader")
	must(t, err)
	if err := s.IntegrityCheck(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "leader") {
		t.Errorf("IntegrityCheck without the leader row: got %v, want ErrCorrupt naming it", err)
	}
}

// TestPasswordNeverShows: errors of opening, locking and a refused lock name the database
// without its password.
func TestPasswordNeverShows(t *testing.T) {
	ctx := context.Background()
	const pw = "s3cr3t-Pa55"
	loc := pgtest.URL(t)
	u, err := url.Parse(loc)
	must(t, err)
	real, _ := u.User.Password()

	wrong := *u
	wrong.User = url.UserPassword(u.User.Username(), pw)
	closed := *u
	closed.Host = "127.0.0.1:1"
	closed.User = url.UserPassword(u.User.Username(), pw)
	for name, bad := range map[string]string{
		"wrong password": wrong.String(),
		"nobody listens": closed.String(),
		"bad port":       "postgres://app:" + pw + "@db.example:port/x",
		"bad parameter":  "postgres://app:" + pw + "@127.0.0.1:1/x?sslmode=sometimes",
		"password param": "postgres://127.0.0.1:1/x?password=" + pw,
	} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := OpenPostgres(cctx, bad)
		_, lerr := AcquireLock(cctx, bad, lockInfo("sync"), 0)
		cancel()
		if err == nil || lerr == nil {
			t.Errorf("%s: open %v, lock %v; want errors", name, err, lerr)
			continue
		}
		for _, e := range []error{err, lerr} {
			if strings.Contains(e.Error(), pw) || strings.Contains(fmt.Sprintf("%+v", e), pw) {
				t.Errorf("%s: the error shows the password: %v", name, e)
			}
		}
	}

	held, err := AcquireLock(ctx, loc, lockInfo("sync"), 0)
	must(t, err)
	defer held.Release()
	_, err = AcquireLock(ctx, loc, lockInfo("sync"), 0)
	if !errors.Is(err, ErrLocked) || strings.Contains(err.Error(), real) || !strings.Contains(err.Error(), "xxxxx") {
		t.Errorf("refused lock: got %v, want ErrLocked naming the database without its password", err)
	}
	s := openStore(t, loc)
	if strings.Contains(s.Location(), real) {
		t.Errorf("Location shows the password: %s", s.Location())
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:pw@db:5432/state?sslmode=verify-full", "postgres://app:xxxxx@db:5432/state?sslmode=verify-full"},
		{"postgresql://app@db/state", "postgresql://app@db/state"},
		{"postgres://db/state?password=pw&sslpassword=k", "postgres://db/state?password=xxxxx&sslpassword=xxxxx"},
		{"postgres://app:pw@db:port/x", "postgres://(a URL that does not parse)"},
		{"/var/lib/scimbridge/state.db", "/var/lib/scimbridge/state.db"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLocksOfAnotherDatabaseAreNotOurs: two deployments on one server, each with its database.
// The writer lock of one is neither seen nor removed through the other.
func TestLocksOfAnotherDatabaseAreNotOurs(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.URL(t), pgtest.URL(t)
	la, err := AcquireLock(ctx, a, lockInfo("serve"), 0)
	must(t, err)
	defer la.Release()
	if held, _, _, err := Locked(b); err != nil || held {
		t.Errorf("Locked of the other database: got %v, %v; want free", held, err)
	}
	must(t, ForceUnlock(b))
	if err := la.Check(ctx); err != nil {
		t.Errorf("a force-unlock of the other database ended this lock: %v", err)
	}
	lb, err := AcquireLock(ctx, b, lockInfo("serve"), 0)
	if err != nil {
		t.Fatalf("AcquireLock of the other database: %v", err)
	}
	lb.Release()
}
