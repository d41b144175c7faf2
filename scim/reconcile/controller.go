package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Triggers the controller gives its runs.
const (
	TriggerSchedule = "schedule"
	TriggerWebhook  = "webhook"
	// TriggerFeed is a run asked for by a source's change feed.
	TriggerFeed = "feed"
)

// Clock is the time a Controller reads and waits on; tests pass a fake one and move it.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// SystemClock returns the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

// Runner runs one sync; *Reconciler implements it.
type Runner interface {
	RunOnce(ctx context.Context, opts RunOptions) (*Result, error)
}

var _ Runner = (*Reconciler)(nil)

// Request asks the controller for a run.
type Request struct {
	// Trigger names what asked (webhook, google, manual); "" means webhook.
	Trigger string
	// DryRun asks for a plan only.
	DryRun bool
	// Only names the objects of a targeted sync; empty means everything.
	Only Selection
	// Changes, when set, makes a change-feed run: the entries a source's feed saw change, read
	// alone and patched into the last complete read (see RunOptions.Changes). Requests with
	// Changes coalesce with each other and with Only (whose ids then count as changed); an empty
	// Changes with an empty Only asks for everything, like any request naming nothing.
	Changes *Changes
	// Window is how long the request waits for more requests to coalesce with it, counted from
	// the arrival of the first request of the run (the change feed's batching window). A request
	// with a Window waits it instead of MinGap (unless a request without one joins it).
	Window time.Duration
	// Done, when set, is told how the run that served this request ended (res may be nil). A
	// full run that serves a waiting request tells it too.
	Done func(res *Result, err error)
}

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	// Runner runs the syncs.
	Runner Runner
	// Interval is the time from the end of one full run to the start of the next scheduled one.
	Interval time.Duration
	// Jitter spreads scheduled runs: each wait is Interval plus or minus up to Jitter×Interval.
	// 0 disables it; it is capped at 1.
	Jitter float64
	// MinGap is the least time between the starts of two requested (event-triggered) runs;
	// requests that arrive sooner wait, coalesced into one run.
	MinGap time.Duration
	// Options are the base options of every run (AllowDeletes, FullRead).
	Options RunOptions
	// Clock is the time source; nil means SystemClock().
	Clock Clock
	// Rand returns a number in [0, 1) for the jitter; nil means math/rand/v2.
	Rand func() float64
	// Logger receives the controller's lines; nil discards.
	Logger *slog.Logger
	// OnStart and OnFinish, when set, are told about every run (for metrics and the status page).
	OnStart  func(opts RunOptions)
	OnFinish func(opts RunOptions, res *Result, err error)
}

// Controller runs syncs on an interval with jitter and when asked to (Trigger), at most one at
// a time. Requests that arrive while a run is going on, or within MinGap of the last requested
// run, are coalesced into one follow-up run: the union of their selections, or a full sync when
// any of them asked for everything. A full run (scheduled or requested) also serves every
// waiting request for a real run, and restarts the schedule.
type Controller struct {
	cfg  ControllerConfig
	log  *slog.Logger
	wake chan struct{}

	runMu sync.Mutex // held for the whole of a run

	mu          sync.Mutex
	next        time.Time // next scheduled run; zero before Run starts
	lastEvent   time.Time // start of the last requested run
	pending     *waiting  // a real run requested
	pendingDry  *waiting  // a dry run requested
	running     *RunOptions
	runningFrom time.Time
}

// waiting is a coalesced request.
type waiting struct {
	trigger string
	full    bool
	only    Selection
	changes *Changes
	window  time.Duration
	gap     bool // MinGap applies: a request without a Window joined
	dones   []func(*Result, error)
	since   time.Time
}

// NewController returns a Controller; call Run to start it.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.Runner == nil {
		return nil, errors.New("reconcile: ControllerConfig.Runner is required")
	}
	if cfg.Interval <= 0 {
		return nil, errors.New("reconcile: ControllerConfig.Interval must be positive")
	}
	if cfg.MinGap < 0 {
		return nil, errors.New("reconcile: ControllerConfig.MinGap must not be negative")
	}
	cfg.Jitter = min(max(cfg.Jitter, 0), 1)
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Controller{cfg: cfg, log: log, wake: make(chan struct{}, 1)}, nil
}

// Trigger asks for a sync of sel (everything when sel is empty) as seen at now; it returns at
// once. The run starts when no run is going on and MinGap has passed since the last requested
// run started.
func (c *Controller) Trigger(now time.Time, sel Selection) {
	c.Request(now, Request{Trigger: TriggerWebhook, Only: sel})
}

// Request asks for a run, as Trigger does, with a trigger name and dry-run choice.
func (c *Controller) Request(now time.Time, req Request) {
	if req.Trigger == "" {
		req.Trigger = TriggerWebhook
	}
	c.mu.Lock()
	slot := &c.pending
	if req.DryRun {
		slot = &c.pendingDry
	}
	named := !req.Only.Empty() || (req.Changes != nil && !req.Changes.Empty())
	w := *slot
	if w == nil {
		w = &waiting{trigger: req.Trigger, since: now, full: !named}
		*slot = w
	} else {
		c.log.Debug("run request coalesced", "trigger", req.Trigger, "dry_run", req.DryRun)
	}
	switch {
	case !named:
		w.full, w.only, w.changes = true, Selection{}, nil
	case !w.full:
		w.only = w.only.Merge(req.Only)
		if req.Changes != nil {
			w.changes = w.changes.merge(*req.Changes)
		}
	}
	w.window = max(w.window, req.Window)
	w.gap = w.gap || req.Window == 0
	if req.Done != nil {
		w.dones = append(w.dones, req.Done)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// NextRun returns when the next scheduled run is due (zero before Run has started).
func (c *Controller) NextRun() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// Running returns the options and start of the run going on, if any.
func (c *Controller) Running() (RunOptions, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running == nil {
		return RunOptions{}, time.Time{}, false
	}
	return *c.running, c.runningFrom, true
}

// Pending reports whether a requested run is waiting.
func (c *Controller) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending != nil || c.pendingDry != nil
}

// RunOnce runs one full sync now (waiting for a run going on to end) with the schedule trigger,
// and restarts the schedule from its end.
func (c *Controller) RunOnce(ctx context.Context) (*Result, error) {
	opts := c.cfg.Options
	opts.Trigger = TriggerSchedule
	return c.execute(ctx, opts, nil)
}

// Run runs a full sync at once, then on the schedule and on request, until ctx is done. A run
// going on when ctx is done is cancelled through its context (the reconciler then lets its
// requests in flight finish and records the run) and Run returns once it has.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	c.next = c.cfg.Clock.Now()
	c.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return nil
		}
		opts, dones, wait, ok := c.due(c.cfg.Clock.Now())
		if ok {
			_, _ = c.execute(ctx, opts, dones) // reported through the log and OnFinish
			continue
		}
		t := c.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-c.wake:
			t.Stop()
		}
	}
}

// due picks the run to start at now, or says how long to wait for the next one.
func (c *Controller) due(now time.Time) (RunOptions, []func(*Result, error), time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := c.cfg.Options
	earliest := c.next
	for _, slot := range []**waiting{&c.pending, &c.pendingDry} {
		w := *slot
		if w == nil {
			continue
		}
		at := w.since.Add(w.window)
		if !c.lastEvent.IsZero() && w.gap {
			at = laterOf(at, c.lastEvent.Add(c.cfg.MinGap))
		}
		if !at.After(now) {
			opts.Trigger, opts.DryRun = w.trigger, slot == &c.pendingDry
			switch {
			case w.full:
			case w.changes != nil:
				// A feed run: ids named by other requests are read again like changed ones.
				opts.Changes = w.changes.merge(Changes{Users: w.only.Users, Groups: w.only.Groups})
			default:
				sel := w.only
				opts.Only = &sel
			}
			*slot = nil
			c.lastEvent = now
			return opts, w.dones, 0, true
		}
		earliest = earlierOf(earliest, at)
	}
	if !c.next.After(now) {
		opts.Trigger = TriggerSchedule
		return opts, nil, 0, true
	}
	return RunOptions{}, nil, earliest.Sub(now), false
}

// execute runs once, at most one run at a time, and reschedules after a full real run.
func (c *Controller) execute(ctx context.Context, opts RunOptions, dones []func(*Result, error)) (*Result, error) {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	full := opts.Only == nil && opts.Changes == nil && !opts.DryRun
	c.mu.Lock()
	if full && c.pending != nil {
		// A full run serves every waiting request for a real run.
		c.log.Debug("waiting run request served by this run", "trigger", c.pending.trigger)
		dones = append(dones, c.pending.dones...)
		c.pending = nil
	}
	c.running, c.runningFrom = &opts, c.cfg.Clock.Now()
	c.mu.Unlock()
	if c.cfg.OnStart != nil {
		c.cfg.OnStart(opts)
	}

	res, err := c.cfg.Runner.RunOnce(ctx, opts)

	if c.cfg.OnFinish != nil {
		c.cfg.OnFinish(opts, res, err)
	}
	for _, done := range dones {
		done(res, err)
	}
	end := c.cfg.Clock.Now()
	c.mu.Lock()
	c.running = nil
	if full {
		c.next = end.Add(c.interval())
	}
	next := c.next
	c.mu.Unlock()
	log := c.log.With("trigger", opts.Trigger, "next_run", next)
	if res != nil {
		log = log.With("run_id", res.RunID)
	}
	if err != nil {
		log.Warn("run ended with an error", "err", err)
	} else {
		log.Debug("run ended")
	}
	return res, err
}

// interval returns the wait until the next scheduled run: Interval ± Jitter×Interval.
func (c *Controller) interval() time.Duration {
	j := c.cfg.Jitter * float64(c.cfg.Interval)
	d := time.Duration(float64(c.cfg.Interval) + j*(2*c.cfg.Rand()-1))
	return max(d, time.Millisecond)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlierOf(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
