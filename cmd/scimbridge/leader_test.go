package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimbridge/scimbridge/scim/state"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// pgReplica is one leader candidate on a PostgreSQL state, in this process.
type pgReplica struct {
	st     *state.Postgres
	lead   *leader
	cancel context.CancelFunc
	done   chan struct{}
}

func startPGReplica(t *testing.T, url, name string, opts leaseOpts) *pgReplica {
	t.Helper()
	st, err := state.OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	info := state.LockInfo{PID: 4000 + int(name[0]), Host: name, Command: "serve", Started: time.Now().UTC()}
	r := &pgReplica{st: st, lead: newLeader(url, st, info, slog.New(slog.NewTextHandler(testWriter{t, name}, nil)), opts), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.done); r.lead.run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// waitLeads waits until r leads (or, with want false, does not).
func (r *pgReplica) waitLeads(t *testing.T, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if standby, _ := r.lead.Standby(); standby != want {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	standby, why := r.lead.Standby()
	t.Fatalf("after %s: standby %v (%s), want leading %v", within, standby, why, want)
	return 0
}

// TestLeaderPausedPastItsLease: a leader whose keepalive does not run (a paused process) loses its
// lock when the server ends its idle session after the lease; another replica takes over with a
// new term. The old leader's run guard reports the loss at once (it counts the lease out before
// the server does), and its store, fenced with the old term, refuses every write.
func TestLeaderPausedPastItsLease(t *testing.T) {
	url := pgtest.URL(t)
	lease := 2 * time.Second
	// An hour between keepalives: the session goes idle as that of a paused process would.
	a := startPGReplica(t, url, "a", leaseOpts{lease: lease, keepalive: time.Hour, retry: 50 * time.Millisecond})
	a.waitLeads(t, true, 10*time.Second)
	termA := a.lead.currentTerm()
	guard, cancel := a.lead.guard(context.Background())
	defer cancel()
	if err := guard.Err(); err != nil {
		t.Fatalf("the leader's guard: got %v, want nil", err)
	}

	b := startPGReplica(t, url, "b", leaseOpts{lease: lease, keepalive: 200 * time.Millisecond, retry: 50 * time.Millisecond})
	start := time.Now()
	if standby, _ := b.lead.Standby(); !standby {
		t.Fatal("a second replica leads beside the first")
	}
	took := b.waitLeads(t, true, 4*lease)
	t.Logf("the second replica took over %s after it started (lease %s)", took.Round(time.Millisecond), lease)
	if guard.Err() == nil || !errors.Is(context.Cause(guard), errNotLeader) {
		t.Errorf("the old leader's guard after the takeover: got %v (cause %v), want it ended with errNotLeader", guard.Err(), context.Cause(guard))
	}
	if time.Since(start) < lease/2 {
		t.Errorf("took over after %s, before the old leader's lease (%s) could have run out", time.Since(start), lease)
	}
	if termB := b.lead.currentTerm(); termB != termA+1 {
		t.Errorf("new term: got %d, want %d", termB, termA+1)
	}
	err := a.st.SetMeta(context.Background(), "k", "v")
	if !errors.Is(err, state.ErrFenced) {
		t.Errorf("a write of the old leader's store: got %v, want ErrFenced", err)
	}
	if err := b.st.SetMeta(context.Background(), "k", "v"); err != nil {
		t.Errorf("a write of the new leader's store: %v", err)
	}
}

// TestLeaderLostConnection: when the leader's lock session is ended (a dropped connection, a
// failover of the database), its keepalive notices, its runs' guard ends, and another replica
// takes the lock; the first one becomes a follower, then leads again once the second lets go.
func TestLeaderLostConnection(t *testing.T) {
	url := pgtest.URL(t)
	opts := leaseOpts{lease: 3 * time.Second, keepalive: 100 * time.Millisecond, retry: 50 * time.Millisecond}
	slow := opts
	slow.retry = time.Second // b, trying every 50 ms, takes the lock first
	a := startPGReplica(t, url, "a", slow)
	a.waitLeads(t, true, 10*time.Second)
	b := startPGReplica(t, url, "b", opts)
	time.Sleep(300 * time.Millisecond)
	if standby, why := b.lead.Standby(); !standby || why == "" {
		t.Fatalf("second replica: standby %v %q, want a follower naming the holder", standby, why)
	}
	guard, cancel := a.lead.guard(context.Background())
	defer cancel()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ended int
	// lock_holder names the session of the lock's holder.
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM lock_holder`).Scan(&ended); err != nil || ended != 1 {
		t.Fatalf("end the leader's lock session: ended %d, %v", ended, err)
	}
	select {
	case <-guard.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the leader's run guard did not end within 2 s of its lock session ending")
	}
	b.waitLeads(t, true, 5*time.Second)
	a.waitLeads(t, false, time.Second)
	if err := a.st.SetMeta(ctx, "k", "v"); !errors.Is(err, state.ErrFenced) {
		t.Errorf("a write of the old leader's store: got %v, want ErrFenced", err)
	}
	b.cancel()
	<-b.done
	a.waitLeads(t, true, 5*time.Second)
}

// testWriter sends a replica's log lines to the test's log.
type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + string(p))
	return len(p), nil
}

// TestRunLockOneAtATime: `scimbridge lambda` takes the leader lock for each run, with a new term:
// a second invocation meanwhile is refused (state.ErrLocked), and once the first lets go the next
// run's term fences the first one's store.
func TestRunLockOneAtATime(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	open := func() *app {
		st, err := state.OpenPostgres(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return &app{stateLoc: url, state: st}
	}
	first, second := open(), open()
	lockA, _ := newRunLock(ctx, first, "lambda", slog.New(slog.DiscardHandler))
	lockB, _ := newRunLock(ctx, second, "lambda", slog.New(slog.DiscardHandler))
	runCtx, release, err := lockA.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := runCtx.Err(); err != nil {
		t.Fatalf("the run's context: %v", err)
	}
	if _, _, err := lockB.Acquire(ctx); !errors.Is(err, state.ErrLocked) {
		t.Fatalf("a second run while the first holds the lock: got %v, want ErrLocked", err)
	}
	release()
	if runCtx.Err() == nil {
		t.Error("the first run's context outlived its lock")
	}
	_, releaseB, err := lockB.Acquire(ctx)
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	defer releaseB()
	if err := first.state.SetMeta(ctx, "k", "v"); !errors.Is(err, state.ErrFenced) {
		t.Errorf("a write of the first run's store: got %v, want ErrFenced", err)
	}
	if err := second.state.SetMeta(ctx, "k", "v"); err != nil {
		t.Errorf("a write of the next run's store: %v", err)
	}
}
