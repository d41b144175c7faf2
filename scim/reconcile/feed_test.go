package reconcile_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// served is a controller and a feed runner over a fileEnv, running until stopped.
type served struct {
	fe     *fileEnv
	ctrl   *reconcile.Controller
	feed   *reconcile.FeedRunner
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu      sync.Mutex
	runs    []*reconcile.Result
	latency []time.Duration
}

func serveFeed(t *testing.T, fe *fileEnv, interval, window time.Duration) *served {
	t.Helper()
	s := &served{fe: fe}
	var err error
	s.ctrl, err = reconcile.NewController(reconcile.ControllerConfig{
		Runner: fe.r, Interval: interval, Logger: testLogger(),
		OnFinish: func(opts reconcile.RunOptions, res *reconcile.Result, err error) {
			s.feed.RunFinished(opts, res, err)
			s.mu.Lock()
			defer s.mu.Unlock()
			if res != nil {
				s.runs = append(s.runs, res)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.feed, err = reconcile.NewFeedRunner(reconcile.FeedRunnerConfig{
		Source: "file", Open: fe.src.Feed, Controller: s.ctrl, State: fe.st, Window: window,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: testLogger(),
		OnApplied: func(_ string, d time.Duration) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.latency = append(s.latency, d)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done.Add(2)
	go func() { defer s.done.Done(); _ = s.ctrl.Run(ctx) }()
	go func() { defer s.done.Done(); _ = s.feed.Run(ctx) }()
	t.Cleanup(s.stop)
	return s
}

func (s *served) stop() {
	s.cancel()
	s.done.Wait()
}

// results returns the runs so far by trigger and whether they read the whole source.
func (s *served) results() []*reconcile.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*reconcile.Result(nil), s.runs...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fileCursor is the file feed's cursor for the file's content now.
func fileCursor(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (fe *fileEnv) cursor(t *testing.T) string {
	t.Helper()
	c, _, err := fe.st.Meta(context.Background(), reconcile.CursorKey("file"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFeedCursorResumedAfterRestart: a change seen through the file feed reaches the target with
// a targeted read, the cursor is saved once it has, and a restarted feed resumes from it (no
// full read when nothing changed meanwhile, a full read, logged with its reason, when the file
// changed while nobody watched).
func TestFeedCursorResumedAfterRestart(t *testing.T) {
	d := nestedCompany()
	fe := newFileEnv(t, d, plan.Options{})
	s := serveFeed(t, fe, time.Hour, 10*time.Millisecond)
	eventually(t, "the initial full run", func() bool { return len(s.results()) == 1 && fe.cursor(t) != "" })

	d.user("u1", "alice", "Director")
	d.write(t, fe.path)
	eventually(t, "alice's new title", func() bool { return fe.view().Users["alice@example.com"] != "" && len(s.results()) == 2 })
	run := s.results()[1]
	if run.Trigger != reconcile.TriggerFeed || run.Only == nil || run.Counts.Updated != 1 {
		t.Errorf("feed run trigger %s only %v counts %+v, want feed, targeted, 1 update", run.Trigger, run.Only, run.Counts)
	}
	if n := fe.src.reads.Load(); n != 1 {
		t.Errorf("full source reads %d, want the initial one only", n)
	}
	saved := fileCursor(t, fe.path)
	eventually(t, "the cursor of the edit", func() bool { return fe.cursor(t) == saved })
	s.stop()

	// Restart with nothing changed: the feed resumes from the saved cursor; no fallback.
	s = serveFeed(t, fe, time.Hour, 10*time.Millisecond)
	eventually(t, "the restart's initial run", func() bool { return len(s.results()) == 1 })
	eventually(t, "the feed watching", func() bool { return s.feed.Status().State == reconcile.FeedWatching })
	time.Sleep(100 * time.Millisecond)
	if st := s.feed.Status(); st.Fallbacks != 0 || fe.cursor(t) != saved {
		t.Errorf("after a restart with no change: fallbacks %d (%s), cursor moved %v", st.Fallbacks, st.LastFallback, fe.cursor(t) != saved)
	}
	s.stop()

	// Restart after an edit made while stopped: a full read, and the reason shown.
	d.user("u2", "bob", "Director")
	d.write(t, fe.path)
	s = serveFeed(t, fe, time.Hour, 10*time.Millisecond)
	eventually(t, "the fallback", func() bool { return s.feed.Status().Fallbacks == 1 })
	eventually(t, "a new cursor", func() bool { return fe.cursor(t) != saved })
	if st := s.feed.Status(); st.LastFallback != "the directory file changed while the feed was stopped" {
		t.Errorf("fallback reason %q", st.LastFallback)
	}
}

// TestFeedExpiredCursorReadsEverything: a cursor the feed refuses is dropped, a full read runs,
// and the feed starts afresh and saves a cursor of its own.
func TestFeedExpiredCursorReadsEverything(t *testing.T) {
	fe := newFileEnv(t, nestedCompany(), plan.Options{})
	if err := fe.st.SetMeta(context.Background(), reconcile.CursorKey("file"), "usn:12345"); err != nil {
		t.Fatal(err)
	}
	s := serveFeed(t, fe, time.Hour, 10*time.Millisecond)
	eventually(t, "a cursor of the file feed", func() bool { c := fe.cursor(t); return len(c) > 7 && c[:7] == "sha256:" })
	// The fallback's full run may be the initial one, when it asked before that began.
	eventually(t, "the fallback covered", func() bool { return s.feed.Status().CursorAge(time.Now()) == 0 && len(s.results()) >= 1 })
	st := s.feed.Status()
	if st.Fallbacks != 1 || st.LastFallback == "" {
		t.Errorf("fallbacks %d (%q), want 1 with a reason", st.Fallbacks, st.LastFallback)
	}
	for _, r := range s.results() {
		if r.Only != nil {
			t.Errorf("run %d (%s) was targeted, want full reads only", r.RunID, r.Trigger)
		}
	}
}

// TestFeedBurstIsCoalesced: 1,000 changes written in 25 quick edits of 40 users each (the SCIM listing of the emulator, like Identity Center, pages at 50) become a few runs, and the
// target ends equal to the file.
func TestFeedBurstIsCoalesced(t *testing.T) {
	d := newFdir()
	for i := range 40 {
		d.user(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i), "Engineer")
	}
	fe := newFileEnv(t, d, plan.Options{})
	s := serveFeed(t, fe, time.Hour, time.Second)
	eventually(t, "the initial full run", func() bool { return len(s.results()) == 1 && fe.cursor(t) != "" })
	for edit := range 25 {
		for i := range 40 {
			d.user(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i), fmt.Sprintf("Title %d", edit))
		}
		d.write(t, fe.path)
		time.Sleep(40 * time.Millisecond)
	}
	final := fileCursor(t, fe.path)
	eventually(t, "every change applied", func() bool {
		return fe.cursor(t) == final && s.feed.Status().CursorAge(time.Now()) == 0
	})
	if p := fe.fullPlan(t); !p.Empty() {
		t.Errorf("after the burst a full run plans %+v", p.Summarize(100))
	}
	runs := len(s.results()) - 1
	s.mu.Lock()
	changes := len(s.latency)
	s.mu.Unlock()
	t.Logf("%d changes applied in %d runs", changes, runs)
	// The feed itself merges edits it sees within a few milliseconds, so it may deliver fewer.
	if changes < 40 || runs > 6 || runs < 1 {
		t.Errorf("%d changes applied in %d runs, want at least 40 in 1 to 6", changes, runs)
	}
}

// TestFeedFailureFallsBackToSchedule: while the feed cannot run (the file is gone), the scheduled
// full runs go on, fail to read the source and delete nothing; once the file is back the feed
// restarts by itself and a full read catches up with what changed meanwhile.
func TestFeedFailureFallsBackToSchedule(t *testing.T) {
	d := nestedCompany()
	fe := newFileEnv(t, d, plan.Options{})
	s := serveFeed(t, fe, 200*time.Millisecond, 10*time.Millisecond)
	eventually(t, "the initial run", func() bool { return len(s.results()) >= 1 && fe.cursor(t) != "" })
	before := fe.view()
	s.stop()
	if err := os.Remove(fe.path); err != nil {
		t.Fatal(err)
	}
	s = serveFeed(t, fe, 200*time.Millisecond, 10*time.Millisecond)
	eventually(t, "the feed failing", func() bool { return s.feed.Status().Restarts >= 2 })
	eventually(t, "two failed scheduled runs", func() bool {
		n := 0
		for _, r := range s.results() {
			if r.Trigger == reconcile.TriggerSchedule && r.Result == reconcile.ResultFailed {
				n++
			}
		}
		return n >= 2
	})
	if st := s.feed.Status(); st.State == reconcile.FeedWatching || st.LastError == "" {
		t.Errorf("feed state %s (%q), want failed (or restarting) with the reason", st.State, st.LastError)
	}
	if after := fe.view(); len(after.Users) != len(before.Users) || len(after.Groups) != len(before.Groups) {
		t.Errorf("the target lost objects while the feed was failing: %d users, %d groups, had %d and %d",
			len(after.Users), len(after.Groups), len(before.Users), len(before.Groups))
	}
	d.user("u6", "frank", "Director")
	d.write(t, fe.path)
	eventually(t, "the feed back", func() bool { return s.feed.Status().State == reconcile.FeedWatching })
	eventually(t, "frank's title", func() bool { return fe.fullPlan(t).Empty() })
}

var _ connectors.FeedSource = (*countingSource)(nil)

// refusing is the SCIM client with updates of one user refused while on is set: a record the
// target keeps refusing.
type refusing struct {
	reconcile.Target
	ext string
	on  atomic.Bool
}

func (r *refusing) ReplaceUser(ctx context.Context, id string, u scim.User, managerID string) error {
	if r.on.Load() && u.ExternalID == r.ext {
		return errors.New("refused by the test")
	}
	return r.Target.ReplaceUser(ctx, id, u, managerID)
}

// TestFeedCursorMovesPastARefusedRecord: a change-feed run in which one record fails (partial)
// still moves the cursor on, so that a record the target keeps refusing does not hold it back
// forever; its latency is not counted as applied, and the refused record is applied by a later
// change-feed run once the target takes it (it stays selected until a run applies everything).
func TestFeedCursorMovesPastARefusedRecord(t *testing.T) {
	d := nestedCompany()
	fe := newFileEnv(t, d, plan.Options{})
	ref := &refusing{Target: fe.client, ext: "u1"}
	fe.r = fe.reconciler(func(c *reconcile.Config) {
		c.Desired, c.Targeted, c.DesiredNormalized, c.Plan = fe.ds.Desired, fe.ds.Targeted, true, fe.opts
		c.OnApplied = fe.ds.MarkApplied
		c.Logger = testLogger()
		c.FullReconcileEvery = time.Hour
		c.Target = ref
	})
	s := serveFeed(t, fe, time.Hour, 10*time.Millisecond)
	eventually(t, "the initial full run", func() bool { return len(s.results()) == 1 && fe.cursor(t) != "" })

	ref.on.Store(true)
	d.user("u1", "alice", "Director")
	d.user("u2", "bob", "Director")
	d.write(t, fe.path)
	saved := fileCursor(t, fe.path)
	eventually(t, "the cursor of the edit", func() bool { return fe.cursor(t) == saved })
	eventually(t, "the partial run", func() bool {
		for _, r := range s.results() {
			if r.Trigger == reconcile.TriggerFeed && r.Only != nil && r.Result == reconcile.ResultPartial {
				return true
			}
		}
		return false
	})
	if st := s.feed.Status(); st.CursorAge(time.Now()) != 0 {
		t.Errorf("cursor age %s after a partial run, want 0 (covered)", st.CursorAge(time.Now()))
	}
	s.mu.Lock()
	measured := len(s.latency)
	s.mu.Unlock()
	if measured != 0 {
		t.Errorf("%d latencies measured for a partial run, want none", measured)
	}

	ref.on.Store(false)
	d.user("u3", "carol", "Director")
	d.write(t, fe.path)
	eventually(t, "alice applied by a later change-feed run", func() bool { return fe.fullPlan(t).Empty() })
	if n := fe.src.reads.Load(); n > 2 {
		t.Errorf("full source reads %d, want the initial one and at most the partial run's retry", n)
	}
}
