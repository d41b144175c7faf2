package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/access/awsaccess"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// accessPhase plans and applies the access section after the users and groups of every run
// (reconcile.AfterFunc). It exists only when the config has an access section: without one no
// sso-admin or organizations client is made and no such call is sent.
type accessPhase struct {
	rules   []access.Rule
	defined []access.PermissionSet
	guards  access.Guards
	policy  plan.Policy
	reader  access.Reader
	applier access.Applier
	state   state.AccessStore
	now     func() time.Time
	// allowDeletes is sync's --allow-assignment-deletes (serve: the config key).
	allowDeletes int
	// onPlan, when set, is shown the plan before anything is written.
	onPlan func(*access.Plan)

	mu     sync.Mutex
	plan   *access.Plan
	result *access.Result
	// blocked is the guard's block of the last run's access plan (an *accessBlockedError).
	blocked error
	// reads are the last run's reads that its check and its phase share.
	reads *accessReads
}

// newAccessPhase compiles the access section; nil when the config has none.
func newAccessPhase(cfg *config.Config, st state.Store, r access.Reader, a access.Applier) (*accessPhase, error) {
	if cfg.Access == nil {
		return nil, nil
	}
	rules, err := cfg.AccessRules()
	if err != nil {
		return nil, err
	}
	defined, err := cfg.AccessPermissionSets()
	if err != nil {
		return nil, err
	}
	return &accessPhase{rules: rules, defined: defined, guards: cfg.AccessGuards(), policy: cfg.Sync.Policy,
		reader: r, applier: a, state: state.AccessStore{Store: st}, now: time.Now}, nil
}

// last returns the plan and result of the last run (nil when it did not get that far), and the
// guard's block when its plan was blocked.
func (ph *accessPhase) last() (*access.Plan, *access.Result, error) {
	if ph == nil {
		return nil, nil, nil
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.plan, ph.result, ph.blocked
}

func (ph *accessPhase) reset() {
	ph.mu.Lock()
	ph.plan, ph.result, ph.blocked = nil, nil, nil
	ph.mu.Unlock()
}

// check is the reconcile BeforeApply: before a run writes its users and groups, the access they
// lead to is planned as a dry run does (new groups marked created) and the guard checked, so
// that a block stops the run before anything is written. A read that fails here is left to run,
// which reads again once the users and groups are applied and reports it.
func (ph *accessPhase) check(ctx context.Context, run *reconcile.AfterRun) error {
	ph.reset()
	log := run.Log.With("component", "access")
	p, _, err := ph.compute(ctx, run)
	if err != nil {
		log.Warn("access could not be checked before the users and groups are written; it is read again after them", "err", err)
		return nil
	}
	return ph.guard(run, p, true)
}

// guard checks the plan against the assignment guards; when they block it, it records the
// plan and the block, adds the plan marked as blocked to the run's summary and returns the
// block (an *accessBlockedError, which is a *plan.BlockedError to errors.As).
func (ph *accessPhase) guard(run *reconcile.AfterRun, p *access.Plan, beforeUsers bool) error {
	g := ph.guards
	g.AllowDeletes = max(g.AllowDeletes, ph.allowDeletes)
	err := g.Check(p)
	var be *plan.BlockedError
	if !errors.As(err, &be) {
		return err
	}
	blocked := &accessBlockedError{guard: be, written: writtenBefore(run, beforeUsers)}
	ph.mu.Lock()
	ph.plan, ph.blocked = p, blocked
	ph.mu.Unlock()
	var b strings.Builder
	b.WriteString(blockedHeading)
	_ = p.WriteText(&b)
	run.Summary = b.String()
	run.Log.With("component", "access").Warn("access blocked by a safety guard", "err", blocked)
	return blocked
}

// blockedHeading introduces an access plan the guard blocked, in the output and the run history.
const blockedHeading = "Access plan BLOCKED by a safety guard (none of it was applied):\n"

// accessBlockedError is the assignment guard's block, saying truly what the run wrote: the
// users and groups are applied before the access phase, unless the block came before them.
type accessBlockedError struct {
	guard   *plan.BlockedError
	written string
}

func (e *accessBlockedError) Error() string {
	return fmt.Sprintf("access blocked by a safety guard: %s; %s (review the access plan, then re-run with %s to let it through)",
		e.guard.Reason, e.written, strings.Join(e.guard.Flags, " "))
}

func (e *accessBlockedError) Unwrap() error { return e.guard }

// writtenBefore says what the run wrote before its access plan was blocked.
func writtenBefore(run *reconcile.AfterRun, beforeUsers bool) string {
	switch {
	case run.DryRun && !beforeUsers:
		return "nothing was written (a dry run)"
	case beforeUsers:
		return "nothing was written: neither the run's user and group changes nor any access change"
	case run.Plan == nil || run.Plan.Empty():
		return "nothing was written (no user or group needed a change) and no access change was made"
	}
	s := run.Plan.Summarize(0)
	var parts []string
	for _, c := range []struct {
		n          int
		what, done string
	}{{s.CreateUsers, "user", "created"}, {s.UpdateUsers, "user", "updated"}, {s.DisableUsers, "user", "disabled"}, {s.DeleteUsers, "user", "deleted"},
		{s.CreateGroups, "group", "created"}, {s.UpdateGroups, "group", "updated"}, {s.DeleteGroups, "group", "deleted"},
		{s.AddMembers, "member", "added"}, {s.RemoveMembers, "member", "removed"}} {
		switch {
		case c.n == 1:
			parts = append(parts, fmt.Sprintf("1 %s %s", c.what, c.done))
		case c.n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss %s", c.n, c.what, c.done))
		}
	}
	return "the run's user and group changes were applied (" + strings.Join(parts, ", ") + "); no access change was made"
}

// run is the reconcile.AfterFunc.
func (ph *accessPhase) run(ctx context.Context, run *reconcile.AfterRun) error {
	ph.reset()
	log := run.Log.With("component", "access")
	p, inst, err := ph.compute(ctx, run)
	if err != nil {
		log.Error("access read failed; no access was changed", "err", err)
		return fmt.Errorf("access: %w", err)
	}
	ph.mu.Lock()
	ph.plan = p
	ph.mu.Unlock()
	var b strings.Builder
	_ = p.WriteText(&b)
	run.Summary = b.String()
	if err := ph.guard(run, p, false); err != nil {
		return err
	}
	if ph.onPlan != nil {
		ph.onPlan(p)
	}
	if run.DryRun {
		s := p.Summarize()
		run.Counts = state.AccessCounts{AssignmentsCreated: s.CreateAssignments, AssignmentsDeleted: s.DeleteAssignments,
			PermissionSetsCreated: s.CreatePermissionSets, PermissionSetsUpdated: s.UpdatePermissionSets,
			PermissionSetsProvisioned: s.ProvisionPermissionSets, PermissionSetsDeleted: s.DeletePermissionSets}
		return nil
	}
	if p.Empty() && len(p.ForgetAssignments)+len(p.ForgetPermissionSets) == 0 {
		return nil
	}
	res, err := access.Apply(ctx, ph.applier, inst, p, ph.state, ph.now)
	ph.mu.Lock()
	ph.result = &res
	ph.mu.Unlock()
	run.Errors = append(run.Errors, res.Errors...)
	run.Counts = state.AccessCounts{AssignmentsCreated: res.AssignmentsCreated, AssignmentsDeleted: res.AssignmentsDeleted,
		PermissionSetsCreated: res.PermissionSetsCreated, PermissionSetsUpdated: res.PermissionSetsUpdated,
		PermissionSetsProvisioned: res.PermissionSetsProvisioned, PermissionSetsDeleted: res.PermissionSetsDeleted, Failed: res.Failed}
	log.Info("access applied", "permission_sets_created", res.PermissionSetsCreated, "permission_sets_updated", res.PermissionSetsUpdated,
		"permission_sets_deleted", res.PermissionSetsDeleted, "assignments_created", res.AssignmentsCreated,
		"assignments_deleted", res.AssignmentsDeleted, "failed", res.Failed)
	if err != nil {
		return fmt.Errorf("access: %w", err)
	}
	return nil
}

// compute reads the instance and the organization and plans on top of the run's users and groups.
func (ph *accessPhase) compute(ctx context.Context, run *reconcile.AfterRun) (*access.Plan, access.Instance, error) {
	r, err := ph.read(ctx, run.ID)
	if err != nil {
		return nil, r.inst, err
	}
	inst, org, sets := r.inst, r.org, r.sets
	owned, err := ph.state.OwnedAccess(ctx)
	if err != nil {
		return nil, inst, err
	}
	refs, err := ph.principals(ctx, run)
	if err != nil {
		return nil, inst, err
	}
	// Read the assignments of the principals the rules grant to and of those scimbridge assigned.
	grants, _ := access.Evaluate(ph.rules, run.Desired, org)
	ids := map[access.Principal]bool{}
	byKey := map[string]string{}
	for _, r := range refs {
		if r.ID != "" {
			byKey[string(r.Type)+"/"+r.ExternalID] = r.ID
		}
	}
	for _, g := range grants {
		if id := byKey[string(g.Principal.Type)+"/"+g.Principal.ExternalID]; id != "" {
			ids[access.Principal{Type: g.Principal.Type, ID: id}] = true
		}
	}
	for _, o := range owned.Assignments {
		ids[access.Principal{Type: o.Key.Type, ID: o.PrincipalID}] = true
	}
	principals := make([]access.Principal, 0, len(ids))
	for p := range ids {
		principals = append(principals, p)
	}
	slices.SortFunc(principals, func(a, b access.Principal) int { return strings.Compare(string(a.Type)+a.ID, string(b.Type)+b.ID) })
	var assignments []access.Assignment
	if len(principals) > 0 {
		if assignments, err = ph.reader.Assignments(ctx, inst, principals); err != nil {
			return nil, inst, err
		}
	}
	p := access.Compute(access.Input{Rules: ph.rules, Desired: run.Desired, Org: org, Defined: ph.defined, Current: sets,
		Assignments: assignments, Principals: refs, Owned: owned, Policy: ph.policy})
	return p, inst, nil
}

// accessReads are the reads of a run's access plan that its users and groups do not change: the
// instance, the organization and the permission sets. The check before the users and groups are
// written (BeforeApply) and the phase after them share them; the assignments, which name the
// principals, are read again.
type accessReads struct {
	run  int64
	inst access.Instance
	org  *access.Organization
	sets []access.PermissionSet
}

// read returns the run's shared reads, reading them on the run's first use.
func (ph *accessPhase) read(ctx context.Context, runID int64) (accessReads, error) {
	ph.mu.Lock()
	r := ph.reads
	ph.mu.Unlock()
	if r != nil && r.run == runID {
		return *r, nil
	}
	got := accessReads{run: runID}
	var err error
	if got.inst, err = ph.reader.Instance(ctx); err != nil {
		return got, err
	}
	if got.org, err = ph.reader.Organization(ctx); err != nil {
		return got, err
	}
	if got.sets, err = ph.reader.PermissionSets(ctx, got.inst); err != nil {
		return got, err
	}
	ph.mu.Lock()
	ph.reads = &got
	ph.mu.Unlock()
	return got, nil
}

// principals are the source's groups (and, when a rule names users, users) with the identity
// store ids the state store records for them; in a dry run, the ones the users and groups plan
// creates are marked Created and those it adopts carry the id it found.
func (ph *accessPhase) principals(ctx context.Context, run *reconcile.AfterRun) ([]access.PrincipalRef, error) {
	ids := func(kind state.Kind) (map[string]string, error) {
		objs, err := ph.state.Objects(ctx, kind)
		if err != nil {
			return nil, err
		}
		out := make(map[string]string, len(objs))
		for _, o := range objs {
			out[o.ExternalID] = o.TargetID
		}
		return out, nil
	}
	groups, err := ids(state.KindGroup)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	if slices.ContainsFunc(ph.rules, func(r access.Rule) bool { return len(r.Users) > 0 }) {
		if users, err = ids(state.KindUser); err != nil {
			return nil, err
		}
	}
	created := map[string]bool{}
	if run.DryRun && run.Plan != nil {
		for _, g := range run.Plan.CreateGroups {
			created["group/"+g.ExternalID] = true
		}
		for _, u := range run.Plan.CreateUsers {
			created["user/"+u.ExternalID] = true
		}
		for _, c := range run.Plan.Claims {
			if c.Kind == "group" {
				groups[c.ExternalID] = c.ID
			} else {
				users[c.ExternalID] = c.ID
			}
		}
		for _, g := range run.Plan.UpdateGroups {
			groups[g.ExternalID] = g.ID
		}
	}
	var out []access.PrincipalRef
	for _, g := range run.Desired.Groups {
		r := access.PrincipalRef{Type: access.PrincipalGroup, ExternalID: g.ExternalID, Name: g.DisplayName, ID: groups[g.ExternalID]}
		r.Created = r.ID == "" && created["group/"+g.ExternalID]
		if r.ID != "" || r.Created {
			out = append(out, r)
		}
	}
	if len(users) > 0 || len(created) > 0 {
		for _, u := range run.Desired.Users {
			r := access.PrincipalRef{Type: access.PrincipalUser, ExternalID: u.ExternalID, Name: u.UserName, ID: users[u.ExternalID]}
			r.Created = r.ID == "" && created["user/"+u.ExternalID]
			if r.ID != "" || r.Created {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// writeAccessSummary adds the access line to sync's text summary.
func writeAccessSummary(w io.Writer, p *access.Plan, res *access.Result, blocked error, dryRun bool) {
	switch {
	case p == nil:
	case blocked != nil:
		s := p.Summarize()
		fmt.Fprintf(w, "Access: BLOCKED by a safety guard, no access change made (the plan: %d assignments to create, %d to delete; %d permission sets to create, %d to update, %d to delete).\n",
			s.CreateAssignments, s.DeleteAssignments, s.CreatePermissionSets, s.UpdatePermissionSets, s.DeletePermissionSets)
	case res == nil && dryRun:
		s := p.Summarize()
		fmt.Fprintf(w, "Access (dry run): %d assignments to create, %d to delete; %d permission sets to create, %d to update, %d to delete.\n",
			s.CreateAssignments, s.DeleteAssignments, s.CreatePermissionSets, s.UpdatePermissionSets, s.DeletePermissionSets)
	case res == nil:
		fmt.Fprintf(w, "Access: no changes (%d assignments as the rules ask).\n", p.Desired)
	default:
		fmt.Fprintf(w, "Access: %d assignments created, %d deleted, %d failed; permission sets %d created, %d updated, %d provisioned, %d deleted; %d assignment requests.\n",
			res.AssignmentsCreated, res.AssignmentsDeleted, res.Failed, res.PermissionSetsCreated, res.PermissionSetsUpdated,
			res.PermissionSetsProvisioned, res.PermissionSetsDeleted, res.Requests)
	}
}

// accessJSON is the access part of sync's JSON output.
type accessJSON struct {
	// Plan is left out with --summary-only, as the users and groups plan is; Summary stays.
	Plan    any            `json:"plan,omitempty"`
	Summary access.Summary `json:"summary"`
	Result  *access.Result `json:"result,omitempty"`
	// Blocked is the guard's message when it blocked the plan (nothing of it was applied).
	Blocked string `json:"blocked,omitempty"`
}

// newAccessJSON is the access part of sync's JSON; nil without an access plan.
func newAccessJSON(p *access.Plan, res *access.Result, blocked error, summaryOnly bool) *accessJSON {
	if p == nil {
		return nil
	}
	acc := &accessJSON{Summary: p.Summarize(), Result: res}
	if !summaryOnly {
		acc.Plan = p.JSON()
	}
	if blocked != nil {
		acc.Blocked = blocked.Error()
	}
	return acc
}

// beforeApply is the reconcile BeforeApply of the access section: nil without one.
func (rt *app) beforeApply() reconcile.AfterFunc {
	if rt.access == nil {
		return nil
	}
	return rt.access.check
}

func newAccessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Inspect the access the configuration's assignment rules give",
	}
	cmd.AddCommand(newAccessExplainCmd())
	return cmd
}

func newAccessExplainCmd() *cobra.Command {
	var cfgPath, user, group, output string
	cmd := &cobra.Command{
		Use:   "explain (--user USERNAME | --group NAME)",
		Short: "Show which accounts and permission sets a person or group reaches, through which groups and rules",
		Long: `Reads the source and the organization (a dry read: nothing is written, the state lock is not
taken) and evaluates the access section's assignment rules: which permission sets on which accounts
the user reaches, directly or through which of their groups, and which rules grant each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (user == "") == (group == "") {
				return &codeError{exitError, fmt.Errorf("give one of --user or --group")}
			}
			if output != "text" && output != "json" {
				return &codeError{exitError, fmt.Errorf("--output %q: use text or json", output)}
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if cfg.Access == nil {
				return &codeError{exitError, fmt.Errorf("%s has no access section: no rule gives any access", cfgPath)}
			}
			rules, err := cfg.AccessRules()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := newLogger(cmd.ErrOrStderr(), cfg.Log, false)
			rt, err := newRuntime(ctx, cfg, log, newSecrets(log))
			if err != nil {
				return err
			}
			defer rt.Close()
			snap, err := rt.desired(ctx)
			if err != nil {
				return err
			}
			org, err := rt.accessReader.Organization(ctx)
			if err != nil {
				return fmt.Errorf("access explain: read the organization: %w", err)
			}
			t, name := access.PrincipalUser, user
			if group != "" {
				t, name = access.PrincipalGroup, group
			}
			ex, err := access.Explain(rules, snap, org, t, name)
			if err != nil {
				return err
			}
			if output == "json" {
				return ex.WriteJSON(cmd.OutOrStdout())
			}
			return ex.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", defaultConfig, "config file")
	f.StringVar(&user, "user", "", "the userName of the person")
	f.StringVar(&group, "group", "", "the name of the group")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// defaultEmbeddedAdminRate paces the access calls to the embedded Identity Center, which does not
// limit them (AWS's admin APIs allow about 20 per second: awsaccess.DefaultRate).
const defaultEmbeddedAdminRate = 500

// openAccess makes the sso-admin and organizations clients of the access section: against the
// embedded Identity Center, its endpoints; against AWS, the standard credential chain and region
// (target.region), as the identitystore reader has them. Both go through one adaptive limiter, as
// the admin APIs share one rate.
func (rt *app) openAccess(ctx context.Context, emb *embedded) error {
	var awsCfg aws.Config
	var ssoOpts []func(*ssoadmin.Options)
	var orgOpts []func(*organizations.Options)
	storeID := rt.cfg.Target.IdentityStoreID
	opts := awsaccess.Options{Logger: rt.log.With("component", "access")}
	if emb != nil {
		opts.Rate = defaultEmbeddedAdminRate
		awsCfg = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("embedded", "embedded", "")}
		ssoURL, orgURL := emb.accessEndpoints()
		ssoOpts = append(ssoOpts, func(o *ssoadmin.Options) { o.BaseEndpoint = aws.String(ssoURL) })
		orgOpts = append(orgOpts, func(o *organizations.Options) { o.BaseEndpoint = aws.String(orgURL) })
		storeID = emb.IdentityStoreID()
	} else {
		var err error
		if awsCfg, err = loadAWSConfig(ctx, rt.cfg.Target); err != nil {
			return fmt.Errorf("access: %w", err)
		}
	}
	opts.IdentityStoreID = storeID
	c := awsaccess.New(ssoadmin.NewFromConfig(awsCfg, ssoOpts...), organizations.NewFromConfig(awsCfg, orgOpts...),
		opts)
	rt.accessReader, rt.accessApplier, rt.accessCalls = c, c, c
	return nil
}
