package handoff_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/handoff"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// got collects what a leader's Serve hands over.
type got struct {
	mu   sync.Mutex
	reqs []reconcile.Request
	more chan struct{}
}

func (g *got) add(r reconcile.Request) {
	g.mu.Lock()
	g.reqs = append(g.reqs, r)
	g.mu.Unlock()
	g.more <- struct{}{}
}

func (g *got) wait(t *testing.T, n int, within time.Duration) []reconcile.Request {
	t.Helper()
	deadline := time.After(within)
	for {
		g.mu.Lock()
		if len(g.reqs) >= n {
			out := append([]reconcile.Request(nil), g.reqs...)
			g.mu.Unlock()
			return out
		}
		g.mu.Unlock()
		select {
		case <-g.more:
		case <-deadline:
			t.Fatalf("got %d requests within %s, want %d", len(g.reqs), within, n)
		}
	}
}

// TestFollowerRequestsReachTheLeader: requests a follower records reach the leader's Serve
// once each: at once through NOTIFY (the poll is an hour), and those recorded while no leader
// served are found when one starts.
func TestFollowerRequestsReachTheLeader(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	follower, err := handoff.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	early := reconcile.Request{Trigger: "google", Only: reconcile.Selection{Users: []string{"u-9"}}}
	if err := follower.Record(ctx, early); err != nil {
		t.Fatal(err)
	}

	leader, err := handoff.Open(ctx, url, nil) // a second Open finds the table there
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	leader.Poll = time.Hour
	g := &got{more: make(chan struct{}, 10)}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- leader.Serve(sctx, g.add) }()
	if diff := cmp.Diff([]reconcile.Request{early}, g.wait(t, 1, 10*time.Second)); diff != "" {
		t.Errorf("the request recorded before the leader served (-want +got):\n%s", diff)
	}

	reqs := []reconcile.Request{
		{Trigger: reconcile.TriggerWebhook, Only: reconcile.Selection{Users: []string{"u-1", "u-2"}, Groups: []string{"g-1"}}},
		{Trigger: "manual", DryRun: true},
	}
	start := time.Now()
	for _, r := range reqs {
		if err := follower.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(append([]reconcile.Request{early}, reqs...), g.wait(t, 3, 10*time.Second)); diff != "" {
		t.Errorf("requests handed to the leader (-want +got):\n%s", diff)
	}
	t.Logf("recorded requests reached the leader in %s", time.Since(start).Round(time.Millisecond))
	stop()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if left, err := leader.Claim(ctx); err != nil || len(left) != 0 {
		t.Errorf("requests left in the table: %v, %v; want none (each is claimed once)", left, err)
	}
}

// TestPollingFindsRequestsWithoutNotify: with notifications lost, a request is still found by
// the next poll.
func TestPollingFindsRequestsWithoutNotify(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	q, err := handoff.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.Poll = 200 * time.Millisecond
	g := &got{more: make(chan struct{}, 10)}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = q.Serve(sctx, g.add) }()
	time.Sleep(100 * time.Millisecond)
	// Insert as an older replica without NOTIFY would.
	if err := handoff.RecordWithoutNotify(ctx, q, reconcile.Request{Trigger: reconcile.TriggerWebhook}); err != nil {
		t.Fatal(err)
	}
	g.wait(t, 1, 5*time.Second)
}
