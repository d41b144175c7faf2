// Package handoff carries run requests from the followers of `scimbridge serve` to the leader
// through the shared PostgreSQL database. A follower that accepts a webhook (or a run form)
// records the request in the table run_requests and sends a NOTIFY on the channel
// scimbridge_run_requests, in one transaction; the leader LISTENs on a connection of its own
// and also looks at the table every poll interval (a notification sent while no leader was
// listening, or lost with a connection, is found by the next look). The leader claims rows
// with DELETE ... RETURNING, so each request is run once, and hands them to its controller,
// which coalesces them as it does requests it received itself. A request claimed by a leader
// that loses its leadership before it runs is covered by the full run every new leader starts
// with.
package handoff

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// Channel is the NOTIFY channel of new requests.
const Channel = "scimbridge_run_requests"

// schema creates the table once, whoever gets there first (the advisory lock, "scimbh" in
// ASCII, serialises two replicas starting at once).
const schema = `SELECT pg_advisory_xact_lock(126870807732840);
CREATE TABLE IF NOT EXISTS run_requests (
	id         bigserial PRIMARY KEY,
	request    jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
)`

// request is a reconcile.Request as stored.
type request struct {
	Trigger string              `json:"trigger"`
	DryRun  bool                `json:"dry_run,omitempty"`
	Only    reconcile.Selection `json:"only"`
}

// Queue is the table of run requests; safe for concurrent use.
type Queue struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// Poll is how often Serve looks at the table without a notification; default 5s.
	Poll time.Duration
}

// Open connects to the database at url (its own small pool) and makes sure the table exists.
// Errors name the database by redact(url), never with its password.
func Open(ctx context.Context, url string, log *slog.Logger) (*Queue, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("handoff: the database URL is not valid")
	}
	cfg.MaxConns = 3
	cfg.ConnConfig.RuntimeParams["application_name"] = "scimbridge handoff"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("handoff: connect: %w", err)
	}
	if _, err := pool.Exec(ctx, "BEGIN; "+schema+"; COMMIT"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("handoff: create table run_requests: %w", err)
	}
	return &Queue{pool: pool, log: log, Poll: 5 * time.Second}, nil
}

// Close closes the pool.
func (q *Queue) Close() { q.pool.Close() }

// Record stores req for the leader and notifies it (Config.Forward of package service).
func (q *Queue) Record(ctx context.Context, req reconcile.Request) error {
	b, err := json.Marshal(request{Trigger: req.Trigger, DryRun: req.DryRun, Only: req.Only})
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO run_requests (request) VALUES ($1)", string(b)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", Channel)
		return err
	})
	if err != nil {
		return fmt.Errorf("handoff: record the request: %w", err)
	}
	q.log.Info("request recorded for the leader", "trigger", req.Trigger, "dry_run", req.DryRun, "only", req.Only.String())
	return nil
}

// Claim takes every waiting request out of the table, oldest first.
func (q *Queue) Claim(ctx context.Context) ([]reconcile.Request, error) {
	rows, err := q.pool.Query(ctx, "DELETE FROM run_requests RETURNING id, request::text")
	if err != nil {
		return nil, fmt.Errorf("handoff: claim requests: %w", err)
	}
	type row struct {
		id  int64
		raw string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.raw)
	})
	if err != nil {
		return nil, fmt.Errorf("handoff: claim requests: %w", err)
	}
	out := make([]reconcile.Request, 0, len(got))
	slices.SortFunc(got, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	for _, g := range got {
		var r request
		if err := json.Unmarshal([]byte(g.raw), &r); err != nil {
			q.log.Warn("a recorded request is unreadable; dropped", "id", g.id, "err", err)
			continue
		}
		out = append(out, reconcile.Request{Trigger: r.Trigger, DryRun: r.DryRun, Only: r.Only})
	}
	return out, nil
}

// Serve hands every recorded request to fn until ctx ends: at once, on each notification, and
// every Poll. It returns nil when ctx ends; errors of the database are logged and retried.
func (q *Queue) Serve(ctx context.Context, fn func(reconcile.Request)) error {
	var conn *pgxpool.Conn
	defer func() {
		if conn != nil {
			conn.Release()
		}
	}()
	logged := false
	for ctx.Err() == nil {
		if conn == nil {
			c, err := q.listen(ctx)
			if err != nil && !logged && ctx.Err() == nil {
				q.log.Warn("cannot listen for requests; looking at the table every poll instead", "err", err, "poll", q.Poll.String())
				logged = true
			}
			conn = c
		}
		reqs, err := q.Claim(ctx)
		if err != nil && ctx.Err() == nil {
			q.log.Warn("look for recorded requests", "err", err)
		}
		for _, r := range reqs {
			q.log.Info("running a request a follower recorded", "trigger", r.Trigger, "dry_run", r.DryRun, "only", r.Only.String())
			fn(r)
		}
		wait, cancel := context.WithTimeout(ctx, q.Poll)
		if conn != nil {
			_, err = conn.Conn().WaitForNotification(wait)
			if err != nil && wait.Err() == nil && ctx.Err() == nil {
				q.log.Warn("the listening connection failed; listening again", "err", err)
				conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops a closed connection
				conn.Release()
				conn, logged = nil, false
				sleep(wait, time.Second)
			}
		} else {
			<-wait.Done()
		}
		cancel()
	}
	return nil
}

func (q *Queue) listen(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		conn.Release()
		return nil, err
	}
	return conn, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
