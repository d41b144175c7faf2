package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// TestQuickstartAccess: the quickstart acts out the classic setup. A dry run plans the
// assignments on top of the groups it would create; the first sync makes them (Administrators on
// every account of the embedded organization, Finance on the management account); the second
// plans nothing and makes no sso-admin write. access explain shows the way a person gets there.
func TestQuickstartAccess(t *testing.T) {
	dir := quickstart(t)
	out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run")
	if code != exitChanges || !strings.Contains(out, `+ assign group "Finance" (created in this run) "Billing" on `) ||
		!strings.Contains(out, "assignments 13 to create, 0 to delete") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitOK || !strings.Contains(out, `+ assign group "Administrators" "AdministratorAccess" on `) ||
		!strings.Contains(out, "Access: 13 assignments created, 0 deleted, 0 failed; permission sets 2 created") {
		t.Fatalf("first sync: exit %d\n%s\n%s", code, out, errOut)
	}
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "-o", "json")
	var res struct {
		Requests map[string]int
		Access   struct {
			Plan struct {
				Desired int `json:"desiredAssignments"`
				Summary struct{ Requests int }
			}
		}
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || code != exitOK {
		t.Fatalf("second sync: exit %d, %v\n%s\n%s", code, err, js, errOut)
	}
	if res.Access.Plan.Desired != 13 || res.Access.Plan.Summary.Requests != 0 {
		t.Errorf("second sync: access plan of %d assignments with %d requests, want 13 and 0", res.Access.Plan.Desired, res.Access.Plan.Summary.Requests)
	}
	for op, n := range res.Requests {
		name, _ := strings.CutPrefix(op, "access.")
		if name != op && !strings.HasPrefix(name, "List") && !strings.HasPrefix(name, "Describe") && !strings.HasPrefix(name, "Get") {
			t.Errorf("second sync sent %d %s requests, want only reads", n, op)
		}
	}

	out, errOut, code = run(t, dir, "access", "explain", "--config", "scimbridge.yaml", "--user", "grace.hopper@example.com")
	if code != exitOK || !strings.Contains(out, `user "grace.hopper@example.com" (u-1001), member of "Administrators", "Everyone", reaches 12 permission set assignments on 12 accounts:`) ||
		!strings.Contains(out, `"AdministratorAccess" on `) || !strings.Contains(out, `through group "Administrators" [access.assignments[0]]`) {
		t.Errorf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	js, _, code = run(t, dir, "access", "explain", "--config", "scimbridge.yaml", "--group", "Finance", "-o", "json")
	var ex struct {
		Grants []struct {
			PermissionSet string
			AccountName   string
		}
	}
	if err := json.Unmarshal([]byte(js), &ex); err != nil || code != exitOK || len(ex.Grants) != 1 || ex.Grants[0].PermissionSet != "Billing" || ex.Grants[0].AccountName != "management" {
		t.Errorf("explain --group Finance -o json: exit %d, %v, %+v", code, err, ex)
	}
}

// TestAccessGuardBlocksSync: a config edit that removes Administrators' rule would delete 12
// assignments: the run is blocked (exit 3) with the flag that lets it through, and the flag does.
// The block prints the access plan it blocked, marked so, in a dry run too; its message and the
// summary say truly what was written; with a user to create as well, it blocks before the user is
// written; the JSON output carries the block and matches its schema.
func TestAccessGuardBlocksSync(t *testing.T) {
	dir := quickstart(t)
	if out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml"); code != exitOK {
		t.Fatalf("first sync: exit %d\n%s\n%s", code, out, errOut)
	}
	edit := func(name, old, new string) {
		t.Helper()
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(string(b), old, new, 1)
		if edited == string(b) {
			t.Fatalf("the quickstart %s changed: update this test", name)
		}
		if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edit("scimbridge.yaml", "    - groups: [Administrators]\n", "    - groups: [Nobody]\n")
	const limit = "12 of 13 owned account assignments (92.3%) would be deleted"
	blockedPlan := func(name, out string) {
		t.Helper()
		i := strings.Index(out, blockedHeading)
		if i < 0 || !strings.Contains(out[i:], `- assign group "Administrators" "AdministratorAccess" on `) ||
			!strings.Contains(out, "Access: BLOCKED by a safety guard, no access change made (the plan: 0 assignments to create, 12 to delete;") {
			t.Errorf("%s: the blocked access plan or summary is missing:\n%s", name, out)
		}
		if strings.Contains(out, "Applying access") || strings.Contains(out, "Access: no changes") {
			t.Errorf("%s: the output shows the blocked access as applied or as no change:\n%s", name, out)
		}
	}

	out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run")
	if code != exitBlocked || !strings.Contains(errOut, limit) || !strings.Contains(errOut, "nothing was written (a dry run)") {
		t.Fatalf("blocked dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	blockedPlan("dry run", out)

	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitBlocked || !strings.Contains(errOut, limit) || !strings.Contains(errOut, "--allow-assignment-deletes 12") ||
		!strings.Contains(errOut, "nothing was written (no user or group needed a change) and no access change was made") {
		t.Fatalf("blocked sync: exit %d\n%s\n%s", code, out, errOut)
	}
	blockedPlan("sync", out)

	// A new person in the directory as well: the block comes before the user is written.
	edit("directory.yaml", "users:\n", "users:\n  - id: u-9001\n    userName: new.hire@example.com\n    givenName: New\n    familyName: Hire\n    email: new.hire@example.com\n\n")
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "-o", "json")
	if code != exitBlocked {
		t.Fatalf("blocked sync with a new user: exit %d\n%s\n%s", code, js, errOut)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(js))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js)
	}
	if err := syncSchema(t).Validate(inst); err != nil {
		t.Errorf("the blocked run's JSON does not match deploy/docs/sync-result.schema.json:\n%v", err)
	}
	var res struct {
		Counts struct{ Created int }
		Access struct {
			Blocked string
			Result  json.RawMessage
			Plan    struct {
				Summary struct{ DeleteAssignments int }
			}
		}
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatal(err)
	}
	if want := "nothing was written: neither the run's user and group changes nor any access change"; !strings.Contains(res.Access.Blocked, limit) || !strings.Contains(res.Access.Blocked, want) ||
		res.Access.Result != nil || res.Access.Plan.Summary.DeleteAssignments != 12 || res.Counts.Created != 0 {
		t.Errorf("blocked JSON: got access %+v, %d created; want the block saying %q, the plan's 12 deletes, no result, nothing created", res.Access, res.Counts.Created, want)
	}
	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run", "--allow-assignment-deletes", "12")
	if code != exitChanges || !strings.Contains(out, `+ user "new.hire@example.com"`) {
		t.Errorf("after the block, the new user is still to create: exit %d\n%s\n%s", code, out, errOut)
	}

	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml", "--allow-assignment-deletes", "12")
	if code != exitOK || !strings.Contains(out, "Access: 0 assignments created, 12 deleted, 0 failed") {
		t.Fatalf("allowed sync: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestNoAccessSectionNoAccessCalls: without access: a sync makes no sso-admin or organizations
// call and its JSON has no access part.
func TestNoAccessSectionNoAccessCalls(t *testing.T) {
	dir := quickstart(t)
	cfg := filepath.Join(dir, "scimbridge.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start, end := strings.Index(string(b), "access:\n"), strings.Index(string(b), "sync:\n")
	if start < 0 || end < start {
		t.Fatal("the quickstart config changed: update this test")
	}
	if err := os.WriteFile(cfg, append(b[:start:start], b[end:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "-o", "json")
	var res struct {
		Requests map[string]int
		Access   json.RawMessage
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || code != exitOK {
		t.Fatalf("sync without access: exit %d, %v\n%s", code, err, errOut)
	}
	if res.Access != nil {
		t.Errorf("JSON has an access part: %s", res.Access)
	}
	for op := range res.Requests {
		if strings.HasPrefix(op, "access.") {
			t.Errorf("request %s without an access section", op)
		}
	}
	if !strings.Contains(errOut, "run finished") || strings.Contains(errOut, "component=access") {
		t.Errorf("log mentions the access component:\n%s", errOut)
	}
}

// TestAccessBlockSaysWhatWasWritten: the assignment guard's message names what the run wrote
// before the block, and is a *plan.BlockedError to the exit code and the run history.
func TestAccessBlockSaysWhatWasWritten(t *testing.T) {
	users := &plan.Plan{}
	users.CreateUsers = []scim.User{{ExternalID: "u-1", UserName: "new.hire@example.com"}}
	users.Members = []plan.MemberChange{{Group: plan.Ref{ID: "g-1"}, Add: []plan.Ref{{ID: "u-1"}, {ExternalID: "u-2"}}}}
	guard := &plan.BlockedError{Reason: "12 account assignments would be deleted", Flags: []string{"--allow-assignment-deletes 12"}}
	for _, c := range []struct {
		name        string
		run         reconcile.AfterRun
		beforeUsers bool
		want        string
	}{
		{"before the users", reconcile.AfterRun{DryRun: true, Plan: users}, true, "nothing was written: neither the run's user and group changes nor any access change"},
		{"dry run", reconcile.AfterRun{DryRun: true, Plan: users}, false, "nothing was written (a dry run)"},
		{"no user change", reconcile.AfterRun{Plan: &plan.Plan{}}, false, "nothing was written (no user or group needed a change) and no access change was made"},
		{"after the users", reconcile.AfterRun{Plan: users}, false, "the run's user and group changes were applied (1 user created, 2 members added); no access change was made"},
	} {
		var err error = &accessBlockedError{guard: guard, written: writtenBefore(&c.run, c.beforeUsers)}
		want := "access blocked by a safety guard: 12 account assignments would be deleted; " + c.want + " (review the access plan, then re-run with --allow-assignment-deletes 12 to let it through)"
		if got := err.Error(); got != want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, want)
		}
		if be := (*plan.BlockedError)(nil); !errors.As(err, &be) || be != guard {
			t.Errorf("%s: errors.As found %v, want the guard's *plan.BlockedError", c.name, be)
		}
	}
}

// TestAccessSummaryOnly: --summary-only leaves the access plan out as it does the users and
// groups plan: the text output keeps only the Access summary line, the JSON output the access
// summary (counts) without the plan.
func TestAccessSummaryOnly(t *testing.T) {
	dir := quickstart(t)
	out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run", "--summary-only")
	if code != exitChanges || !strings.Contains(out, "Access (dry run): 13 assignments to create, 0 to delete; 2 permission sets to create") {
		t.Fatalf("dry run --summary-only: exit %d, no access summary line\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "+ assign group") || strings.Contains(out, "Access (permission sets and account assignments):") {
		t.Errorf("dry run --summary-only printed the access plan:\n%s", out)
	}
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--summary-only", "-o", "json")
	var res struct {
		Access map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || code != exitOK {
		t.Fatalf("sync --summary-only -o json: exit %d, %v\n%s\n%s", code, err, js, errOut)
	}
	var sum struct{ CreateAssignments, CreatePermissionSets int }
	if err := json.Unmarshal(res.Access["summary"], &sum); err != nil || sum.CreateAssignments != 13 || sum.CreatePermissionSets != 2 {
		t.Errorf("access summary: got %s (%v), want 13 assignments and 2 permission sets to create", res.Access["summary"], err)
	}
	if _, ok := res.Access["plan"]; ok || res.Access["result"] == nil {
		t.Errorf("sync --summary-only -o json: access keys %v, want summary and result without plan", slices.Collect(maps.Keys(res.Access)))
	}
}

// TestAccessCountsInRunHistory: the run history records the access changes of each run (the dry
// run's planned, the sync's made), which serve's status page and metrics show.
func TestAccessCountsInRunHistory(t *testing.T) {
	dir := quickstart(t)
	if out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run"); code != exitChanges {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(ctx, 2)
	if err != nil || len(runs) != 2 {
		t.Fatalf("run history: %d runs, %v", len(runs), err)
	}
	want := state.AccessCounts{AssignmentsCreated: 13, PermissionSetsCreated: 2}
	for _, r := range runs {
		// A sync provisions the permission sets it creates; the dry run cannot say which it will.
		got := r.Counts.Access
		got.PermissionSetsProvisioned = 0
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("run %d (dry run %v): access counts (-got +want):\n%s", r.ID, r.DryRun, diff)
		}
	}
}

// TestAccessReadsOncePerRun: a run that writes users and groups checks its access plan before
// writing them and plans it again after; the instance, the organization and the permission sets
// are read once for both (the users and groups do not change them).
func TestAccessReadsOncePerRun(t *testing.T) {
	dir := quickstart(t)
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "-o", "json")
	var res struct{ Requests map[string]int }
	if err := json.Unmarshal([]byte(js), &res); err != nil || code != exitOK {
		t.Fatalf("first sync: exit %d, %v\n%s\n%s", code, err, js, errOut)
	}
	if res.Requests["scim.CreateUser"] == 0 {
		t.Fatalf("first sync wrote no user: %v", res.Requests)
	}
	for _, op := range []string{"access.ListInstances", "access.DescribeOrganization", "access.ListRoots", "access.ListPermissionSets"} {
		if n := res.Requests[op]; n != 1 {
			t.Errorf("%s sent %d times in a run that checks access before and after its users, want 1 (requests %v)", op, n, res.Requests)
		}
	}
	if n := res.Requests["access.ListAccountAssignmentsForPrincipal"]; n < 2 {
		t.Errorf("assignments read %d times, want before and after the users and groups (they name the principals)", n)
	}
}
