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
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"
)

var testNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestPendingTimes(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		must(t, s.RecordPending(ctx, KindUser, []string{"a", "b"}, testNow))
		later := testNow.Add(time.Hour)
		// Recording again (a create retried after a full read found nothing) moves the time.
		must(t, s.RecordPending(ctx, KindUser, []string{"b"}, later))
		got, err := s.PendingTimes(ctx, KindUser)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Time{"a": testNow, "b": later}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pending times (-want +got):\n%s", diff)
		}
	})
}

func TestUnowned(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		first := []Unowned{
			{Kind: KindUser, TargetID: "t1", ExternalID: "g-1", Name: "ann@example.com"},
			{Kind: KindUser, TargetID: "t2", Name: "breakglass@example.com"},
			{Kind: KindGroup, TargetID: "t3", ExternalID: "g-9", Name: "Admins"},
		}
		must(t, s.ReplaceUnowned(ctx, first))
		must(t, s.AddUnowned(ctx, []Unowned{{Kind: KindUser, TargetID: "t4", Name: "late@example.com"}}))
		got, err := s.ListUnowned(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sortUnowned(got)
		want := append(slices.Clone(first), Unowned{Kind: KindUser, TargetID: "t4", Name: "late@example.com"})
		sortUnowned(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("unowned (-want +got):\n%s", diff)
		}
		// The next full read replaces the whole set.
		must(t, s.ReplaceUnowned(ctx, first[1:2]))
		got, _ = s.ListUnowned(ctx)
		if diff := cmp.Diff(first[1:2], got); diff != "" {
			t.Errorf("after replace (-want +got):\n%s", diff)
		}
		if err := s.ReplaceUnowned(ctx, []Unowned{{Kind: "no such kind", TargetID: "x"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("ReplaceUnowned with a bad kind = %v, want ErrInvalid", err)
		}
		if got, _ = s.ListUnowned(ctx); len(got) != 1 {
			t.Errorf("a rejected ReplaceUnowned changed the set: %v", got)
		}
		must(t, s.Reset(ctx))
		if got, _ = s.ListUnowned(ctx); len(got) != 0 {
			t.Errorf("Reset kept unowned objects: %v", got)
		}
	})
}

func sortUnowned(us []Unowned) {
	slices.SortFunc(us, func(a, b Unowned) int { return strings.Compare(string(a.Kind)+a.TargetID, string(b.Kind)+b.TargetID) })
}

// TestMigrateFromVersion1 opens a file written by schema version 1 with a pending create: the
// intent survives with an unknown (zero) time, and the unowned table is there.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], fmt.Sprintf("PRAGMA application_id = %d", applicationID), "PRAGMA user_version = 1",
		"INSERT INTO pending (kind, external_id) VALUES ('user', 'old')"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(t, db.Close())
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.PendingTimes(ctx, KindUser)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]time.Time{"old": {}}, got); diff != "" {
		t.Errorf("pending after migration (-want +got):\n%s", diff)
	}
	must(t, s.AddUnowned(ctx, []Unowned{{Kind: KindGroup, TargetID: "g", Name: "G"}}))
}
