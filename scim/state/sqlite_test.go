package state

// Tests of what only the SQLite store has: a file that must be ours, in-memory stores, WAL mode,
// read-only readers and SQLite's own integrity check.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
)

func TestOpenMissingParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "state.db")
	_, err := Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(%q) = %v, want a does-not-exist error", path, err)
	}
	if _, statErr := os.Stat(filepath.Dir(path)); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("Open created the directory: %v", statErr)
	}
}

func TestOpenInMemory(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", ":memory:"} {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open(%q) = %v", path, err)
		}
		if err := s.PutObjects(ctx, []Object{mustGroup(t, "g1", scim.Group{ExternalID: "G", DisplayName: "G"}, t0)}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMembers(ctx, "G", []string{"u2", "u1"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string][]string{"G": {"u1", "u2"}}, got); diff != "" {
			t.Errorf("Members() (-want +got):\n%s", diff)
		}
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Error(err)
		}
		s.Close()
		// A second in-memory store is a different, empty database.
		s2, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if ids := objectIDs(t, s2, KindGroup); len(ids) != 0 {
			t.Errorf("fresh in-memory store holds %v", ids)
		}
		s2.Close()
	}
}

func TestSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	var version, appID int
	var journal string
	must(t, s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version))
	must(t, s.w.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID))
	must(t, s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal))
	if version != SchemaVersion || appID != applicationID || journal != "wal" {
		t.Errorf("user_version %d application_id %#x journal %s; want %d %#x wal", version, appID, journal, SchemaVersion, applicationID)
	}
	// Reads cannot write.
	if _, err := s.r.ExecContext(ctx, "INSERT INTO meta VALUES ('a', 'b')"); err == nil {
		t.Error("the read pool accepted a write")
	}
	// A file from a newer scimbridge is refused, and left as it is.
	_, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1))
	must(t, err)
	must(t, s.Close())
	if _, err := Open(ctx, path); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open(newer schema) = %v, want ErrSchemaTooNew", err)
	}

	// Another application's SQLite file (the emulator's, say) is refused.
	other := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", other)
	must(t, err)
	_, err = db.Exec("CREATE TABLE users (id TEXT)")
	must(t, err)
	db.Close()
	if _, err := Open(ctx, other); !errors.Is(err, ErrForeignFile) {
		t.Errorf("Open(foreign sqlite file) = %v, want ErrForeignFile", err)
	}
	// A file that is not SQLite at all is an error.
	junk := filepath.Join(t.TempDir(), "junk.db")
	must(t, os.WriteFile(junk, []byte(strings.Repeat("not a database ", 100)), 0o600))
	if _, err := Open(ctx, junk); err == nil {
		t.Error("Open(junk) succeeded")
	}
}

func TestIntegrityCheckFindsBrokenReferences(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	must(t, s.IntegrityCheck(ctx))
	// Write a membership of a group that does not exist behind the store's back.
	db, err := sql.Open("sqlite", path)
	must(t, err)
	_, err = db.Exec("INSERT INTO members (group_external_id, user_external_id) VALUES ('ghost', 'u1')")
	must(t, err)
	db.Close()
	err = s.IntegrityCheck(ctx)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "members") {
		t.Errorf("IntegrityCheck = %v, want ErrCorrupt naming members", err)
	}
}
