package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the state store in a PostgreSQL database, shared by the replicas of a deployment.
// It holds what SQLite holds, in tables of the same names (objects, pending, members, meta,
// unowned, runs, leader), and behaves the same way. Its methods are safe for concurrent use; each
// write is one transaction, retried on a deadlock or serialization failure.
//
// Give each deployment its own database (or its own schema through the URL's search_path
// option): the advisory locks that guard the writer and the migrations are per database.
type Postgres struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	keepRuns int
	loc      string // the URL without its password
	fence    fence
}

// OpenPostgres connects to the database at rawURL (postgres:// or postgresql://, with sslmode
// and the other libpq parameters pgx understands; verify-full is the one to use across a
// network) and brings its schema up to date. Neither errors nor logs show the URL's password.
func OpenPostgres(ctx context.Context, rawURL string, opts ...Option) (*Postgres, error) {
	o := options{log: slog.New(slog.DiscardHandler), keepRuns: defaultKeepRuns, busyTimeout: defaultBusyTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	loc := RedactURL(rawURL)
	cfg, err := parsePostgresURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "scimbridge"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", loc, err)
	}
	s := &Postgres{pool: pool, log: o.log, keepRuns: o.keepRuns, loc: loc}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("state: open %s: %w", loc, err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// parsePostgresURL parses a database URL. Its errors never hold the URL itself: a parse error
// of net/url quotes the whole input, password included.
func parsePostgresURL(rawURL string) (*pgxpool.Config, error) {
	if !IsPostgresURL(rawURL) {
		return nil, fmt.Errorf("state: %s is not a postgres:// or postgresql:// URL: %w", RedactURL(rawURL), ErrInvalid)
	}
	if _, err := url.Parse(rawURL); err != nil {
		return nil, fmt.Errorf("state: the database URL %s cannot be parsed (check its host, port and escaping): %w", RedactURL(rawURL), ErrInvalid)
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state: the database URL %s is not valid (check its parameters): %w", RedactURL(rawURL), ErrInvalid)
	}
	return cfg, nil
}

// RedactURL returns a database URL fit for messages: its password, and any password or sslpassword
// parameter, replaced by "xxxxx". A URL that does not parse is reduced to its scheme.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		scheme, _, _ := strings.Cut(rawURL, "://")
		if len(scheme) > 12 || strings.ContainsAny(scheme, ":@/") {
			scheme = "?"
		}
		return scheme + "://(a URL that does not parse)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	changed := false
	for k := range q {
		if l := strings.ToLower(k); strings.Contains(l, "password") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Location is the database URL without its password.
func (s *Postgres) Location() string { return s.loc }

// Pool is the store's connection pool, for what lives beside the state in the same database
// (leader election, triggers). Writes through it are not fenced.
func (s *Postgres) Pool() *pgxpool.Pool { return s.pool }

// Close closes the store's connections.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// maxTxAttempts bounds the retries of a write transaction that lost a deadlock or a
// serialization conflict.
const maxTxAttempts = 5

// write runs fn in one transaction and commits it, retrying a deadlock or serialization failure.
// When the store is fenced the transaction first reads the leader term FOR SHARE: a term that
// moved on fails with ErrFenced, and a BeginTerm waits until this transaction ends.
func (s *Postgres) write(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := range maxTxAttempts {
		err = s.writeOnce(ctx, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001") || ctx.Err() != nil {
			return err
		}
		s.log.Debug("state write conflicted; retrying", "attempt", attempt+1, "code", pe.Code)
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

func (s *Postgres) writeOnce(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if want := s.fence.term(); want != 0 {
		var term int64
		var holder string
		if err := tx.QueryRow(ctx, "SELECT term, holder FROM leader WHERE id = 1 FOR SHARE").Scan(&term, &holder); err != nil {
			return fmt.Errorf("read leader term: %w", err)
		}
		if term != want {
			return &FencedError{Term: want, Current: term, Holder: holder}
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Fence makes every later write of s check, in its transaction, that the leader term is still
// term, or fail with ErrFenced; Fence(0) turns the check off.
func (s *Postgres) Fence(term int64) { s.fence.set(term) }

// BeginTerm starts a new leader term: it increments the term, records holder and now, and
// returns the new term. It waits for the write transactions of the term before it that are in
// flight (they hold the term row FOR SHARE); every write after it sees the new term.
func (s *Postgres) BeginTerm(ctx context.Context, holder string, now time.Time) (int64, error) {
	if holder == "" {
		return 0, fmt.Errorf("state: begin leader term: empty holder: %w", ErrInvalid)
	}
	var term int64
	err := s.pool.QueryRow(ctx, "UPDATE leader SET term = term + 1, holder = $1, acquired_at = $2 WHERE id = 1 RETURNING term",
		holder, formatTime(now)).Scan(&term)
	if err != nil {
		return 0, fmt.Errorf("state: begin leader term for %s: %w", holder, err)
	}
	s.log.Info("began leader term", "term", term, "holder", holder)
	return term, nil
}

// Leader returns the current leader term.
func (s *Postgres) Leader(ctx context.Context) (Term, error) {
	var t Term
	var at string
	err := s.pool.QueryRow(ctx, "SELECT term, holder, acquired_at FROM leader WHERE id = 1").Scan(&t.Term, &t.Holder, &at)
	if err == nil && at != "" {
		t.AcquiredAt, err = parseTime(at)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("the leader row is missing: %w", ErrCorrupt)
	}
	if err != nil {
		return Term{}, fmt.Errorf("state: read leader term: %w", err)
	}
	return t, nil
}

// IntegrityCheck looks for memberships of groups the store does not own and for a missing leader
// row (PostgreSQL keeps its own pages consistent; these are the invariants a hand edit breaks).
func (s *Postgres) IntegrityCheck(ctx context.Context) error {
	var orphans, leaders int
	err := s.pool.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM members m WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.kind = 'group' AND o.external_id = m.group_external_id)),
	(SELECT count(*) FROM leader WHERE id = 1)`).Scan(&orphans, &leaders)
	if err != nil {
		return fmt.Errorf("state: integrity check: %w", err)
	}
	var problems []string
	if orphans > 0 {
		problems = append(problems, fmt.Sprintf("%d rows of members refer to a missing objects row", orphans))
	}
	if leaders != 1 {
		problems = append(problems, "the leader row is missing")
	}
	if len(problems) > 0 {
		return fmt.Errorf("state: check %s: %w: %s", s.loc, ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// Reset forgets ownership: every owned object, pending create, membership, unowned object and
// meta key/value. The run history and the leader term stay.
func (s *Postgres) Reset(ctx context.Context) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "TRUNCATE members, objects, pending, unowned, meta")
		return err
	})
	if err != nil {
		return fmt.Errorf("state: reset: %w", err)
	}
	s.log.Info("state reset: ownership, memberships and meta forgotten", "location", s.loc)
	return nil
}

// Stats counts the owned users and groups, the memberships and the pending creates.
func (s *Postgres) Stats(ctx context.Context) (Stats, error) {
	return scanStats(s.pool.QueryRow(ctx, statsQuery))
}
