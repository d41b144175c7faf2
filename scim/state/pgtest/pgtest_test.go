package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestURLGivesAFreshDatabase: each URL is a database of its own, empty, that the server accepts
// with the URL's password.
func TestURLGivesAFreshDatabase(t *testing.T) {
	ctx := context.Background()
	var names []string
	for range 3 {
		start := time.Now()
		u := URL(t)
		t.Logf("database ready in %s", time.Since(start))
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var tables int
		if err := conn.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&name, &tables); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if tables != 0 {
			t.Errorf("database %s holds %d tables, want 0", name, tables)
		}
		for _, n := range names {
			if n == name {
				t.Errorf("database %s given twice", name)
			}
		}
		names = append(names, name)
	}
}
