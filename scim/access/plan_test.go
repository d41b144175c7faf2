package access

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
)

var (
	admin   = PermissionSet{Name: "AdministratorAccess", ManagedPolicies: []string{"arn:aws:iam::aws:policy/AdministratorAccess"}}
	billing = PermissionSet{Name: "Billing", ManagedPolicies: []string{"arn:aws:iam::aws:policy/job-function/Billing"}}
	ro      = PermissionSet{Name: "ReadOnly", ManagedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}}
)

func keys(gs []Grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Key().String())
	}
	return out
}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rule     Rule
		want     []string
		problems []string
	}{
		{"by name on all accounts, suspended left out", Rule{Key: "r", Groups: []string{"administrators"}, PermissionSets: []string{"AdministratorAccess"}, Accounts: []string{"all"}},
			[]string{"group g-admins / AdministratorAccess / 111111111111", "group g-admins / AdministratorAccess / 222222222222", "group g-admins / AdministratorAccess / 333333333333"}, nil},
		{"by account name", Rule{Key: "r", Groups: []string{"Finance"}, PermissionSets: []string{"Billing"}, Accounts: []string{"Production"}},
			[]string{"group g-fin / Billing / 222222222222"}, nil},
		{"the management account", Rule{Key: "r", Groups: []string{"Finance"}, PermissionSets: []string{"Billing"}, Accounts: []string{"management"}},
			[]string{"group g-fin / Billing / 111111111111"}, nil},
		{"pattern captures", Rule{Key: "r", GroupPattern: pattern(`AWS-(?P<account>\d{12})-(?P<permission_set>.+)`), PermissionSets: []string{"$permission_set"}, Accounts: []string{"$account"}},
			[]string{"group g-ro / ReadOnly / 222222222222"}, nil},
		{"OU by name is recursive", Rule{Key: "r", Users: []string{"ALICE@example.com"}, PermissionSets: []string{"ReadOnly"}, OUs: []string{"Workloads"}},
			[]string{"user u-1 / ReadOnly / 222222222222", "user u-1 / ReadOnly / 333333333333"}, nil},
		{"OU by id", Rule{Key: "r", Users: []string{"bob@example.com"}, PermissionSets: []string{"ReadOnly"}, OUs: []string{"ou-sand"}},
			[]string{"user u-2 / ReadOnly / 333333333333"}, nil},
		{"tags", Rule{Key: "r", Groups: []string{"Finance"}, PermissionSets: []string{"ReadOnly"}, AccountTags: map[string]string{"env": "prod"}},
			[]string{"group g-fin / ReadOnly / 222222222222"}, nil},
		{"unknowns are problems, the rest applies", Rule{Key: "r", Groups: []string{"Finance", "Nobody"}, PermissionSets: []string{"Billing"}, Accounts: []string{"999999999999", "Management", "444444444444"}, OUs: []string{"Nowhere"}},
			[]string{"group g-fin / Billing / 111111111111"},
			[]string{
				`assignment rule "r.accounts": account 444444444444 (Closed) is SUSPENDED; only active accounts get assignments`,
				`assignment rule "r.accounts": no account of the organization has the id or name "999999999999"`,
				`assignment rule "r.groups": no group of the source is named "Nobody"`,
				`assignment rule "r.organizational_units": no organizational unit has the id or name "Nowhere"`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grants, problems := Evaluate([]Rule{tc.rule}, testSnapshot(), testOrg())
			if diff := cmp.Diff(tc.want, keys(grants)); diff != "" {
				t.Errorf("grants (-want +got):\n%s", diff)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.problems, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func classic() []Rule {
	return []Rule{
		{Key: "access.assignments[0]", Groups: []string{"Administrators"}, PermissionSets: []string{"AdministratorAccess"}, Accounts: []string{"all"}},
		{Key: "access.assignments[1]", Groups: []string{"Finance"}, PermissionSets: []string{"Billing"}, Accounts: []string{"111111111111"}},
		{Key: "access.assignments[2]", GroupPattern: pattern(`AWS-(?P<account>\d{12})-(?P<permission_set>.+)`), PermissionSets: []string{"$permission_set"}, Accounts: []string{"$account"}},
	}
}

func TestFirstRunThenNothing(t *testing.T) {
	w := newInstance()
	defined := []PermissionSet{admin, billing, ro}
	p := w.plan(classic(), defined, testSnapshot(), testOrg(), plan.PolicySync)
	if got := len(p.CreatePermissionSets); got != 3 {
		t.Errorf("got %d permission sets to create, want 3", got)
	}
	if got := len(p.CreateAssignments); got != 5 {
		t.Errorf("got %d assignments to create, want 5 (3 admin, 1 billing, 1 read-only):\n%v", got, p.CreateAssignments)
	}
	res := w.apply(t, p)
	if res.AssignmentsCreated != 5 || res.PermissionSetsCreated != 3 || res.Failed != 0 {
		t.Errorf("apply: got %+v, want 3 permission sets and 5 assignments created, none failed", res)
	}
	if p := w.plan(classic(), defined, testSnapshot(), testOrg(), plan.PolicySync); !p.Empty() {
		t.Errorf("second plan: got %d writes, want none:\n%+v", p.Writes(), p)
	}
}

func TestNewAccountAndGroupRename(t *testing.T) {
	w := newInstance()
	defined := []PermissionSet{admin, billing, ro}
	org, snap := testOrg(), testSnapshot()
	w.apply(t, w.plan(classic(), defined, snap, org, plan.PolicySync))

	// A new account: Administrators get it on the next run.
	org.Accounts = append(org.Accounts, Account{ID: "555555555555", Name: "New", Status: "ACTIVE", ParentID: "ou-work", Path: []string{"r-root", "ou-work"}})
	p := w.plan(classic(), defined, snap, org, plan.PolicySync)
	if diff := cmp.Diff([]string{"group g-admins / AdministratorAccess / 555555555555"}, changeKeys(p.CreateAssignments)); diff != "" || len(p.DeleteAssignments) > 0 {
		t.Errorf("new account: creates (-want +got):\n%s\ndeletes: %v", diff, p.DeleteAssignments)
	}
	w.apply(t, p)

	// A rename that the rule still matches keeps the assignments: matched by externalId.
	rules := classic()
	rules[0].Groups = []string{"Administrators", "Platform Admins"}
	snap.Groups[0].DisplayName = "Platform Admins"
	if p := w.plan(rules, defined, snap, org, plan.PolicySync); !p.Empty() {
		t.Errorf("after a rename: got %d writes, want none:\n%+v", p.Writes(), p)
	}
}

func changeKeys(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Key().String())
	}
	return out
}

func TestUnownedAssignmentLeftAlone(t *testing.T) {
	w := newInstance()
	defined := []PermissionSet{admin, billing, ro}
	snap := testSnapshot()
	w.apply(t, w.plan(classic(), defined, snap, testOrg(), plan.PolicySync))
	// Someone assigns Finance ReadOnly on production by hand, and Billing (the rule's own) on the
	// sandbox.
	var roARN, billARN string
	for arn, ps := range w.sets {
		switch ps.Name {
		case "ReadOnly":
			roARN = arn
		case "Billing":
			billARN = arn
		}
	}
	hand := []Assignment{
		{AccountID: "222222222222", PermissionSetARN: roARN, PrincipalType: PrincipalGroup, PrincipalID: "id-g-fin"},
		{AccountID: "333333333333", PermissionSetARN: billARN, PrincipalType: PrincipalGroup, PrincipalID: "id-g-fin"},
	}
	for _, a := range hand {
		w.assignments[a] = true
	}
	p := w.plan(classic(), defined, snap, testOrg(), plan.PolicySync)
	if !p.Empty() || p.UnmanagedAssignments != 2 {
		t.Errorf("got %d writes and %d unmanaged assignments, want none and 2:\n%+v", p.Writes(), p.UnmanagedAssignments, p)
	}
	// The Finance rule goes away: only its own assignment is deleted.
	rules := slices.Delete(classic(), 1, 2)
	p = w.plan(rules, defined, snap, testOrg(), plan.PolicySync)
	if diff := cmp.Diff([]string{"group g-fin / Billing / 111111111111"}, changeKeys(p.DeleteAssignments)); diff != "" {
		t.Errorf("deletes (-want +got):\n%s", diff)
	}
	w.apply(t, p)
	for _, a := range hand {
		if !w.assignments[a] {
			t.Errorf("the hand-made assignment %+v was removed", a)
		}
	}
}

func TestPoliciesNeverRemoveAccessUnlessSync(t *testing.T) {
	for _, policy := range []plan.Policy{plan.PolicyUpsertOnly, plan.PolicyCreateOnly} {
		w := newInstance()
		defined := []PermissionSet{admin, billing, ro}
		w.apply(t, w.plan(classic(), defined, testSnapshot(), testOrg(), plan.PolicySync))
		changed := billing
		changed.SessionDuration = "PT8H"
		p := w.plan(classic()[:1], []PermissionSet{admin, changed}, testSnapshot(), testOrg(), policy)
		if len(p.DeleteAssignments)+len(p.DeletePermissionSets) > 0 {
			t.Errorf("%s: got %d assignment and %d permission set deletes, want none", policy, len(p.DeleteAssignments), len(p.DeletePermissionSets))
		}
		if wantUpdates := policy == plan.PolicyUpsertOnly; (len(p.UpdatePermissionSets) == 1) != wantUpdates {
			t.Errorf("%s: got %d permission set updates, want updates: %v", policy, len(p.UpdatePermissionSets), wantUpdates)
		}
	}
}

func TestPolicyChangeIsProvisioned(t *testing.T) {
	w := newInstance()
	w.apply(t, w.plan(classic(), []PermissionSet{admin, billing, ro}, testSnapshot(), testOrg(), plan.PolicySync))
	changed := billing
	changed.InlinePolicy = `{"Version": "2012-10-17", "Statement": []}`
	p := w.plan(classic(), []PermissionSet{admin, changed, ro}, testSnapshot(), testOrg(), plan.PolicySync)
	if len(p.UpdatePermissionSets) != 1 || len(p.ProvisionPermissionSets) != 1 || p.Writes() != 2 {
		t.Fatalf("got %d updates, %d provisions, %d writes; want 1, 1, 2", len(p.UpdatePermissionSets), len(p.ProvisionPermissionSets), p.Writes())
	}
	if f := p.UpdatePermissionSets[0].Fields; len(f) != 1 || f[0].Name != "inlinePolicy" || strings.Contains(f[0].To, "Statement") {
		t.Errorf("fields: got %+v, want inlinePolicy shown by size and fingerprint only", f)
	}
	w.apply(t, p)
	if diff := cmp.Diff([]string{"Billing"}, w.provisioned); diff != "" {
		t.Errorf("provisioned (-want +got):\n%s", diff)
	}
	if p := w.plan(classic(), []PermissionSet{admin, changed, ro}, testSnapshot(), testOrg(), plan.PolicySync); !p.Empty() {
		t.Errorf("after the update: got %d writes, want none", p.Writes())
	}
}

func TestUnownedPermissionSetIsNeverModified(t *testing.T) {
	w := newInstance()
	arn, _ := w.CreatePermissionSet(t.Context(), Instance{}, billing) // made by someone else
	changed := billing
	changed.Description = "ours"
	p := w.plan(classic()[1:2], []PermissionSet{changed}, testSnapshot(), testOrg(), plan.PolicySync)
	if len(p.UpdatePermissionSets)+len(p.CreatePermissionSets) > 0 || len(p.CreateAssignments) != 1 || p.CreateAssignments[0].PermissionSetARN != arn {
		t.Errorf("got %d updates, %d creates, assignments %+v; want the existing set used as it is", len(p.UpdatePermissionSets), len(p.CreatePermissionSets), p.CreateAssignments)
	}
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0].Reason, "never modified") {
		t.Errorf("problems: got %v, want one saying the set is used as it is", p.Problems)
	}
}

func TestFailedAssignmentIsReportedAndRetried(t *testing.T) {
	w := newInstance()
	p := w.plan(classic()[1:2], []PermissionSet{billing}, testSnapshot(), testOrg(), plan.PolicySync)
	// The ARN is only known once the set is created: fail every create of the group's.
	w.fail = nil
	res, err := Apply(t.Context(), failing{w}, Instance{}, p, w, func() time.Time { return time.Time{} })
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], `group "Finance" "Billing" on 111111111111 (Management): create: FAILED`) {
		t.Errorf("got %+v, want one failure naming the record and the reason", res)
	}
	if len(w.owned.Assignments) != 0 {
		t.Errorf("a failed create stays recorded as owned: %v", w.owned.Assignments)
	}
	if p := w.plan(classic()[1:2], []PermissionSet{billing}, testSnapshot(), testOrg(), plan.PolicySync); len(p.CreateAssignments) != 1 {
		t.Errorf("next plan: got %d creates, want the failed one again", len(p.CreateAssignments))
	}
}

// failing fails every assignment create.
type failing struct{ *instance }

func (f failing) ApplyAssignments(_ context.Context, inst Instance, ops []AssignmentOp, done func(OpResult)) error {
	for _, op := range ops {
		done(OpResult{Op: op, Err: errors.New("FAILED: no permission to provision the role"), Requests: 2})
	}
	return nil
}

func TestGuardBlocksMassRemoval(t *testing.T) {
	w := newInstance()
	w.apply(t, w.plan(classic(), []PermissionSet{admin, billing, ro}, testSnapshot(), testOrg(), plan.PolicySync))
	p := w.plan(classic()[1:2], []PermissionSet{admin, billing, ro}, testSnapshot(), testOrg(), plan.PolicySync)
	if len(p.DeleteAssignments) != 4 {
		t.Fatalf("got %d deletes, want 4", len(p.DeleteAssignments))
	}
	err := DefaultGuards.Check(p)
	var be *plan.BlockedError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "4 of 5 owned account assignments (80.0%) would be deleted") || !slices.Equal(be.Flags, []string{"--allow-assignment-deletes 4"}) {
		t.Fatalf("got %v, want a block by max_assignment_delete_percent naming --allow-assignment-deletes 4", err)
	}
	g := DefaultGuards
	g.AllowDeletes = 4
	if err := g.Check(p); err != nil {
		t.Errorf("with --allow-assignment-deletes 4: got %v, want nil", err)
	}
	g = DefaultGuards
	g.MaxDeletes = 2
	if err := g.Check(p); err == nil || !strings.Contains(err.Error(), "more than max_assignment_deletes (2)") {
		t.Errorf("max_deletes 2: got %v", err)
	}
}

// TestRandomPlansConverge is the planner's property: from any instance (some access owned, some
// made by hand, some owned access removed by hand), applying the plan leaves an instance whose next
// plan is empty, and nothing scimbridge does not own is changed.
func TestRandomPlansConverge(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		org := testOrg()
		snap := scim.Snapshot{}
		for i := range 6 {
			snap.Groups = append(snap.Groups, scim.Group{ExternalID: fmt.Sprintf("g%d", i), DisplayName: fmt.Sprintf("team-%d", i)})
		}
		sets := []PermissionSet{admin, billing, ro}
		randomRules := func() []Rule {
			var rules []Rule
			for i := range 1 + rng.IntN(4) {
				r := Rule{Key: fmt.Sprintf("r%d", i), PermissionSets: []string{sets[rng.IntN(3)].Name}}
				r.Groups = []string{fmt.Sprintf("team-%d", rng.IntN(6)), fmt.Sprintf("team-%d", rng.IntN(6))}
				switch rng.IntN(4) {
				case 0:
					r.Accounts = []string{"all"}
				case 1:
					r.OUs = []string{"Workloads"}
				case 2:
					r.AccountTags = map[string]string{"env": "prod"}
				default:
					r.Accounts = []string{org.Accounts[rng.IntN(3)].ID}
				}
				rules = append(rules, r)
			}
			return rules
		}
		w := newInstance()
		w.apply(t, w.plan(randomRules(), sets, snap, org, plan.PolicySync))
		// Hand-made access, and owned access removed by hand.
		var arns []string
		for arn := range w.sets {
			arns = append(arns, arn)
		}
		slices.Sort(arns)
		hand := map[Assignment]bool{}
		for range 3 {
			a := Assignment{AccountID: org.Accounts[rng.IntN(3)].ID, PermissionSetARN: arns[rng.IntN(len(arns))], PrincipalType: PrincipalGroup, PrincipalID: fmt.Sprintf("id-g%d", rng.IntN(6))}
			if !w.assignments[a] {
				w.assignments[a] = true
				hand[a] = true
			}
		}
		for a := range w.assignments {
			if !hand[a] && rng.IntN(4) == 0 {
				delete(w.assignments, a)
			}
		}
		rules, defined := randomRules(), sets[:1+rng.IntN(3)]
		w.apply(t, w.plan(rules, defined, snap, org, plan.PolicySync))
		if p2 := w.plan(rules, defined, snap, org, plan.PolicySync); !p2.Empty() {
			t.Fatalf("seed %d: the next plan creates %v, deletes %v and has %d writes in all; want none", seed, changeKeys(p2.CreateAssignments), changeKeys(p2.DeleteAssignments), p2.Writes())
		}
		for a := range hand {
			if !w.assignments[a] {
				t.Fatalf("seed %d: hand-made assignment %+v was removed", seed, a)
			}
		}
	}
}

// TestLostCreateIsClaimed: a permission set whose create was sent but whose answer was lost (the
// process died) is recorded as pending; the next plan claims the set of that name instead of
// taking it for someone else's, and updates it to the definition.
func TestLostCreateIsClaimed(t *testing.T) {
	w := newInstance()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: PendingARN, Written: billing}, time.Time{}))
	arn, err := w.CreatePermissionSet(ctx, Instance{}, billing) // sent; the answer never recorded
	must(err)
	changed := billing
	changed.Description = "now described"
	p := w.plan(classic()[1:2], []PermissionSet{changed}, testSnapshot(), testOrg(), plan.PolicySync)
	if len(p.ClaimPermissionSets) != 1 || p.ClaimPermissionSets[0].ARN != arn || len(p.CreatePermissionSets) != 0 || len(p.UpdatePermissionSets) != 1 || len(p.Problems) != 0 {
		t.Fatalf("got claims %v, %d creates, %d updates, problems %v; want the set claimed and updated", p.ClaimPermissionSets, len(p.CreatePermissionSets), len(p.UpdatePermissionSets), p.Problems)
	}
	w.apply(t, p)
	if got := w.owned.PermissionSets["Billing"].ARN; got != arn {
		t.Errorf("owned ARN: got %q, want %q", got, arn)
	}
	if p := w.plan(classic()[1:2], []PermissionSet{changed}, testSnapshot(), testOrg(), plan.PolicySync); !p.Empty() {
		t.Errorf("next plan: %d writes, want none", p.Writes())
	}
	// A pending record whose set never came to be is forgotten, and the set created.
	w = newInstance()
	must(w.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: PendingARN, Written: billing}, time.Time{}))
	p = w.plan(classic()[1:2], []PermissionSet{billing}, testSnapshot(), testOrg(), plan.PolicySync)
	if len(p.CreatePermissionSets) != 1 || !slices.Equal(p.ForgetPermissionSets, []string{"Billing"}) {
		t.Errorf("got %d creates, forget %v; want the create and the pending record forgotten", len(p.CreatePermissionSets), p.ForgetPermissionSets)
	}
}

func TestExplain(t *testing.T) {
	ex, err := Explain(classic(), testSnapshot(), testOrg(), PrincipalUser, "Alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range ex.Grants {
		got = append(got, g.PermissionSet+" on "+g.AccountID+" via "+g.Via)
	}
	want := []string{"AdministratorAccess on 111111111111 via Administrators", "AdministratorAccess on 222222222222 via Administrators",
		"ReadOnly on 222222222222 via AWS-222222222222-ReadOnly", "AdministratorAccess on 333333333333 via Administrators"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"AWS-222222222222-ReadOnly", "Administrators"}, ex.Groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if _, err := Explain(classic(), testSnapshot(), testOrg(), PrincipalGroup, "Nobody"); err == nil || !strings.Contains(err.Error(), `no group of the source is named "Nobody"`) {
		t.Errorf("an unknown group: got %v", err)
	}
}
