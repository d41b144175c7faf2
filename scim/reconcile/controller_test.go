package reconcile_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// fakeClock is a Clock that moves only when told. Each timer it creates is announced on created,
// so a test knows the controller is idle and how long it means to wait.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	created chan time.Duration
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	done    bool
	clk     *fakeClock
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), created: make(chan time.Duration, 100)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) reconcile.Timer {
	f.mu.Lock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: f.now.Add(d), clk: f}
	if d <= 0 {
		t.done = true
		t.c <- f.now
	} else {
		f.timers = append(f.timers, t)
	}
	f.mu.Unlock()
	f.created <- d
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.done && !t.stopped
	t.stopped = true
	return was
}

// Advance moves the clock and fires the timers that are due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.done || t.stopped {
			continue
		}
		if !t.at.After(f.now) {
			t.done = true
			t.c <- f.now
			continue
		}
		kept = append(kept, t)
	}
	f.timers = kept
}

// call is one run the fake runner saw.
type call struct {
	At      time.Duration // since the clock's start
	Trigger string
	DryRun  bool
	Only    string
}

// fakeRunner records runs; when gated, each run waits for release (or its context).
type fakeRunner struct {
	clk     *fakeClock
	start   time.Time
	gated   bool
	started chan call
	release chan struct{}

	mu    sync.Mutex
	calls []call
}

func newFakeRunner(clk *fakeClock, gated bool) *fakeRunner {
	return &fakeRunner{clk: clk, start: clk.Now(), gated: gated, started: make(chan call, 100), release: make(chan struct{})}
}

func (r *fakeRunner) RunOnce(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Result, error) {
	c := call{At: r.clk.Now().Sub(r.start), Trigger: opts.Trigger, DryRun: opts.DryRun}
	if opts.Only != nil {
		c.Only = opts.Only.String()
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.started <- c
	if r.gated {
		select {
		case <-r.release:
		case <-ctx.Done():
			return &reconcile.Result{Result: reconcile.ResultFailed}, ctx.Err()
		}
	}
	return &reconcile.Result{Result: reconcile.ResultSuccess}, nil
}

func (r *fakeRunner) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// guard bounds the wait for the controller's goroutine; it is a deadlock guard, not a timing
// assertion: every step the tests check is decided by the fake clock.
const guard = 10 * time.Second

type harness struct {
	t      *testing.T
	clk    *fakeClock
	runner *fakeRunner
	ctrl   *reconcile.Controller
	cancel context.CancelFunc
	done   chan error
}

func startController(t *testing.T, gated bool, mod func(*reconcile.ControllerConfig)) *harness {
	t.Helper()
	clk := newFakeClock()
	runner := newFakeRunner(clk, gated)
	cfg := reconcile.ControllerConfig{Runner: runner, Interval: time.Hour, Clock: clk}
	if mod != nil {
		mod(&cfg)
	}
	ctrl, err := reconcile.NewController(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, clk: clk, runner: runner, ctrl: ctrl, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(guard):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// idle waits until the controller waits on a timer and returns how long it means to wait.
func (h *harness) idle() time.Duration {
	h.t.Helper()
	select {
	case d := <-h.clk.created:
		return d
	case <-time.After(guard):
		h.t.Fatalf("the controller did not go idle; runs so far %+v", h.runner.Calls())
	}
	return 0
}

// started waits for the next run to start.
func (h *harness) started() call {
	h.t.Helper()
	select {
	case c := <-h.runner.started:
		return c
	case <-time.After(guard):
		h.t.Fatalf("no run started; runs so far %+v", h.runner.Calls())
	}
	return call{}
}

func TestControllerIntervalAndJitterBounds(t *testing.T) {
	const interval, jitter = time.Hour, 0.2
	rng := rand.New(rand.NewPCG(1, 2))
	h := startController(t, false, func(c *reconcile.ControllerConfig) {
		c.Interval, c.Jitter, c.Rand = interval, jitter, rng.Float64
	})
	if c := h.started(); c.At != 0 || c.Trigger != reconcile.TriggerSchedule {
		t.Fatalf("first run = %+v, want a scheduled run at once", c)
	}
	lo, hi := time.Duration(float64(interval)*(1-jitter)), time.Duration(float64(interval)*(1+jitter))
	var below, above int
	var at time.Duration
	for i := range 200 {
		wait := h.idle()
		if wait < lo || wait > hi {
			t.Fatalf("wait %d = %s, outside [%s, %s]", i, wait, lo, hi)
		}
		if wait < interval {
			below++
		} else {
			above++
		}
		if !h.ctrl.NextRun().Equal(h.clk.Now().Add(wait)) {
			t.Fatalf("NextRun() = %s, want now + %s", h.ctrl.NextRun(), wait)
		}
		h.clk.Advance(wait)
		at += wait
		if c := h.started(); c.At != at || c.Trigger != reconcile.TriggerSchedule || c.Only != "" {
			t.Fatalf("run %d = %+v, want a full scheduled run at %s", i, c, at)
		}
	}
	if below < 50 || above < 50 {
		t.Errorf("jitter is lopsided: %d waits below the interval, %d above", below, above)
	}
	if n := len(h.runner.Calls()); n != 201 {
		t.Errorf("%d runs, want 201", n)
	}
}

func TestControllerCoalescesTriggersDuringARun(t *testing.T) {
	h := startController(t, true, nil)
	h.started() // the first scheduled run, held open
	h.clk.Advance(time.Second)
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u2"}})
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u1"}, Groups: []string{"g1"}})
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u2"}})
	if !h.ctrl.Pending() {
		t.Fatal("Pending() = false with three triggers waiting")
	}
	if _, _, running := h.ctrl.Running(); !running {
		t.Fatal("Running() = false during a run")
	}
	h.runner.release <- struct{}{}
	c := h.started()
	want := call{At: time.Second, Trigger: reconcile.TriggerWebhook, Only: "users u1, u2; groups g1"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("follow-up run (-want +got):\n%s", diff)
	}
	h.runner.release <- struct{}{}
	// A targeted run does not move the schedule: the next full run is an hour after the first
	// one ended (at 1s).
	if wait := h.idle(); wait != time.Hour {
		t.Errorf("after the follow-up the controller waits %s, want 1h", wait)
	}
	if n := len(h.runner.Calls()); n != 2 {
		t.Errorf("%d runs, want 2 (three triggers coalesced into one): %+v", n, h.runner.Calls())
	}

	// A full trigger swallows the targeted ones waiting with it. Both wait behind a run held
	// open, so that the controller cannot start the first before the second arrives.
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u8"}})
	if c := h.started(); c.Only != "users u8" {
		t.Fatalf("run = %+v, want the targeted run of u8", c)
	}
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u9"}})
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{})
	h.runner.release <- struct{}{}
	c = h.started()
	if c.Only != "" || c.Trigger != reconcile.TriggerWebhook {
		t.Errorf("run after a full trigger = %+v, want a full webhook run", c)
	}
	h.runner.release <- struct{}{}
	if n := len(h.runner.Calls()); n != 4 {
		t.Errorf("%d runs, want 4 (u9 swallowed by the full run): %+v", n, h.runner.Calls())
	}
	if wait := h.idle(); wait != time.Hour {
		t.Errorf("after a full requested run the schedule restarts: wait %s, want 1h", wait)
	}
}

func TestControllerMinGapBetweenTriggeredRuns(t *testing.T) {
	h := startController(t, false, func(c *reconcile.ControllerConfig) { c.MinGap = 30 * time.Second })
	h.started()
	h.idle()
	h.clk.Advance(10 * time.Second)
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u1"}})
	if c := h.started(); c.At != 10*time.Second || c.Only != "users u1" {
		t.Fatalf("first triggered run = %+v, want at once", c)
	}
	h.idle()
	h.clk.Advance(5 * time.Second)
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u2"}})
	if wait := h.idle(); wait != 25*time.Second {
		t.Fatalf("second trigger 5s after the first run: wait %s, want 25s", wait)
	}
	h.clk.Advance(20 * time.Second)
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Users: []string{"u3"}})
	if wait := h.idle(); wait != 5*time.Second {
		t.Fatalf("third trigger: wait %s, want the 5s left of the gap", wait)
	}
	h.clk.Advance(5 * time.Second)
	if c := h.started(); c.At != 40*time.Second || c.Only != "users u2, u3" {
		t.Fatalf("gap run = %+v, want users u2, u3 at 40s", c)
	}
	h.idle()
	// A dry-run request takes its own slot and does not move the schedule.
	h.clk.Advance(time.Minute)
	h.ctrl.Request(h.clk.Now(), reconcile.Request{Trigger: "manual", DryRun: true})
	if c := h.started(); !c.DryRun || c.Trigger != "manual" || c.At != 100*time.Second {
		t.Fatalf("dry run = %+v", c)
	}
	if wait := h.idle(); wait != time.Hour-100*time.Second {
		t.Errorf("after the dry run: wait %s, want the rest of the hour", wait)
	}
}

func TestControllerScheduledRunServesWaitingTriggers(t *testing.T) {
	h := startController(t, false, func(c *reconcile.ControllerConfig) {
		c.Interval, c.MinGap = 20*time.Second, 30*time.Second
	})
	h.started()
	h.idle()
	h.clk.Advance(time.Second)
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{})
	h.started() // at 1s; the schedule restarts: next at 21s
	h.idle()
	h.clk.Advance(time.Second)
	h.ctrl.Trigger(h.clk.Now(), reconcile.Selection{Groups: []string{"g"}}) // waits for the gap (31s)
	if wait := h.idle(); wait != 19*time.Second {
		t.Fatalf("wait %s, want 19s to the scheduled run", wait)
	}
	h.clk.Advance(19 * time.Second)
	if c := h.started(); c.Trigger != reconcile.TriggerSchedule || c.At != 21*time.Second {
		t.Fatalf("run = %+v, want the scheduled one at 21s", c)
	}
	if wait := h.idle(); wait != 20*time.Second {
		t.Errorf("after the scheduled run: wait %s, want 20s (the waiting trigger was served)", wait)
	}
	if n := len(h.runner.Calls()); n != 3 {
		t.Errorf("%d runs, want 3: %+v", n, h.runner.Calls())
	}
}

func TestControllerCancelEndsTheRunningRun(t *testing.T) {
	h := startController(t, true, nil)
	h.started()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run returned %v, want nil on cancel", err)
		}
		h.done <- nil // for the cleanup
	case <-time.After(guard):
		t.Fatal("Run did not return: the run's context was not cancelled")
	}
}

func TestControllerRunOnceAndConfig(t *testing.T) {
	clk := newFakeClock()
	runner := newFakeRunner(clk, false)
	if _, err := reconcile.NewController(reconcile.ControllerConfig{Runner: runner}); err == nil {
		t.Error("NewController without an interval: no error")
	}
	if _, err := reconcile.NewController(reconcile.ControllerConfig{Interval: time.Hour}); err == nil {
		t.Error("NewController without a runner: no error")
	}
	var finished []string
	ctrl, err := reconcile.NewController(reconcile.ControllerConfig{Runner: runner, Interval: time.Hour, Clock: clk,
		OnFinish: func(o reconcile.RunOptions, res *reconcile.Result, err error) {
			finished = append(finished, o.Trigger+" "+res.Result)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"schedule success"}, finished); diff != "" {
		t.Errorf("OnFinish (-want +got):\n%s", diff)
	}
	if !ctrl.NextRun().Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("NextRun() = %s after RunOnce, want an hour later", ctrl.NextRun())
	}
}
