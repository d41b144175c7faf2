package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// defaultConfig is the config used when --config is not given: $SCIMBRIDGE_CONFIG (as the
// container image sets it), else the quickstart.
var defaultConfig = func() string {
	if p := os.Getenv("SCIMBRIDGE_CONFIG"); p != "" {
		return p
	}
	return quickstartConfig
}()

type syncFlags struct {
	config       string
	dryRun       bool
	output       string
	allowDeletes int
	allowClears  []string
	allowEmpty   bool
	// allowAssignmentDeletes lets a run past the access guards (access.AllowFlag).
	allowAssignmentDeletes int
	fullRead               bool
	verbose                bool
	summaryOnly            bool
	planFile               string
	detail                 bool
}

func newSyncCmd() *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Plan and apply the directory into Identity Center once",
		Long: `Reads the source directory, plans what must change in the target, checks the safety
guards and applies the plan. With --dry-run it only prints the plan.

Exit codes: 0 done (or nothing to do), 1 error or some records failed, 2 a dry run found
changes (adoptions included), 3 a safety guard blocked the run, 4 another run holds the state
lock (a run that writes takes the state store's lock first; state.lock_timeout makes it wait),
5 the run finished but left records out because objects scimbridge does not own hold their
externalId, userName or group displayName (the plan names them and the adopt mode that would take
them over). Records left out because they are invalid do not change the exit code; they are listed
as problems.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSync(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfig, "config file")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	fl.StringVarP(&f.output, "output", "o", "text", "plan output: text or json")
	fl.IntVar(&f.allowDeletes, "allow-deletes", 0, "let through a run that deprovisions at most N objects, whatever max_deletes and max_delete_percent say")
	fl.StringSliceVar(&f.allowClears, "allow-clears", nil, "let through updates that clear these attributes (comma-separated, as the plan names them: emails,title), whatever max_clear_percent says")
	fl.BoolVar(&f.allowEmpty, "allow-empty-source", false, "let an empty or near-empty source deprovision (the directory really is empty); the count limits still apply")
	fl.IntVar(&f.allowAssignmentDeletes, "allow-assignment-deletes", 0, "let through a run that deletes at most N account assignments, whatever max_assignment_deletes and max_assignment_delete_percent say")
	fl.BoolVar(&f.fullRead, "full", false, "read the whole target even when the state store is trusted")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	fl.BoolVar(&f.summaryOnly, "summary-only", false, "with --output json, leave the plan's changes out (counts and summary stay); the access plan is left out of the text output too, its summary line stays")
	fl.StringVar(&f.planFile, "plan-file", "", "write the whole text plan to this file; the terminal then shows a plan over "+strconv.Itoa(plan.LargePlanLines)+" lines as a summary per kind of change")
	fl.BoolVar(&f.detail, "detail", false, "print the whole plan however long (a plan over "+strconv.Itoa(plan.LargePlanLines)+" lines on a terminal is otherwise summarised)")
	return cmd
}

func runSync(cmd *cobra.Command, f syncFlags) error {
	if f.output != "text" && f.output != "json" {
		return &codeError{exitError, fmt.Errorf("--output %q: use text or json", f.output)}
	}
	for _, a := range f.allowClears {
		if _, ok := plan.ClearAttribute(a); !ok {
			return &codeError{exitError, fmt.Errorf("--allow-clears %q: not a user attribute (use the names the plan shows, such as emails or title)", a)}
		}
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		return err
	}
	setMemoryLimit()
	ctx := cmd.Context()
	bar := newProgressBar(cmd.ErrOrStderr())
	log := newLogger(bar.writer(), cfg.Log, f.verbose) // a log line first ends the bar's line
	var lock *state.Lock
	if !f.dryRun { // a dry run writes nothing to the target, so it neither needs nor waits for the lock
		if lock, err = lockState(ctx, cfg, "sync", log); err != nil {
			return err
		}
		defer lock.Release()
	}
	rt, err := newRuntime(ctx, cfg, log, newSecrets(log))
	if err != nil {
		return err
	}
	defer rt.Close()

	out := cmd.OutOrStdout()
	printed := false
	maxMembers := rt.maxMembers()
	var onPlan func(*plan.Plan)
	if f.output == "text" {
		onPlan = func(p *plan.Plan) { // the plan is shown before anything is written
			printed = true
			writePlanText(out, p, maxMembers, f, cfg.DataDir, log)
			if !f.dryRun && !p.Empty() {
				fmt.Fprintf(out, "\nApplying to %s...\n", rt.targetDesc)
			}
		}
	}
	if rt.access != nil {
		rt.access.allowDeletes = f.allowAssignmentDeletes
		if f.output == "text" {
			rt.access.onPlan = func(p *access.Plan) { // shown before any access is written
				printed = true
				if !f.summaryOnly && (!p.Empty() || len(p.Problems) > 0) {
					fmt.Fprintln(out)
					_ = p.WriteText(out)
					if !f.dryRun && !p.Empty() {
						fmt.Fprintf(out, "\nApplying access to %s...\n", rt.targetDesc)
					}
				}
			}
		}
	}
	rt.onRunStart = func(id int64) { _ = lock.SetRunID(id) }
	r, err := rt.reconciler(bar.update, onPlan)
	if err != nil {
		return err
	}
	start := time.Now()
	res, runErr := r.RunOnce(ctx, reconcile.RunOptions{Trigger: "cli", DryRun: f.dryRun, AllowDeletes: f.allowDeletes,
		AllowClears: f.allowClears, AllowEmptySource: f.allowEmpty, FullRead: f.fullRead})
	bar.finish()
	warnIfMemoryLimited(log, memoryLimit)
	if res == nil {
		return runErr
	}
	requests, throttled := rt.counter.snapshot()
	if rt.accessCalls != nil { // the sso-admin and organizations calls of the access phase
		calls, _ := rt.accessCalls.Calls()
		for op, n := range calls {
			requests["access."+op] += int(n)
		}
	}
	code, codeErr := syncExit(res, runErr, f.dryRun, f.output != "json")
	accessPlan, accessRes, accessBlocked := rt.access.last()
	if code == exitOK && f.dryRun && accessPlan != nil && !accessPlan.Empty() {
		code = exitChanges // the users and groups match, but access would change
	}
	if f.output == "json" {
		acc := newAccessJSON(accessPlan, accessRes, accessBlocked, f.summaryOnly)
		if err := writeJSONResult(out, res, requests, throttled, maxMembers, f.summaryOnly, code, rt.lastReport().Lines(), acc); err != nil {
			return err
		}
	} else {
		if !printed && res.Plan != nil {
			writePlanText(out, res.Plan, maxMembers, f, cfg.DataDir, log)
		}
		if accessBlocked != nil && !f.summaryOnly { // the plan the guard blocked, never shown as applying
			fmt.Fprintln(out)
			fmt.Fprint(out, blockedHeading)
			_ = accessPlan.WriteText(out)
		}
		writeWarnings(out, rt.lastReport().Lines())
		writeTextSummary(out, res, requests, throttled, time.Since(start))
		writeAccessSummary(out, accessPlan, accessRes, accessBlocked, f.dryRun)
	}
	if code == exitOK {
		return nil
	}
	return &codeError{code, codeErr}
}

// exitLeftOut is the exit code of a run that finished but left records out because objects
// scimbridge does not own hold their externalId or name. (4 is reserved for the state lock.)
const exitLeftOut = 5

// syncExit decides the exit code of a sync run and the error main prints with it. A guard's block
// or an error comes first, then a dry run's changes, then records left out by clashes. printed
// tells that the text summary already showed the run's errors.
func syncExit(res *reconcile.Result, runErr error, dryRun, printed bool) (int, error) {
	var blocked *plan.BlockedError
	switch {
	case errors.As(runErr, &blocked):
		return exitBlocked, runErr
	case runErr != nil && printed && slices.Contains(res.Errors, runErr.Error()):
		return exitError, nil // the summary printed it: print each error once
	case runErr != nil:
		return exitError, runErr
	case res.Plan == nil:
		return exitOK, nil
	case dryRun && (!res.Plan.Empty() || res.Plan.Adoptions() > 0):
		return exitChanges, nil
	case len(res.Plan.Clashes) > 0:
		return exitLeftOut, leftOutError(res.Plan.Clashes)
	}
	return exitOK, nil
}

// leftOutError says how many records clashes left out and which adopt mode would take them over.
func leftOutError(clashes []plan.Clash) error {
	byMode := map[plan.Adopt]int{}
	for _, c := range clashes {
		byMode[c.Adopt]++
	}
	var hints []string
	if n := byMode[plan.AdoptExternalID]; n > 0 {
		hints = append(hints, fmt.Sprintf("%d carry the source's externalId (sync.adopt: external_id would take them over)", n))
	}
	if n := byMode[plan.AdoptName]; n > 0 {
		hints = append(hints, fmt.Sprintf("%d match by name only (sync.adopt: name would take them over)", n))
	}
	if n := byMode[""]; n > 0 {
		hints = append(hints, fmt.Sprintf("%d belong to another source record (no adopt mode takes them)", n))
	}
	return fmt.Errorf("%s left out: objects scimbridge does not own hold their externalId or name; of those objects %s; review them with --dry-run (exit code %d)",
		plan.Count(len(clashes), "record", "records"), strings.Join(hints, ", "), exitLeftOut)
}

func writeTextSummary(w io.Writer, res *reconcile.Result, requests, throttledBy map[string]int, wall time.Duration) {
	throttled := sumCounts(throttledBy)
	c := res.Counts
	var reqs []string
	for k, v := range requests {
		reqs = append(reqs, fmt.Sprintf("%s %d", k, v))
	}
	total := sumCounts(requests)
	slices.Sort(reqs)
	verb := "Done"
	switch {
	case res.DryRun:
		verb = "Dry run (nothing written)"
	case res.Result == reconcile.ResultBlocked:
		verb = "Blocked"
	case res.Result == reconcile.ResultFailed:
		verb = "Failed"
	case res.Result == reconcile.ResultPartial:
		verb = "Done with failures"
	}
	read := "read the target"
	if !res.FullRead {
		read = "trusted the state store"
	}
	if res.DryRun || res.Result == reconcile.ResultBlocked || res.Result == reconcile.ResultFailed {
		fmt.Fprintf(w, "\n%s in %s; %s; %d requests.\n", verb, wall.Round(time.Millisecond), read, total)
	} else {
		fmt.Fprintf(w, "\n%s in %s: %d created, %d updated, %d disabled, %d deleted, %d adopted, +%d/-%d memberships, %d failed, %d skipped; %s; %d requests (%d throttled).\n",
			verb, wall.Round(time.Millisecond), c.Created, c.Updated, c.Disabled, c.Deleted, c.Adopted, c.MemberAdds, c.MemberRemoves, c.Failed, c.Skipped, read, total, throttled)
	}
	if len(reqs) > 0 {
		fmt.Fprintf(w, "Requests: %s\n", strings.Join(reqs, ", "))
	}
	if p := res.Plan; p != nil && p.LeftOut() > 0 {
		fmt.Fprintf(w, "Left out: %s (%d of them clash with objects scimbridge does not own); see Problems.\n", plan.Count(p.LeftOut(), "record", "records"), len(p.Clashes))
	}
	for _, e := range res.Errors {
		fmt.Fprintf(w, "  ! %s\n", e)
	}
}

// writeWarnings shows the mapping report of the source read (users synced without an expected
// attribute, attributes the configuration names that no entry holds): the run goes on, but a
// person should look.
func writeWarnings(w io.Writer, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\nWarnings about the source data (%d; the run goes on):\n", len(lines))
	for _, l := range lines {
		fmt.Fprintf(w, "  ~ %s\n", l)
	}
}

// peakRSS reads this process's peak resident set size (VmHWM) from /proc; 0 where there is none.
// A parent's rusage of its child is no use here: on exec Linux carries the high-water mark of the
// image it replaces, which for a child started by a large process is the parent's.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// sumCounts adds up a count per operation.
func sumCounts(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
