// Package reconcile runs scimbridge: it reads the desired state, reads (or trusts) the target's
// current state, plans, checks the safety guards and applies the changes through a SCIM client,
// recording what it owns and what each run did in the state store. Dry-run is decided here and
// nowhere else.
//
// Ownership across runs:
//
//   - After every full read (of a whole, untargeted, not dry run) the state store records the
//     target objects scimbridge does not own (id, externalId, userName or displayName). A run
//     that trusts the state store plans against its owned objects plus these, so it reports the
//     same clashes as a full read, plans no create into them and makes no request when nothing
//     changed. A trusted plan that would adopt or claim reads the target and plans again.
//   - A create answered 409 looks the object up by externalId. It is claimed (the create went
//     through and its answer was lost) only when this create could have made it: the last full
//     read did not see it as unowned, and the target's creation time (SCIM meta.created,
//     identitystore CreatedAt), when given, is not earlier than the pending intent's time minus
//     plan.ClockSkew (5 minutes). Otherwise, or when the lookup finds nothing, the record is left
//     out as a clash (a problem, not a failure), its pending intent is cleared and the object
//     holding the name or externalId is remembered as unowned (one more lookup by name when
//     the externalId found nothing).
//   - After a full read every pending intent that the plan does not claim is cleared; a create
//     that is still wanted records its intent again, with a new time, before it is sent.
//
// Change feeds (feed.go, targeted.go): a FeedRunner turns a source's change batches into
// controller requests; a change-feed run reads only the changed entries (DirectorySource, over
// the last complete read kept in memory), maps the whole patched directory and applies the
// objects that moved. A selective run that trusts the state store (a change-feed run, or a sync
// naming objects) loads and plans only the slice of the state its selection can touch (slice.go).
// The cursor is saved once a run covering its batch succeeded (or applied all but the records
// that failed); a lost place or a refused cursor means a full read, and a failing feed leaves
// the scheduled full runs to do the work.
package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// Target is what the reconciler needs of a SCIM client; *client.Client implements it.
type Target interface {
	CreateUser(ctx context.Context, u scim.User, managerID string) (string, error)
	ReplaceUser(ctx context.Context, id string, u scim.User, managerID string) error
	SetUserActive(ctx context.Context, id string, active bool) error
	DeleteUser(ctx context.Context, id string) error
	CreateGroup(ctx context.Context, g scim.Group, memberIDs []string) (string, error)
	PatchGroup(ctx context.Context, id string, p client.GroupPatch) error
	DeleteGroup(ctx context.Context, id string) error
	FindUser(ctx context.Context, attr, value string) (*scim.TargetUser, error)
	FindGroup(ctx context.Context, attr, value string) (*scim.TargetGroup, error)
}

var _ Target = (*client.Client)(nil)

// StateReader reads everything a target holds now: *client.Client through SCIM, or
// *client.IdentityStoreReader through the AWS identitystore API.
type StateReader interface {
	ReadState(ctx context.Context) (*scim.TargetState, error)
}

var (
	_ StateReader = (*client.Client)(nil)
	_ StateReader = (*client.IdentityStoreReader)(nil)
)

// DesiredFunc reads the source and returns the desired snapshot. The reconciler normalises it
// (scim.Normalize), since the plan relies on it, unless Config.DesiredNormalized says the source
// already did.
// It returns an error when any part of the read failed: the run then stops before planning.
type DesiredFunc func(ctx context.Context) (scim.Snapshot, error)

// Config wires a Reconciler.
type Config struct {
	// Desired reads the source.
	Desired DesiredFunc
	// Targeted, when set, serves change-feed runs (RunOptions.Changes): it reads the changed
	// entries alone (DirectorySource.Targeted).
	Targeted TargetedFunc
	// OnApplied, when set, is called at the end of a real run that applied all of its plan (a
	// full one, or a change-feed run's): DirectorySource.MarkApplied.
	OnApplied func()
	// DesiredNormalized is true when Desired returns what scim.Normalize made (as
	// connectors.Mapping.Apply does): the reconciler then does not normalise it a second time.
	DesiredNormalized bool
	// Target writes to the target.
	Target Target
	// Reader reads the target's whole current state (the SCIM client, or the identitystore
	// reader when AWS credentials are configured).
	Reader StateReader
	// State is the state store.
	State state.Store
	// Plan and Guards steer planning.
	Plan   plan.Options
	Guards plan.Guards
	// MaxMembersPerRequest is the target's limit of membership changes per request (100).
	MaxMembersPerRequest int
	// Concurrency is how many write requests may be in flight at once (the limiter in the client
	// sets the pace); 0 means 16.
	Concurrency int
	// FullReconcileEvery is how often a run reads the whole target rather than trusting the
	// state store's record of what scimbridge wrote; 0 reads the target on every run.
	FullReconcileEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the run's log lines; nil discards.
	Logger *slog.Logger
	// Progress, when set, is told how many planned changes are done out of how many.
	Progress func(done, total int)
	// OnPlan, when set, is called with the plan once the guards have passed, before anything is
	// written (and in a dry run, instead of writing).
	OnPlan func(p *plan.Plan)
	// OnRunStart, when set, is told the id of each run as it is recorded, before anything is read
	// (the state lock records it for the message a waiting writer gets).
	OnRunStart func(runID int64)
	// After, when set, is a further phase of every run (see AfterFunc).
	After AfterFunc
	// BeforeApply, when set, checks the further phase before the users and groups are written:
	// it is called as a dry run of After (DryRun set, Plan the plan about to be applied) when a
	// run is about to write users or groups, and its *plan.BlockedError blocks the run before
	// anything is written. After still runs, and checks again, once they are applied.
	BeforeApply AfterFunc
}

// Reconciler runs syncs. RunOnce may be called from one goroutine at a time.
type Reconciler struct {
	cfg Config
	log *slog.Logger
	// wholePlan plans selective runs from the whole source and state store (the tests' oracle
	// for the slices).
	wholePlan bool
}

// New returns a Reconciler.
func New(cfg Config) (*Reconciler, error) {
	var missing []error
	if cfg.Desired == nil {
		missing = append(missing, errors.New("reconcile: Config.Desired is required"))
	}
	if cfg.Target == nil {
		missing = append(missing, errors.New("reconcile: Config.Target is required"))
	}
	if cfg.Reader == nil {
		missing = append(missing, errors.New("reconcile: Config.Reader is required"))
	}
	if cfg.State == nil {
		missing = append(missing, errors.New("reconcile: Config.State is required"))
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	if cfg.MaxMembersPerRequest <= 0 {
		cfg.MaxMembersPerRequest = 100
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Plan.MaxMembersPerRequest = cfg.MaxMembersPerRequest
	return &Reconciler{cfg: cfg, log: log}, nil
}

// RunOptions steer one run.
type RunOptions struct {
	// Trigger names what started the run (cli, schedule, webhook, manual).
	Trigger string
	// DryRun plans and reports without writing anything to the target.
	DryRun bool
	// AllowDeletes lets the guards pass a run that deprovisions at most this many objects.
	AllowDeletes int
	// AllowClears and AllowEmptySource add to the configured guards' (see plan.Guards).
	AllowClears      []string
	AllowEmptySource bool
	// FullRead reads the whole target even when the state store is trusted.
	FullRead bool
	// Only, when set and not empty, makes a targeted sync: the run plans as usual and then applies
	// only the changes that touch these objects (see Selection), with the same guards.
	Only *Selection
	// Changes, when set, makes a change-feed run: Config.Targeted reads only these entries and
	// names the objects to apply (see targeted.go); without Config.Targeted, or when it has no
	// complete read to patch, the run reads the whole source and applies everything.
	Changes *Changes
}

// Run results, as recorded in the run history.
const (
	ResultSuccess = state.ResultSuccess
	ResultFailed  = state.ResultFailed
	ResultBlocked = state.ResultBlocked
	ResultPartial = state.ResultPartial
)

// Result is what a run did.
type Result struct {
	RunID   int64
	Trigger string
	DryRun  bool
	// Result is success, partial (some records failed and will be retried), blocked or failed.
	Result string
	// Plan is the plan the run computed (nil when the source or target could not be read).
	Plan *plan.Plan
	// FullRead tells whether the target was read, or the state store trusted.
	FullRead bool
	// Only is the selection of a targeted sync; nil for a full one.
	Only   *Selection
	Counts state.Counts
	// Errors lists what failed, one line per record.
	Errors []string
	// AfterSummary is what Config.After added to the plan recorded in the history.
	AfterSummary string
	Started      time.Time
	Ended        time.Time
	Duration     time.Duration
}

// ErrSourceRead wraps a failed read of the source; ErrTargetRead a failed read of the target.
var (
	ErrSourceRead = errors.New("source read failed; nothing was planned or changed")
	ErrTargetRead = errors.New("target read failed; nothing was changed")
	// ErrPartial is returned when the run applied its plan but some records failed.
	ErrPartial = errors.New("some changes failed; they are retried on the next run")
)

const metaLastFullRead = "last_full_read"

// RunOnce runs one sync: read the source, read or trust the target, plan, check the guards and,
// unless it is a dry run, apply. The run is recorded in the history whatever happens. The error is
// ErrSourceRead or ErrTargetRead wrapped, a *plan.BlockedError, ErrPartial, or another failure.
func (r *Reconciler) RunOnce(ctx context.Context, opts RunOptions) (*Result, error) {
	if opts.Trigger == "" {
		opts.Trigger = "cli"
	}
	started := r.cfg.Now()
	if opts.Only != nil && opts.Only.Empty() {
		opts.Only = nil
	}
	res := &Result{Trigger: opts.Trigger, DryRun: opts.DryRun, Started: started, Only: opts.Only}
	id, err := r.cfg.State.StartRun(ctx, opts.Trigger, opts.DryRun, started)
	if err != nil {
		return nil, fmt.Errorf("reconcile: record run start: %w", err)
	}
	res.RunID = id
	if r.cfg.OnRunStart != nil {
		r.cfg.OnRunStart(id)
	}
	log := r.log.With("run_id", id, "trigger", opts.Trigger, "dry_run", opts.DryRun)
	if opts.Only != nil {
		log = log.With("only", opts.Only.String())
	}
	log.Info("run started")

	runErr := r.run(ctx, log, opts, res)

	res.Ended = r.cfg.Now()
	res.Duration = res.Ended.Sub(started)
	var blocked *plan.BlockedError
	switch {
	case runErr == nil:
		res.Result = ResultSuccess
	case errors.As(runErr, &blocked):
		res.Result = ResultBlocked
		res.Errors = append(res.Errors, runErr.Error())
	case errors.Is(runErr, ErrPartial):
		res.Result = ResultPartial
	default:
		res.Result = ResultFailed
		res.Errors = append(res.Errors, runErr.Error())
	}
	var b bytes.Buffer
	switch {
	case res.Only != nil && res.Only.Empty():
		b.WriteString("Targeted sync: the changes moved no object.\n")
	case res.Only != nil:
		fmt.Fprintf(&b, "Targeted sync of %s.\n", res.Only)
	}
	if res.Plan != nil {
		_ = res.Plan.WriteText(&b, r.cfg.MaxMembersPerRequest)
	}
	if res.AfterSummary != "" {
		b.WriteString("\n" + res.AfterSummary)
	}
	summary := b.String()
	// The run is recorded even when the caller's context is done (SIGTERM mid-run).
	if err := r.cfg.State.FinishRun(context.WithoutCancel(ctx), id, res.Result, res.Counts, res.Errors, summary, res.Ended); err != nil {
		log.Error("record run end", "err", err)
		if runErr == nil {
			runErr = fmt.Errorf("reconcile: record run end: %w", err)
		}
	}
	if c := res.Counts; opts.DryRun { // nothing was written: say what was planned
		log.Info("run finished", "result", res.Result, "duration", res.Duration.Round(time.Millisecond),
			"planned_creates", c.Created, "planned_updates", c.Updated, "planned_deletes", c.Deleted,
			"planned_disables", c.Disabled, "planned_member_adds", c.MemberAdds,
			"planned_member_removes", c.MemberRemoves, "skipped", c.Skipped)
	} else {
		log.Info("run finished", "result", res.Result, "duration", res.Duration.Round(time.Millisecond),
			"created", c.Created, "updated", c.Updated, "deleted", c.Deleted,
			"disabled", c.Disabled, "member_adds", c.MemberAdds,
			"member_removes", c.MemberRemoves, "failed", c.Failed, "skipped", c.Skipped)
	}
	return res, runErr
}

func (r *Reconciler) run(ctx context.Context, log *slog.Logger, opts RunOptions, res *Result) error {
	desired, only, targeted, err := r.readSource(ctx, log, opts)
	if err != nil {
		log.Error("source read failed", "err", err)
		return fmt.Errorf("%w: %w", ErrSourceRead, err)
	}
	if !r.cfg.DesiredNormalized {
		desired = scim.Normalize(desired)
	}
	for _, p := range desired.Skipped {
		log.Warn("record skipped", "kind", p.Kind, "id", p.ID, "field", p.Field, "reason", p.Reason)
	}

	known, err := loadPending(ctx, r.cfg.State)
	if err != nil {
		return err
	}
	full, why := r.needFullRead(ctx, opts, known)
	res.FullRead = full
	// A selective run that trusts the state store plans only its slice (slice.go).
	var sl *slice
	if !full && only != nil && !r.wholePlan {
		if sl, err = sliceFor(ctx, r.cfg.State, desired, *only); err != nil {
			return err
		}
		known.related = sl.related()
	}
	pt, memberships := sl.owned()
	if err := known.loadOwned(ctx, r.cfg.State, pt, memberships); err != nil {
		return err
	}
	var current scim.TargetState
	if full {
		log.Info("reading the target", "why", why)
		cur, err := r.cfg.Reader.ReadState(ctx)
		if err != nil {
			log.Error("target read failed", "err", err)
			return fmt.Errorf("%w: %w", ErrTargetRead, err)
		}
		current = *cur
	} else {
		current = known.trustedState()
	}

	var p *plan.Plan
	if sl != nil {
		p = plan.Compute(sl.desired, current, known.owned(), r.cfg.Plan)
		sl.totals(p, known)
	} else {
		p = plan.Compute(desired, current, known.owned(), r.cfg.Plan)
	}
	if !full && (p.Adoptions() > 0 || len(p.Claims) > 0) {
		// Taking an object over needs it as the target holds it now, not as the last full read
		// saw its name: read the target and plan again, the whole source (adoption by name
		// weighs every source record).
		log.Info("reading the target", "why", "the plan adopts objects the last full read saw")
		full, sl = true, nil
		res.FullRead = true
		cur, err := r.cfg.Reader.ReadState(ctx)
		if err != nil {
			log.Error("target read failed", "err", err)
			return fmt.Errorf("%w: %w", ErrTargetRead, err)
		}
		current = *cur
		if known, err = loadKnown(ctx, r.cfg.State, nil); err != nil { // trustedState moved its users out
			return err
		}
		p = plan.Compute(desired, current, known.owned(), r.cfg.Plan)
	}
	p.TargetNotRead = !full
	var unowned []state.Unowned
	if full {
		unowned = unownedAfter(current, known, p)
	}
	opts.Only = only
	res.Only = only
	var sc *scope
	if opts.Only != nil {
		sc = newScope(*opts.Only)
		p = sc.filter(p)
		if miss := sc.missing(desired, known); len(miss) > 0 {
			log.Warn("selected objects are neither in the source nor owned; nothing to do for them", "missing", miss)
		}
	}
	res.Plan = p
	res.Counts.Skipped = countDropped(p.Problems)
	if err := r.guards(opts).Check(p); err != nil {
		log.Warn("run blocked by a safety guard", "err", err)
		return err
	}
	if err := r.beforeApply(ctx, log, opts, res, desired, p); err != nil {
		return err
	}
	if r.cfg.OnPlan != nil {
		r.cfg.OnPlan(p)
	}
	if opts.DryRun {
		s := p.Summarize(r.cfg.MaxMembersPerRequest)
		res.Counts = state.Counts{Created: s.CreateUsers + s.CreateGroups, Updated: s.UpdateUsers + s.UpdateGroups,
			Deleted: s.DeleteUsers + s.DeleteGroups, Disabled: s.DisableUsers, MemberAdds: s.AddMembers,
			MemberRemoves: s.RemoveMembers, Skipped: res.Counts.Skipped}
		return r.after(ctx, log, opts, res, desired, p)
	}
	var cur *scim.TargetState
	if full {
		cur = &current
	}
	a := newApplier(r, log, p, known, cur)
	a.scope = sc
	a.part, _ = sl.owned()
	applyErr := a.apply(ctx)
	// Creates that ran into an object made since the last full read are left out like the
	// clashes the plan found.
	p.Clashes = append(p.Clashes, a.clashes...)
	p.Problems = append(p.Problems, a.clashProblems...)
	if len(a.newUnowned) > 0 {
		if err := r.cfg.State.AddUnowned(context.WithoutCancel(ctx), a.newUnowned); err != nil {
			return fmt.Errorf("reconcile: record unowned objects: %w", err)
		}
		unowned = append(unowned, a.newUnowned...)
	}
	res.Counts = a.counts
	res.Counts.Skipped = countDropped(p.Problems)
	res.Errors = a.errs
	if applyErr != nil {
		return applyErr
	}
	// What was loaded for planning is let go before refresh loads the state again: on a large
	// directory both at once would double the run's peak memory.
	known, current, cur, a.k, a.current = nil, scim.TargetState{}, nil, nil, nil
	// A trusted run that changed nothing has nothing to refresh: the plan compared the source
	// with the state itself.
	nothingDone := !full && p.Empty() && len(p.Claims) == 0 && len(p.Forget) == 0 && len(a.clashes) == 0
	if !nothingDone {
		planned := desired
		if sl != nil {
			planned = sl.desired
		}
		if err := a.refresh(context.WithoutCancel(ctx), planned); err != nil {
			return err
		}
	}
	if full && sc == nil {
		// What the read saw of objects scimbridge does not own, for the trusted runs until the next.
		if err := r.cfg.State.ReplaceUnowned(context.WithoutCancel(ctx), unowned); err != nil {
			return fmt.Errorf("reconcile: record unowned objects: %w", err)
		}
	}
	// A targeted run repairs drift only for its selection: the next full read stays due.
	// A stopped run that adopts leaves the adoptions it did not send to a new full read.
	if full && sc == nil && len(a.errs) == 0 && (a.stop.Err() == nil || p.Adoptions() == 0) {
		if err := r.cfg.State.SetMeta(context.WithoutCancel(ctx), metaLastFullRead, r.cfg.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("reconcile: record full read: %w", err)
		}
	}
	var usersErr error
	if len(a.errs) > 0 {
		usersErr = ErrPartial
	}
	if err := a.stopped(); err != nil {
		// A run stopped at a request boundary (a lost leadership, a Lambda's budget) goes no
		// further: the access phase waits for the next run.
		if usersErr != nil {
			return usersErr
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if usersErr == nil && (sc == nil || targeted) && r.cfg.OnApplied != nil {
		r.cfg.OnApplied()
	}
	return joinPartial(usersErr, r.after(ctx, log, opts, res, desired, p))
}

func (r *Reconciler) guards(opts RunOptions) plan.Guards {
	g := r.cfg.Guards
	if opts.AllowDeletes > g.AllowDeletes {
		g.AllowDeletes = opts.AllowDeletes
	}
	g.AllowClears = append(slices.Clip(g.AllowClears), opts.AllowClears...)
	g.AllowEmptySource = g.AllowEmptySource || opts.AllowEmptySource
	return g
}

// needFullRead decides whether this run reads the target or trusts the state store.
func (r *Reconciler) needFullRead(ctx context.Context, opts RunOptions, k *known) (bool, string) {
	switch {
	case opts.FullRead:
		return true, "asked for"
	case r.cfg.FullReconcileEvery <= 0:
		return true, "every run reads the target (full_reconcile_interval is 0)"
	case len(k.pendingUsers) > 0 || len(k.pendingGroups) > 0:
		return true, "creates of an earlier run were left unconfirmed"
	}
	v, ok, err := r.cfg.State.Meta(ctx, metaLastFullRead)
	if err != nil || !ok {
		return true, "no full read recorded yet"
	}
	last, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return true, "the last full read time is unreadable"
	}
	if age := r.cfg.Now().Sub(last); age >= r.cfg.FullReconcileEvery {
		return true, fmt.Sprintf("the last full read is %s old", age.Round(time.Second))
	}
	return false, ""
}

// unownedAfter lists the objects of a full read that scimbridge does not own once the plan's
// claims and adoptions are recorded.
func unownedAfter(current scim.TargetState, k *known, p *plan.Plan) []state.Unowned {
	owned := make(map[string]bool, len(k.users)+len(k.groups))
	for _, o := range k.users {
		owned["user/"+o.TargetID] = true
	}
	for _, o := range k.groups {
		owned["group/"+o.TargetID] = true
	}
	for _, c := range p.Claims {
		owned[c.Kind+"/"+c.ID] = true
	}
	for _, u := range p.UpdateUsers {
		owned["user/"+u.ID] = true
	}
	for _, g := range p.UpdateGroups {
		owned["group/"+g.ID] = true
	}
	var out []state.Unowned
	for _, u := range current.Users {
		if !owned["user/"+u.ID] {
			out = append(out, state.Unowned{Kind: state.KindUser, TargetID: u.ID, ExternalID: u.ExternalID, Name: u.UserName})
		}
	}
	for _, g := range current.Groups {
		if !owned["group/"+g.ID] {
			out = append(out, state.Unowned{Kind: state.KindGroup, TargetID: g.ID, ExternalID: g.ExternalID, Name: g.DisplayName})
		}
	}
	return out
}

func countDropped(ps []scim.Problem) int {
	n := 0
	for _, p := range ps {
		if p.Dropped {
			n++
		}
	}
	return n
}
