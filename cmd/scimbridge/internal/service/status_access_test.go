package service

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// TestStatusAndMetricsShowAccessChanges: a run whose after phase (access, in scimbridge) reports
// its changes has them recorded in the run history, shown in its row of the status page (counts
// only, to anyone) and counted in scimbridge_access_changes_total; a dry run's planned changes
// are in its row but not in the counter, which counts what was written.
func TestStatusAndMetricsShowAccessChanges(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{})
	c, err := client.New(client.Config{BaseURL: emu.URL, Token: func(context.Context) (string, error) { return emu.Token, nil }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	desired := scim.Snapshot{
		Users:  []scim.User{{ExternalID: "u1", UserName: "alice@example.com", DisplayName: "Alice", GivenName: "Alice", FamilyName: "A", Active: true}},
		Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Admins", Members: []string{"u1"}}, {ExternalID: "g2", DisplayName: "Finance"}},
	}
	// The phase grants each group one assignment per account of a 6-account organization.
	after := func(_ context.Context, run *reconcile.AfterRun) error {
		run.Counts = state.AccessCounts{AssignmentsCreated: 6 * len(run.Desired.Groups), PermissionSetsCreated: 1, PermissionSetsProvisioned: 1}
		if !run.DryRun {
			run.Counts.Failed = 1
			run.Errors = append(run.Errors, `assignment group "Finance" on 111111111111: AccessDenied`)
		}
		return nil
	}
	r, err := reconcile.New(reconcile.Config{
		Desired: func(context.Context) (scim.Snapshot, error) { return desired, nil },
		Target:  c, Reader: c, State: st, After: after,
	})
	if err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics()
	for _, opts := range []reconcile.RunOptions{{Trigger: "manual", DryRun: true}, {Trigger: "schedule"}} {
		res, err := r.RunOnce(context.Background(), opts)
		if res == nil {
			t.Fatalf("%s run: %v", opts.Trigger, err)
		}
		metrics.RunFinished(opts, res, err)
	}
	runs, err := st.Runs(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := state.AccessCounts{AssignmentsCreated: 12, PermissionSetsCreated: 1, PermissionSetsProvisioned: 1, Failed: 1}
	if len(runs) != 2 || runs[0].Counts.Access != want || runs[0].Counts.Failed != 1 {
		t.Fatalf("recorded runs: got %+v, want the last with access %+v and 1 failed", runs, want)
	}

	f := newFixture(t, func(cfg *Config) { cfg.History, cfg.Metrics, cfg.UIPassword, cfg.BearerToken = st, metrics, nil, nil })
	page := f.do("GET", "/", "", nil).Body.String()
	for _, want := range []string{"<th>Access</th>",
		`<td class="access">&#43;12 assignments, 1 permission set created, 1 permission set provisioned, 1 failed</td>`,
		`<td class="access">&#43;12 assignments, 1 permission set created, 1 permission set provisioned</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	if strings.Contains(page, "AccessDenied") {
		t.Error("the counts-only page shows a run error")
	}
	text := f.do("GET", "/metrics", "", nil).Body.String()
	for _, want := range []string{`scimbridge_access_changes_total{kind="assignment_created"} 12`,
		`scimbridge_access_changes_total{kind="permission_set_created"} 1`,
		`scimbridge_access_changes_total{kind="assignment_deleted"} 0`,
		`scimbridge_access_changes_total{kind="failed"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

// TestAccessText: the status page's short form of a run's access changes.
func TestAccessText(t *testing.T) {
	for _, tc := range []struct {
		c    state.AccessCounts
		want string
	}{
		{state.AccessCounts{}, ""},
		{state.AccessCounts{AssignmentsCreated: 1}, "+1 assignment"},
		{state.AccessCounts{AssignmentsCreated: 13, AssignmentsDeleted: 2, PermissionSetsUpdated: 3, PermissionSetsDeleted: 1},
			"+13 assignments, \u22122 assignments, 3 permission sets updated, 1 permission set deleted"},
	} {
		if got := accessText(tc.c); got != tc.want {
			t.Errorf("accessText(%+v): got %q, want %q", tc.c, got, tc.want)
		}
	}
}
