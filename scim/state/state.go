package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Errors that callers may test for with errors.Is.
var (
	// ErrInvalid reports an argument the store refuses: an unknown kind, an empty id, data that
	// is not JSON, an unknown run result.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotOwned reports a membership write for a group the store does not own.
	ErrNotOwned = errors.New("group is not owned")
	// ErrRunNotFound reports a run id that does not exist (never started, or pruned).
	ErrRunNotFound = errors.New("run not found")
	// ErrSchemaTooNew reports a state file written by a newer scimbridge.
	ErrSchemaTooNew = errors.New("schema is newer than this build supports")
	// ErrForeignFile reports a SQLite file that is not a scimbridge state file.
	ErrForeignFile = errors.New("not a scimbridge state file")
	// ErrCorrupt reports a failed integrity or foreign key check.
	ErrCorrupt = errors.New("state file is corrupt")
)

const (
	defaultKeepRuns    = 1000
	defaultBusyTimeout = 10 * time.Second
	readConns          = 4
	timeFormat         = "2006-01-02T15:04:05.000000000Z07:00"
)

// Option changes how Open opens the store.
type Option func(*options)

type options struct {
	log         *slog.Logger
	keepRuns    int
	busyTimeout time.Duration
	syncNormal  bool
}

// WithLogger sets the logger; the default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithKeepRuns sets how many runs the history keeps (the newest); older ones are pruned when a
// run starts. The default is 1000; n < 1 is treated as 1.
func WithKeepRuns(n int) Option {
	return func(o *options) { o.keepRuns = max(n, 1) }
}

// WithBusyTimeout sets how long a write waits for another process holding the file's write
// lock before it fails (default 10s).
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithRelaxedSync trades durability against power loss for speed (PRAGMA synchronous=NORMAL):
// a commit still survives the process being killed, but the last commits may be lost if the
// machine loses power. The default (synchronous=FULL) survives both.
func WithRelaxedSync() Option {
	return func(o *options) { o.syncNormal = true }
}

// SQLite is the state store in one SQLite file, the embedded default. Its methods are safe for
// concurrent use: writes go through one connection, one transaction at a time; reads use a small
// pool of read-only connections that see the last committed state (WAL mode).
type SQLite struct {
	w        *sql.DB // the single writer connection
	r        *sql.DB // read-only pool; == w for an in-memory store
	log      *slog.Logger
	keepRuns int
	path     string
	fence    fence
}

// Open opens (creating if needed) the state file at path and brings its schema up to date.
// A path of "" or ":memory:" gives a private in-memory store. The parent directory of path must
// exist; Open does not create directories.
func Open(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	o := options{log: slog.New(slog.DiscardHandler), keepRuns: defaultKeepRuns, busyTimeout: defaultBusyTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	s := &SQLite{log: o.log, keepRuns: o.keepRuns, path: path}
	sync := "FULL"
	if o.syncNormal {
		sync = "NORMAL"
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", o.busyTimeout.Milliseconds())

	if path == "" || path == ":memory:" {
		db, err := sql.Open("sqlite", "file::memory:?"+busy+"&_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("state: open in-memory database: %w", err)
		}
		// One connection that never closes: the database lives exactly as long as it.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.w, s.r = db, db
		s.path = ":memory:"
	} else {
		if err := checkParent(path); err != nil {
			return nil, err
		}
		uri := "file:" + escapePath(path) + "?"
		// Page caches: 16 MiB for the writer and 4 MiB for each reader. SQLite's memory lives
		// outside the Go heap (and outside GOMEMLIMIT); larger caches (64 + 4 x 16 MiB) made a
		// 100k-user initial sync peak near 600 MB RSS for little speed.
		w, err := sql.Open("sqlite", uri+busy+"&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_pragma=cache_size(-16384)&_pragma=temp_store(memory)&_pragma=journal_size_limit(67108864)&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("state: open %s: %w", path, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		s.w = w
		if err := connectWaiting(ctx, w, o.busyTimeout); err != nil {
			w.Close()
			return nil, fmt.Errorf("state: open %s: %w", path, err)
		}
		// Migrate before the readers open, so the file is in WAL mode and current when they see it.
		if err := s.migrate(ctx); err != nil {
			w.Close()
			return nil, err
		}
		r, err := sql.Open("sqlite", uri+busy+"&_pragma=foreign_keys(1)&_pragma=cache_size(-4096)&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("state: open %s for reading: %w", path, err)
		}
		r.SetMaxOpenConns(readConns)
		r.SetMaxIdleConns(readConns)
		s.r = r
		if err := r.PingContext(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("state: open %s for reading: %w", path, err)
		}
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	return s, nil
}

// connectWaiting opens the writer's connection, waiting up to timeout while another process holds
// the file busy. The connection's first statements switch a new file to WAL mode, which SQLite
// answers with SQLITE_BUSY at once, without its busy handler, while another process opening the
// same new file does the same (a dry run and a sync started together on a first install).
func connectWaiting(ctx context.Context, db *sql.DB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// isBusy reports SQLITE_BUSY and its extended codes.
func isBusy(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code()&0xff == 5
}

// checkParent gives a clear error when the directory that should hold the file is missing.
func checkParent(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state: open %s: directory %s does not exist: %w", path, dir, err)
	case err != nil:
		return fmt.Errorf("state: open %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("state: open %s: %s is not a directory", path, dir)
	}
	return nil
}

// escapePath makes a file path safe inside a SQLite "file:" URI.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Close closes the store. Calls after Close fail.
func (s *SQLite) Close() error {
	var errR error
	if s.r != s.w {
		errR = s.r.Close()
	}
	errW := s.w.Close()
	if err := errors.Join(errW, errR); err != nil {
		return fmt.Errorf("state: close %s: %w", s.path, err)
	}
	return nil
}

// IntegrityCheck runs SQLite's integrity check and a foreign key check over the whole file and
// returns an error wrapping ErrCorrupt that lists the first problems found.
func (s *SQLite) IntegrityCheck(ctx context.Context) error {
	var problems []string
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return fmt.Errorf("state: integrity check: %w", err)
	}
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return fmt.Errorf("state: integrity check: %w", err)
		}
		if msg != "ok" {
			problems = append(problems, msg)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("state: integrity check: %w", err)
	}
	rows, err = s.r.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("state: foreign key check: %w", err)
	}
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			rows.Close()
			return fmt.Errorf("state: foreign key check: %w", err)
		}
		if len(problems) < 40 {
			problems = append(problems, fmt.Sprintf("row of %s refers to a missing %s", table, parent))
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("state: foreign key check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("state: check %s: %w: %s", s.path, ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// Reset forgets ownership: every owned object, pending create and membership, and the meta
// key/values (so that no "source unchanged" shortcut survives it). The run history stays.
// After Reset the next run must rediscover the target (adopting or ignoring what is there).
func (s *SQLite) Reset(ctx context.Context) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"members", "objects", "pending", "unowned", "meta"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
				return fmt.Errorf("clear %s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: reset: %w", err)
	}
	s.log.Info("state reset: ownership, memberships and meta forgotten", "path", s.path)
	return nil
}

// write runs fn in one write transaction and commits it.
// When the store is fenced (Fence), the transaction first checks the leader term: a term that moved
// on fails the write with ErrFenced before fn runs. SQLite runs one write transaction at a time
// (BEGIN IMMEDIATE), so no BeginTerm can commit between the check and the commit.
func (s *SQLite) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if want := s.fence.term(); want != 0 {
		var term int64
		var holder string
		if err := tx.QueryRowContext(ctx, "SELECT term, holder FROM leader WHERE id = 1").Scan(&term, &holder); err != nil {
			return errors.Join(fmt.Errorf("read leader term: %w", err), rollback(tx))
		}
		if term != want {
			return errors.Join(&FencedError{Term: want, Current: term, Holder: holder}, rollback(tx))
		}
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// Stats counts what the store holds, for a status page or metrics.
type Stats struct {
	Users, Groups, Memberships, PendingUsers, PendingGroups int
}

// Stats counts the owned users and groups, the memberships and the pending creates.
func (s *SQLite) Stats(ctx context.Context) (Stats, error) {
	return scanStats(s.r.QueryRowContext(ctx, statsQuery))
}
