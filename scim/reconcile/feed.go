package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim/state"
)

// Feed states, as FeedStatus.State reports them.
const (
	FeedStarting = "starting"
	FeedWatching = "watching"
	FeedFailed   = "failed" // waiting to restart; the scheduled full runs go on
	FeedStopped  = "stopped"
)

// FeedRunnerConfig configures a FeedRunner.
type FeedRunnerConfig struct {
	// Source names the source in logs, metrics and the cursor's state key ("file", "ldap", ...).
	Source string
	// Open opens the source's feed (connectors.FeedSource.Feed).
	Open func(ctx context.Context) (connectors.Feed, error)
	// Controller runs what the feed asks for.
	Controller *Controller
	// State keeps the cursor (meta key "feed_cursor/<Source>").
	State state.Store
	// Window is the batching window: a batch's run waits this long for more batches (2 s).
	Window time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed feed is opened again (1 s, 5 min).
	MinBackoff, MaxBackoff time.Duration
	// OnApplied, when set, is told the change-to-apply latency of every change a run covered.
	OnApplied func(source string, latency time.Duration)
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// FeedStatus is what the status page and /metrics show of a feed.
type FeedStatus struct {
	Source string
	State  string
	// LastError is why the feed last failed ("" when it has not).
	LastError string
	// LastBatch is when the last batch with changes arrived, and how many changes it had.
	LastBatch        time.Time
	LastBatchChanges int
	// CursorSaved is when the cursor was last saved; Behind is when the oldest batch not yet
	// covered by a successful run arrived (zero when every batch is covered).
	CursorSaved time.Time
	Behind      time.Time
	// Fallbacks counts full reads the feed caused (a lost place, a failed run) and restarts
	// the failures of the feed itself; LastFallback says why the last full read happened.
	Fallbacks    int
	LastFallback string
	Restarts     int
}

// CursorAge is how long the oldest change not yet covered by the saved cursor has waited (0
// when the saved cursor covers everything the feed delivered).
func (s FeedStatus) CursorAge(now time.Time) time.Duration {
	if s.Behind.IsZero() {
		return 0
	}
	return now.Sub(s.Behind)
}

// FeedRunner runs a source's change feed for serve: each batch becomes a change-feed run through
// the Controller (coalesced with other requests within the batching window), and the batch's
// cursor is saved in the state store once a run that covers it succeeded, so that a restart
// resumes where the applied changes end (at least once). A batch that says the feed lost its
// place, or a cursor the source no longer accepts, asks for a full run, logged as a warning with
// the reason. A feed that fails is opened again with backoff; the scheduled full runs go on
// meanwhile, and nothing is ever deleted because of a failure.
type FeedRunner struct {
	cfg FeedRunnerConfig
	log *slog.Logger

	mu      sync.Mutex
	status  FeedStatus
	gen     int
	seq     int
	batches []*feedBatch // delivered and not yet covered, in order
}

type feedBatch struct {
	seq     int
	cursor  string
	arrived time.Time
	at      []time.Time // each change's time (the arrival when the source gave none)
	done    bool
	gen     int
}

// NewFeedRunner returns a FeedRunner; call Run.
func NewFeedRunner(cfg FeedRunnerConfig) (*FeedRunner, error) {
	if cfg.Open == nil || cfg.Controller == nil || cfg.State == nil || cfg.Source == "" {
		return nil, errors.New("reconcile: FeedRunnerConfig needs Source, Open, Controller and State")
	}
	if cfg.Window < 0 {
		return nil, errors.New("reconcile: FeedRunnerConfig.Window must not be negative")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Minute, cfg.MinBackoff)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("feed", cfg.Source)
	return &FeedRunner{cfg: cfg, log: log, status: FeedStatus{Source: cfg.Source, State: FeedStarting}}, nil
}

// CursorKey is the state store's meta key of a source's feed cursor.
func CursorKey(source string) string { return "feed_cursor/" + source }

// Status returns the feed's state for the status page and metrics.
func (f *FeedRunner) Status() FeedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.status
	for _, b := range f.batches {
		if !b.done {
			s.Behind = b.arrived
			break
		}
	}
	return s
}

// Run watches the feed until ctx ends, opening it again with backoff after a failure.
func (f *FeedRunner) Run(ctx context.Context) error {
	backoff := f.cfg.MinBackoff
	for ctx.Err() == nil {
		cursor, _, err := f.cfg.State.Meta(ctx, CursorKey(f.cfg.Source))
		if err != nil {
			err = fmt.Errorf("read the saved cursor: %w", err)
		} else {
			f.mu.Lock()
			f.gen++
			f.batches = nil // a new watch starts after the saved cursor; older batches no longer move it
			f.status.State = FeedStarting
			f.mu.Unlock()
			started := f.cfg.Now()
			err = f.watch(ctx, cursor)
			if f.cfg.Now().Sub(started) > f.cfg.MaxBackoff {
				backoff = f.cfg.MinBackoff // it ran well for a while
			}
		}
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, connectors.ErrCursorExpired) {
			f.log.Warn("change feed cursor no longer accepted: reading the whole source and starting the feed afresh", "err", err)
			if err := f.cfg.State.SetMeta(context.WithoutCancel(ctx), CursorKey(f.cfg.Source), ""); err != nil {
				f.log.Error("clear the feed cursor", "err", err)
			}
			f.fallback(fmt.Sprintf("cursor no longer accepted: %v", err), nil)
			continue
		}
		if err == nil {
			err = errors.New("the feed ended")
		}
		f.mu.Lock()
		f.status.State, f.status.LastError = FeedFailed, err.Error()
		f.status.Restarts++
		f.mu.Unlock()
		f.log.Warn("change feed failed; the scheduled full runs go on; opening it again", "err", err, "in", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
	f.mu.Lock()
	f.status.State = FeedStopped
	f.mu.Unlock()
	return nil
}

func (f *FeedRunner) watch(ctx context.Context, cursor string) error {
	feed, err := f.cfg.Open(ctx)
	if err != nil {
		return fmt.Errorf("open the change feed: %w", err)
	}
	defer feed.Close()
	f.mu.Lock()
	gen := f.gen
	f.mu.Unlock()
	// The feed is watching once it delivered a batch, or has run for a second without failing.
	t := time.AfterFunc(time.Second, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.gen == gen && f.status.State == FeedStarting {
			f.status.State = FeedWatching
		}
	})
	defer t.Stop()
	f.log.Info("change feed started", "resuming", cursor != "")
	return feed.Watch(ctx, cursor, func(b connectors.ChangeBatch) error { return f.deliver(ctx, gen, b) })
}

// deliver turns one batch into a run request.
func (f *FeedRunner) deliver(ctx context.Context, gen int, b connectors.ChangeBatch) error {
	now := f.cfg.Now()
	f.mu.Lock()
	f.seq++
	fb := &feedBatch{seq: f.seq, cursor: b.Cursor, arrived: now, gen: gen}
	for _, c := range b.Changes {
		at := c.At
		if at.IsZero() {
			at = now
		}
		fb.at = append(fb.at, at)
	}
	f.batches = append(f.batches, fb)
	if f.gen == gen {
		f.status.State = FeedWatching
	}
	if len(b.Changes) > 0 {
		f.status.LastBatch, f.status.LastBatchChanges = now, len(b.Changes)
	}
	f.mu.Unlock()
	switch {
	case b.Full:
		reason := b.Reason
		if reason == "" {
			reason = "the feed lost its place"
		}
		f.log.Warn("change feed lost its place: reading the whole source", "reason", reason)
		f.fallback(reason, fb)
	case len(b.Changes) == 0:
		f.covered(ctx, []*feedBatch{fb}, now, true)
	default:
		f.log.Debug("change feed batch", "changes", len(b.Changes))
		f.cfg.Controller.Request(now, Request{
			Trigger: TriggerFeed,
			Changes: new(ChangesOf(b.Changes)),
			Window:  f.window(),
			Done:    func(res *Result, err error) { f.ran(ctx, fb, res, err, true) },
		})
	}
	return nil
}

// window is the batching window of the feed's requests; at least a millisecond, so that the
// controller's MinGap (meant for webhooks) does not apply to them.
func (f *FeedRunner) window() time.Duration { return max(f.cfg.Window, time.Millisecond) }

// fallback asks for a full run, which covers fb (when set) once it succeeds.
func (f *FeedRunner) fallback(reason string, fb *feedBatch) {
	f.mu.Lock()
	f.status.Fallbacks++
	f.status.LastFallback = reason
	f.mu.Unlock()
	req := Request{Trigger: TriggerFeed, Window: f.window()}
	if fb != nil {
		req.Done = func(res *Result, err error) { f.ran(context.Background(), fb, res, err, false) }
	}
	f.cfg.Controller.Request(f.cfg.Now(), req)
}

// ran is told how the run serving fb ended. A failed change-feed run asks for one full run
// (retry); when that fails too, the scheduled full runs (RunFinished) cover the batch later.
//
// A partial run (some records failed) covers its batch too, without measuring its latency: the
// records that failed are retried by every run until they succeed (the state store keeps what
// was really written, and the change-feed runs select them again), and serve begins with a full
// run after a restart, so a record the target keeps refusing must not hold the cursor back
// forever.
func (f *FeedRunner) ran(ctx context.Context, fb *feedBatch, res *Result, err error, retry bool) {
	if err == nil && res != nil && res.Result == ResultSuccess {
		f.covered(ctx, []*feedBatch{fb}, res.Ended, true)
		return
	}
	if res != nil && res.Result == ResultPartial {
		f.covered(ctx, []*feedBatch{fb}, res.Ended, false)
	}
	if !retry {
		return
	}
	f.log.Warn("change-feed run did not succeed; asking for a full run", "err", err)
	f.fallback("a change-feed run did not succeed", nil)
}

// RunFinished is told about every run the controller ran (chain it into
// ControllerConfig.OnFinish): a successful full real run covers every batch that arrived
// before it started.
func (f *FeedRunner) RunFinished(opts RunOptions, res *Result, err error) {
	if res == nil || (res.Result != ResultSuccess && res.Result != ResultPartial) || opts.DryRun || res.Only != nil {
		return
	}
	f.mu.Lock()
	var bs []*feedBatch
	for _, b := range f.batches {
		if !b.done && b.arrived.Before(res.Started) {
			bs = append(bs, b)
		}
	}
	f.mu.Unlock()
	if len(bs) > 0 {
		f.covered(context.Background(), bs, res.Ended, res.Result == ResultSuccess)
	}
}

// covered marks batches applied, measures their latency (when measure is set) and saves the
// cursor of the longest run of applied batches from the oldest.
func (f *FeedRunner) covered(ctx context.Context, bs []*feedBatch, at time.Time, measure bool) {
	f.mu.Lock()
	var lat []time.Duration
	for _, b := range bs {
		if b.done {
			continue
		}
		b.done = true
		if !measure {
			continue
		}
		for _, t := range b.at {
			lat = append(lat, max(at.Sub(t), 0))
		}
	}
	cursor := ""
	gen := f.gen
	n := 0
	for n < len(f.batches) && f.batches[n].done {
		if c := f.batches[n].cursor; c != "" && f.batches[n].gen == gen {
			cursor = c
		}
		n++
	}
	f.batches = f.batches[n:]
	f.mu.Unlock()
	if f.cfg.OnApplied != nil {
		for _, d := range lat {
			f.cfg.OnApplied(f.cfg.Source, d)
		}
	}
	if cursor == "" {
		return
	}
	if err := f.cfg.State.SetMeta(context.WithoutCancel(ctx), CursorKey(f.cfg.Source), cursor); err != nil {
		f.log.Error("save the feed cursor", "err", err)
		return
	}
	f.mu.Lock()
	f.status.CursorSaved = f.cfg.Now()
	f.mu.Unlock()
}
