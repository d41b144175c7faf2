package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// TestAfterPhase: the phase after the users and groups (access) sees a dry run's plan with the
// groups it would create, and after an apply finds them owned in the state store; its failed
// records make the run partial; a blocked run never reaches it.
func TestAfterPhase(t *testing.T) {
	e := newEnv(t)
	var seen []string
	var failWith []string
	var afterErr error
	r := e.reconciler(func(c *reconcile.Config) {
		c.Guards = plan.DefaultGuards
		c.After = func(ctx context.Context, run *reconcile.AfterRun) error {
			groups, err := e.st.Objects(ctx, state.KindGroup)
			if err != nil {
				return err
			}
			seen = append(seen, strings.Join([]string{
				map[bool]string{true: "dry", false: "apply"}[run.DryRun],
				"creates=" + strconv.Itoa(len(run.Plan.CreateGroups)), "owned=" + strconv.Itoa(len(groups)), "desired=" + strconv.Itoa(len(run.Desired.Groups))}, " "))
			run.Errors = append(run.Errors, failWith...)
			run.Summary = "Access: nothing.\n"
			return afterErr
		}
	})
	e.set(company())
	e.run(r, reconcile.RunOptions{DryRun: true})
	res := e.run(r, reconcile.RunOptions{})
	want := []string{"dry creates=3 owned=0 desired=3", "apply creates=3 owned=3 desired=3"}
	if res.Result != reconcile.ResultSuccess || res.AfterSummary != "Access: nothing.\n" {
		t.Errorf("the run: result %s, after summary %q; want success and the phase's summary", res.Result, res.AfterSummary)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("the phase saw %q, want %q", seen, want)
	}
	runs, err := e.st.Runs(context.Background(), 1)
	if err != nil || len(runs) != 1 || !strings.HasSuffix(runs[0].Plan, "Access: nothing.\n") {
		t.Errorf("recorded plan: got %v (%v), want it to end with the phase's summary", runs, err)
	}

	failWith = []string{`assignment group "Finance" "Billing" on 111111111111: create: FAILED: no`}
	res, err = r.RunOnce(context.Background(), reconcile.RunOptions{})
	if !errors.Is(err, reconcile.ErrPartial) || res.Result != reconcile.ResultPartial || res.Counts.Failed != 1 || !slices.Equal(res.Errors, failWith) {
		t.Errorf("failed records: got %v, result %s, counts %+v, errors %v; want partial with the record", err, res.Result, res.Counts, res.Errors)
	}

	failWith, afterErr = nil, &plan.BlockedError{Reason: "too many", Flags: []string{"--allow-assignment-deletes 9"}}
	res, err = r.RunOnce(context.Background(), reconcile.RunOptions{})
	var be *plan.BlockedError
	if !errors.As(err, &be) || res.Result != reconcile.ResultBlocked {
		t.Errorf("a blocked phase: got %v, result %s; want the block", err, res.Result)
	}

	// The users guard blocks: the phase is not run.
	afterErr = nil
	n := len(seen)
	noGroups := company()
	noGroups.Groups = nil
	e.set(noGroups)
	if _, err := r.RunOnce(context.Background(), reconcile.RunOptions{}); !errors.As(err, &be) {
		t.Fatalf("got %v, want the empty-source guard", err)
	}
	if len(seen) != n {
		t.Errorf("the phase ran after the users and groups were blocked: %v", seen[n:])
	}
}

// TestBeforeApply: the further phase's check runs, as a dry run of the plan about to be applied,
// only when a run is about to write users or groups; its block stops the run before anything is
// written (After is not reached), and is recorded with its summary.
func TestBeforeApply(t *testing.T) {
	e := newEnv(t)
	var checked, after int
	var block error
	r := e.reconciler(func(c *reconcile.Config) {
		c.After = func(context.Context, *reconcile.AfterRun) error { after++; return nil }
		c.BeforeApply = func(_ context.Context, run *reconcile.AfterRun) error {
			checked++
			if !run.DryRun || run.Plan == nil || len(run.Plan.CreateGroups) != 3 {
				t.Errorf("the check saw dry run %v and plan %+v, want a dry run of the plan creating 3 groups", run.DryRun, run.Plan)
			}
			run.Summary = "Access: blocked.\n"
			return block
		}
	})
	e.set(company())
	e.run(r, reconcile.RunOptions{DryRun: true}) // a dry run's After plans before anything is written
	if checked != 0 {
		t.Errorf("a dry run checked %d times, want 0", checked)
	}
	block = &plan.BlockedError{Reason: "too many", Flags: []string{"--allow-assignment-deletes 9"}}
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	var be *plan.BlockedError
	if !errors.As(err, &be) || res.Result != reconcile.ResultBlocked || checked != 1 || after != 1 || res.AfterSummary != "Access: blocked.\n" {
		t.Fatalf("a blocked check: got %v, result %s, %d checks, %d after phases, summary %q; want blocked once before writing, After only from the dry run",
			err, res.Result, checked, after, res.AfterSummary)
	}
	if groups, err := e.st.Objects(context.Background(), state.KindGroup); err != nil || len(groups) != 0 {
		t.Errorf("after the block: %d groups owned (%v), want none written", len(groups), err)
	}
	block = nil
	e.run(r, reconcile.RunOptions{})
	e.run(r, reconcile.RunOptions{}) // nothing to write: not checked again, After checks
	if checked != 2 || after != 3 {
		t.Errorf("got %d checks and %d after phases, want 2 and 3", checked, after)
	}
}
