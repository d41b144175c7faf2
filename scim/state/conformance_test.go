package state

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// The conformance suite: every test that takes a Store through eachStore or eachBackend runs
// against both implementations, SQLite in a temporary file and PostgreSQL in a fresh database of
// the server pgtest starts for this test binary.

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachBackend runs fn once per implementation with a new, empty location: a file path for
// SQLite, a database URL for PostgreSQL (skipped, or failed in CI, without a server).
//
// The tests that use it run in parallel with each other (each has stores of its own): most of a
// PostgreSQL test's time is spent waiting for the server.
func eachBackend(t *testing.T, fn func(t *testing.T, loc string)) {
	t.Helper()
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "state.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.URL(t)) })
}

// eachStore runs fn once per implementation with a new, empty store opened with opts.
func eachStore(t *testing.T, fn func(t *testing.T, s Store), opts ...Option) {
	t.Helper()
	eachBackend(t, func(t *testing.T, loc string) { fn(t, openStore(t, loc, opts...)) })
}

// openStore opens the store at loc, closed when t ends.
func openStore(t testing.TB, loc string, opts ...Option) Store {
	t.Helper()
	s, err := OpenStore(context.Background(), loc, opts...)
	if err != nil {
		t.Fatalf("OpenStore(%s) = %v", RedactURL(loc), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
