package reconcile

import (
	"context"
	"errors"
	"log/slog"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// AfterFunc is a further phase of a run (access: permission sets and account assignments), run
// once the users and groups are applied, or in a dry run once they are planned, so that it plans
// on top of them. It is skipped when the run is blocked or fails before, and in a targeted sync
// other than a change-feed run that creates, deletes or renames a group (movesGroups).
// Its error sets the run's result as the reconciler's own do: a *plan.BlockedError blocks the
// run, ErrPartial (wrapped) makes it partial, anything else fails it.
type AfterFunc func(ctx context.Context, run *AfterRun) error

// AfterRun is what an AfterFunc sees of the run, and what it adds to it.
type AfterRun struct {
	ID     int64
	DryRun bool
	Log    *slog.Logger
	// Desired is the source as this run mapped it; Plan the users and groups plan (applied unless
	// DryRun).
	Desired scim.Snapshot
	Plan    *plan.Plan
	// Errors are the phase's failed records, one line each, added to the run's errors; Failed
	// counts them in the run's counts.
	Errors []string
	// Summary is text added to the plan recorded in the run history.
	Summary string
	// Counts are the phase's changes (in a dry run, those it would make), recorded in the run's
	// Counts.Access.
	Counts state.AccessCounts
}

// after runs the configured AfterFunc, if any, and folds what it did into the result.
func (r *Reconciler) after(ctx context.Context, log *slog.Logger, opts RunOptions, res *Result, desired scim.Snapshot, p *plan.Plan) error {
	if r.cfg.After == nil || (opts.Only != nil && !(opts.Changes != nil && movesGroups(p))) {
		return nil
	}
	run := &AfterRun{ID: res.RunID, DryRun: opts.DryRun, Log: log, Desired: desired, Plan: p}
	err := r.cfg.After(ctx, run)
	res.Errors = append(res.Errors, run.Errors...)
	res.Counts.Failed += len(run.Errors)
	res.AfterSummary = run.Summary
	res.Counts.Access = run.Counts
	if err == nil && len(run.Errors) > 0 {
		err = ErrPartial
	}
	return err
}

// beforeApply runs Config.BeforeApply when the run is about to write users or groups (a dry
// run's After already plans before anything is written; a run that writes no user or group
// has After block it before anything is written too).
func (r *Reconciler) beforeApply(ctx context.Context, log *slog.Logger, opts RunOptions, res *Result, desired scim.Snapshot, p *plan.Plan) error {
	if r.cfg.BeforeApply == nil || opts.Only != nil || opts.DryRun || p.Empty() {
		return nil
	}
	run := &AfterRun{ID: res.RunID, DryRun: true, Log: log, Desired: desired, Plan: p}
	err := r.cfg.BeforeApply(ctx, run)
	res.AfterSummary = run.Summary
	return err
}

// joinPartial keeps ErrPartial the run's error when an after phase's error is also partial.
func joinPartial(users, after error) error {
	switch {
	case after == nil:
		return users
	case users == nil, errors.Is(after, ErrPartial) && errors.Is(users, ErrPartial):
		return after
	}
	return errors.Join(users, after)
}

// movesGroups reports whether a plan creates, deletes or renames a group: what changes the
// principals that access rules, which name groups, grant to. A change-feed run whose plan does
// runs the further phase (After) too, so that a new group gets its account assignments within
// the minute rather than at the next scheduled full run; other selective runs leave it to the
// full runs.
func movesGroups(p *plan.Plan) bool {
	if p == nil {
		return false
	}
	if len(p.CreateGroups) > 0 || len(p.DeleteGroups) > 0 {
		return true
	}
	for _, g := range p.UpdateGroups {
		if g.From != g.To {
			return true
		}
	}
	return false
}
