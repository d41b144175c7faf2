package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

func only(users, groups []string) *reconcile.Selection {
	return &reconcile.Selection{Users: users, Groups: groups}
}

// TestTargetedSyncTouchesOnlyTheSelection runs targeted syncs over a trusted state store: each
// changes only what it names, and a full run afterwards still finds every other change (the
// state refresh of a targeted run must not record changes it did not make).
func TestTargetedSyncTouchesOnlyTheSelection(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler(func(c *reconcile.Config) { c.FullReconcileEvery = time.Hour })
	e.set(company())
	e.run(r, reconcile.RunOptions{})

	d := company()
	d.Users[0].UserName, d.Users[0].Email = "alice.smith@example.com", "alice.smith@example.com" // u1 renamed
	d.Users[1].DisplayName = "Robert"                                                            // u2 changed
	d.Users = slices.Delete(d.Users, 3, 4)                                                       // u4 (dave) leaves
	d.Users = append(d.Users, person("u5", "eve"), person("u6", "frank"))
	d.Groups[1].DisplayName = "Finance & Accounting" // g-finance renamed
	d.Groups[2].Members = []string{"u1", "u3", "u5"} // eve joins, dave leaves Engineering
	d.Groups[0].Members = []string{"u1", "u2"}       // bob joins Administrators
	d.Groups = append(d.Groups, scim.Group{ExternalID: "g-new", DisplayName: "New", Members: []string{"u2", "u6"}})
	e.set(d)

	// Only alice: her rename, nothing else.
	e.srv.Emu.ResetStats()
	res := e.run(r, reconcile.RunOptions{Trigger: "webhook", Only: only([]string{"u1"}, nil)})
	if s := res.Plan.Summarize(100); s != (plan.Summary{UpdateUsers: 1, LowerBound: 1}) {
		t.Fatalf("targeted plan for u1 = %+v, want one user update", s)
	}
	if got := writes(e.srv.Emu.Stats()); got != 1 {
		t.Errorf("targeted run sent %d writes, want 1: %v", got, e.srv.Emu.Stats())
	}
	v := e.view()
	if _, ok := v.Users["alice.smith@example.com"]; !ok {
		t.Error("alice was not renamed")
	}
	if _, ok := v.Users["dave@example.com"]; !ok {
		t.Error("dave was deleted by a run that did not name him")
	}
	if _, ok := v.Users["eve@example.com"]; ok {
		t.Error("eve was created by a run that did not name her")
	}
	if _, ok := v.Groups["Finance"]; !ok {
		t.Error("Finance was renamed by a run that did not name it")
	}

	// Only bob: his update and his new membership in Administrators, not the new group.
	res = e.run(r, reconcile.RunOptions{Only: only([]string{"u2"}, nil)})
	if s := res.Plan.Summarize(100); s.UpdateUsers != 1 || s.AddMembers != 1 || s.CreateGroups != 0 {
		t.Fatalf("targeted plan for u2 = %+v, want one update and one member add", s)
	}
	if diff := cmp.Diff([]string{"alice.smith@example.com", "bob@example.com"}, e.view().Groups["Administrators"]); diff != "" {
		t.Errorf("Administrators, want alice and bob (-want +got):\n%s", diff)
	}

	// Only the new group: created with bob and frank (created for it), nobody else.
	res = e.run(r, reconcile.RunOptions{Only: only(nil, []string{"g-new"})})
	if s := res.Plan.Summarize(100); s.CreateGroups != 1 || s.CreateUsers != 1 || s.UpdateUsers != 0 {
		t.Fatalf("targeted plan for g-new = %+v, want the group and frank created", s)
	}
	v = e.view()
	if diff := cmp.Diff([]string{"bob@example.com", "frank@example.com"}, v.Groups["New"]); diff != "" {
		t.Errorf("New (-want +got):\n%s", diff)
	}
	if _, ok := v.Users["eve@example.com"]; ok {
		t.Error("eve was created by a run that named only g-new")
	}

	// A full run still finds what no targeted run did: eve and her Engineering membership,
	// Finance's rename and dave's departure (his memberships go with his delete).
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := plan.Summary{CreateUsers: 1, UpdateGroups: 1, DeleteUsers: 1, AddMembers: 1}
	got := res.Plan.Summarize(100)
	got.LowerBound = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("full plan after targeted runs (-want +got):\n%s\n%s", diff, planText(res.Plan))
	}

	// Only dave: his delete goes through the same guards.
	blocking := e.reconciler(func(c *reconcile.Config) {
		c.FullReconcileEvery = time.Hour
		c.Guards = plan.Guards{MaxDeletes: 0, MaxDeletePercent: -1}
	})
	_, err = blocking.RunOnce(context.Background(), reconcile.RunOptions{Only: only([]string{"u4"}, nil)})
	var blocked *plan.BlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("targeted delete past max_deletes 0: err = %v, want blocked", err)
	}
	e.run(r, reconcile.RunOptions{Only: only([]string{"u4"}, nil)})
	if _, ok := e.view().Users["dave@example.com"]; ok {
		t.Error("dave was not deleted by a run that named him")
	}

	// Every targeted run is in the history, with its selection.
	runs, err := e.st.Runs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var targeted []string
	for _, run := range runs {
		if first, _, _ := strings.Cut(run.Plan, "\n"); strings.HasPrefix(first, "Targeted sync of ") {
			targeted = append(targeted, run.Result+": "+first)
		}
	}
	slices.Reverse(targeted)
	wantRuns := []string{
		"success: Targeted sync of users u1.",
		"success: Targeted sync of users u2.",
		"success: Targeted sync of groups g-new.",
		"blocked: Targeted sync of users u4.",
		"success: Targeted sync of users u4.",
	}
	if diff := cmp.Diff(wantRuns, targeted); diff != "" {
		t.Errorf("targeted runs in the history (-want +got):\n%s", diff)
	}

	e.run(r, reconcile.RunOptions{})
	if p := e.run(r, reconcile.RunOptions{FullRead: true}).Plan; !p.Empty() {
		t.Errorf("did not converge after the full run: %s", planText(p))
	}
}

func planText(p *plan.Plan) string {
	var b strings.Builder
	_ = p.WriteText(&b, 100)
	return b.String()
}

func TestSelectionMerge(t *testing.T) {
	a := reconcile.Selection{Users: []string{"u2", "u1"}}
	b := reconcile.Selection{Users: []string{"u1", " "}, Groups: []string{"g"}}
	got := a.Merge(b)
	if diff := cmp.Diff(reconcile.Selection{Users: []string{"u1", "u2"}, Groups: []string{"g"}}, got); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	if got.String() != "users u1, u2; groups g" || (reconcile.Selection{}).String() != "everything" {
		t.Errorf("String() = %q", got.String())
	}
	if !(reconcile.Selection{}).Empty() || got.Empty() {
		t.Error("Empty() is wrong")
	}
}

// TestNewGroupDoesNotRecordItsMembersAsWritten: a run naming a new group creates it with its
// existing members, whose own changes it does not send; the state store must not record them as
// written, or the run naming the member would find nothing to do and the change would wait for
// the next full read.
func TestNewGroupDoesNotRecordItsMembersAsWritten(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler(func(c *reconcile.Config) { c.FullReconcileEvery = time.Hour })
	e.set(company())
	e.run(r, reconcile.RunOptions{})

	d := company()
	d.Users[1].DisplayName = "Robert" // u2 changed
	d.Groups = append(d.Groups, scim.Group{ExternalID: "g-new", DisplayName: "New", Members: []string{"u2"}})
	e.set(d)
	res := e.run(r, reconcile.RunOptions{Only: only(nil, []string{"g-new"})})
	if s := res.Plan.Summarize(100); s.CreateGroups != 1 || s.UpdateUsers != 0 {
		t.Fatalf("plan naming g-new = %+v, want the group created and no user update", s)
	}
	res = e.run(r, reconcile.RunOptions{Only: only([]string{"u2"}, nil)})
	if s := res.Plan.Summarize(100); s.UpdateUsers != 1 {
		t.Errorf("plan naming u2 after g-new's run = %+v, want bob's update (the group's run recorded it as written)", s)
	}
}
