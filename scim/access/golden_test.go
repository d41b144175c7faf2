package access

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/scimbridge/scimbridge/scim/golden"
	"github.com/scimbridge/scimbridge/scim/plan"
)

func renderPlan(t *testing.T, p *Plan) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("=== text\n")
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("=== json\n")
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGoldenPlans renders access plans as sync prints them: the first run of the classic setup
// (a group the same run creates named as such), a week later (a new account, a changed policy, a
// rule removed, a hand-made assignment), and a run with nothing to do.
//
//	go test ./scim/access/ -run TestGoldenPlans -update
func TestGoldenPlans(t *testing.T) {
	defined := []PermissionSet{admin, billing, ro}
	w := newInstance()
	snap := testSnapshot()
	first := w.plan(classic(), defined, snap, testOrg(), plan.PolicySync)
	for i, c := range first.CreateAssignments {
		if c.Principal.ExternalID == "g-fin" { // as a dry run shows a group the users and groups plan creates
			first.CreateAssignments[i].Principal.ID, first.CreateAssignments[i].Principal.Created = "", true
		}
	}
	golden.Check(t, filepath.Join("testdata", "first-run.golden"), renderPlan(t, first))

	w.apply(t, w.plan(classic(), defined, snap, testOrg(), plan.PolicySync))
	golden.Check(t, filepath.Join("testdata", "no-change.golden"), renderPlan(t, w.plan(classic(), defined, snap, testOrg(), plan.PolicySync)))

	org := testOrg()
	org.Accounts = append(org.Accounts, Account{ID: "555555555555", Name: "Analytics", Status: "ACTIVE", ParentID: "ou-work", Path: []string{"r-root", "ou-work"}})
	changed := billing
	changed.SessionDuration, changed.Description = "PT8H", "Billing and cost management"
	for arn, ps := range w.sets {
		if ps.Name == "ReadOnly" {
			w.assignments[Assignment{AccountID: "333333333333", PermissionSetARN: arn, PrincipalType: PrincipalUser, PrincipalID: "id-u-2"}] = true
		}
	}
	rules := append(classic()[:2], Rule{Key: "access.assignments[2]", Users: []string{"bob@example.com", "carol@example.com"}, PermissionSets: []string{"ViewOnlyAccess"}, Accounts: []string{"Production"}})
	golden.Check(t, filepath.Join("testdata", "week-later.golden"), renderPlan(t, w.plan(rules, []PermissionSet{admin, changed}, snap, org, plan.PolicySync)))
}
