package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// clashKeys lists a plan's clashes as comparable lines.
func clashKeys(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Clashes {
		out = append(out, fmt.Sprintf("%s/%s %s %s adopt=%s", c.Kind, c.ExternalID, c.Field, c.TargetID, c.Adopt))
	}
	slices.Sort(out)
	return out
}

// TestClashAfterTrustedCreateIsOneOutcome is issue 13 items 1, 2 and 7: a create that runs into a
// user made by someone else since the last full read leaves no pending entry behind, is reported
// as a clash (not a failure), and the next runs, trusted or full, report the same clash; the
// trusted one makes no request at all and says that it did not read the target.
func TestClashAfterTrustedCreateIsOneOutcome(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	r := e.reconciler(func(c *reconcile.Config) {
		c.FullReconcileEvery = time.Hour
		c.Now = func() time.Time { return now }
	})
	d := company()
	bob := d.Users[1]
	d.Users = slices.Delete(d.Users, 1, 2)
	for i := range d.Groups {
		d.Groups[i].Members = slices.DeleteFunc(d.Groups[i].Members, func(m string) bool { return m == "u2" })
	}
	e.set(d)
	e.run(r, reconcile.RunOptions{}) // full read, bob not in the directory yet
	// Someone makes bob by hand; then bob joins the directory.
	manual := bob
	manual.ExternalID = "manual-bob"
	if _, err := e.client.CreateUser(context.Background(), manual, ""); err != nil {
		t.Fatal(err)
	}
	e.set(company())
	now = now.Add(time.Minute)
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	if err != nil || res.FullRead || res.Counts.Failed != 0 {
		t.Fatalf("trusted run with a clash: err %v full %v counts %+v errors %v", err, res.FullRead, res.Counts, res.Errors)
	}
	if len(res.Plan.Clashes) != 1 || res.Plan.Clashes[0].Adopt != plan.AdoptName {
		t.Fatalf("clashes %+v, want bob's userName, hint adopt: name", res.Plan.Clashes)
	}
	if p, _ := e.st.Pending(context.Background(), state.KindUser); len(p) != 0 {
		t.Fatalf("pending entries left after the clash: %v", p)
	}
	// The next trusted run: no request, the same clash, and a headline that does not claim a match.
	e.srv.Emu.ResetStats()
	now = now.Add(time.Minute)
	trusted := e.run(r, reconcile.RunOptions{})
	if n := total(e.srv.Emu.Stats()); n != 0 || trusted.FullRead {
		t.Fatalf("no-change run after a clash: %d requests (%v), full read %v", n, e.srv.Emu.Stats(), trusted.FullRead)
	}
	out := planText(trusted.Plan)
	if strings.Contains(out, "The target matches the source") || !strings.Contains(out, "target not read this run") || !strings.Contains(out, "set adopt: name") {
		t.Errorf("trusted run output:\n%s", out)
	}
	full := e.run(r, reconcile.RunOptions{FullRead: true})
	if diff := cmp.Diff(clashKeys(trusted.Plan), clashKeys(full.Plan)); diff != "" {
		t.Errorf("full read clashes differ from the trusted run's, want one outcome (-trusted +full):\n%s", diff)
	}
	if full.Counts.Skipped != trusted.Counts.Skipped || full.Counts.Skipped != 1 {
		t.Errorf("skipped: full %d, trusted %d, want 1 each", full.Counts.Skipped, trusted.Counts.Skipped)
	}
}

// TestConflictNeverClaimsAnOlderObject: a create that meets a 409 and finds a user with its
// externalId that was made before the create's intent (minus the clock-skew margin) leaves it
// alone: it is someone else's, however well its externalId matches.
func TestConflictNeverClaimsAnOlderObject(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	r := e.reconciler(func(c *reconcile.Config) {
		c.FullReconcileEvery = 24 * time.Hour
		c.Now = func() time.Time { return now }
	})
	d := company()
	e.set(scim.Snapshot{Users: d.Users[:1]})
	e.run(r, reconcile.RunOptions{})
	// Another tool makes bob with the same source id after the full read.
	if _, err := e.client.CreateUser(context.Background(), d.Users[1], ""); err != nil {
		t.Fatal(err)
	}
	// scimbridge's clock runs an hour later than the target's creation of bob.
	now = now.Add(time.Hour)
	e.set(scim.Snapshot{Users: d.Users[:2]})
	res := e.run(r, reconcile.RunOptions{})
	if res.FullRead || res.Counts.Created != 0 || res.Counts.Updated != 0 || len(res.Plan.Clashes) != 1 || res.Plan.Clashes[0].Field != "externalId" {
		t.Fatalf("counts %+v clashes %+v\n%s", res.Counts, res.Plan.Clashes, planText(res.Plan))
	}
	if objs, _ := e.st.Objects(context.Background(), state.KindUser); len(objs) != 1 {
		t.Errorf("owned users %d, want 1 (bob must not be claimed)", len(objs))
	}
}

// TestSwapsConvergeInOneRun: two owned users swap userNames and two owned groups swap
// displayNames; one run does it through temporary names, with one extra request per swap.
func TestSwapsConvergeInOneRun(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler()
	e.set(company())
	e.run(r, reconcile.RunOptions{})
	d := company()
	d.Users[0].UserName, d.Users[1].UserName = d.Users[1].UserName, d.Users[0].UserName
	d.Groups[0].DisplayName, d.Groups[1].DisplayName = d.Groups[1].DisplayName, d.Groups[0].DisplayName
	e.set(d)
	e.srv.Emu.ResetStats()
	res := e.run(r, reconcile.RunOptions{})
	if len(res.Plan.Problems) != 0 || res.Counts.Failed != 0 {
		t.Fatalf("swap: problems %v errors %v", res.Plan.Problems, res.Errors)
	}
	if got, want := writes(e.srv.Emu.Stats()), int64(res.Plan.LowerBound(100)); got != want || want != 6 {
		t.Errorf("swap made %d writes, lower bound %d, want 6 (4 renames + 2 temporary)", got, want)
	}
	v := e.view()
	if v.Users["alice@example.com"] != "u2 bob@example.com true" || v.Users["bob@example.com"] != "u1 alice@example.com true" {
		t.Errorf("users after the swap: got %v, want alice = %q and bob = %q", v.Users, "u2 bob@example.com true", "u1 alice@example.com true")
	}
	if len(v.Groups["Administrators"]) != 2 || len(v.Groups["Finance"]) != 1 {
		t.Errorf("groups after the swap: got %v, want 2 members of Administrators and 1 of Finance", v.Groups)
	}
	if p := e.run(r, reconcile.RunOptions{FullRead: true}).Plan; !p.Empty() || len(p.Problems) != 0 {
		t.Errorf("not converged:\n%s", planText(p))
	}
}
