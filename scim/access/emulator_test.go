package access_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/access/awsaccess"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// live is the embedded Identity Center with the real SDK clients (through awsaccess) and a real
// state store: a run plans from what the reader reads and applies through the applier.
type live struct {
	t      *testing.T
	srv    *emulatortest.Server
	c      *awsaccess.Client
	sso    *ssoadmin.Client
	st     state.AccessStore
	inst   access.Instance
	snap   scim.Snapshot
	groups map[string]string // externalId -> identity store id
	rules  []access.Rule
	sets   []access.PermissionSet
	policy plan.Policy
}

func startLive(t *testing.T) *live {
	t.Helper()
	srv := emulatortest.Start(t, emulator.Options{Access: emulator.AccessOptions{RateLimit: -1, CompletionDelay: 10 * time.Millisecond}})
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	sso := ssoadmin.NewFromConfig(cfg, func(o *ssoadmin.Options) { o.BaseEndpoint = aws.String(srv.SSOAdminEndpoint) })
	org := organizations.NewFromConfig(cfg, func(o *organizations.Options) { o.BaseEndpoint = aws.String(srv.OrganizationsEndpoint) })
	ids := identitystore.NewFromConfig(cfg, func(o *identitystore.Options) { o.BaseEndpoint = aws.String(srv.IdentityStoreEndpoint) })
	st, err := state.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l := &live{t: t, srv: srv, sso: sso, st: state.AccessStore{Store: st}, groups: map[string]string{}, policy: plan.PolicySync,
		c: awsaccess.New(sso, org, awsaccess.Options{Rate: 1000, PollMin: 2 * time.Millisecond, FirstEstimate: 10 * time.Millisecond})}
	if l.inst, err = l.c.Instance(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The groups of the directory, as a sync would have made them.
	for _, g := range []scim.Group{{ExternalID: "g-admins", DisplayName: "Administrators"}, {ExternalID: "g-fin", DisplayName: "Finance"},
		{ExternalID: "g-ro"}, {ExternalID: "g-eng", DisplayName: "Engineering"}} {
		if g.ExternalID == "g-ro" {
			g.DisplayName = "AWS-" + srv.Emu.AccountIDs()[3] + "-ReadOnly"
		}
		out, err := ids.CreateGroup(context.Background(), &identitystore.CreateGroupInput{IdentityStoreId: aws.String(srv.StoreID), DisplayName: aws.String(g.DisplayName)})
		if err != nil {
			t.Fatal(err)
		}
		l.groups[g.ExternalID] = aws.ToString(out.GroupId)
		l.snap.Groups = append(l.snap.Groups, g)
	}
	l.sets = []access.PermissionSet{
		{Name: "AdministratorAccess", ManagedPolicies: []string{"arn:aws:iam::aws:policy/AdministratorAccess"}},
		{Name: "Billing", ManagedPolicies: []string{"arn:aws:iam::aws:policy/job-function/Billing"}},
		{Name: "ReadOnly", ManagedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}},
		{Name: "DevOps", CustomerManagedPolicies: []access.CustomerPolicy{{Name: "team-boundary"}}},
	}
	l.rules = []access.Rule{
		{Key: "access.assignments[0]", Groups: []string{"Administrators"}, PermissionSets: []string{"AdministratorAccess"}, Accounts: []string{"all"}},
		{Key: "access.assignments[1]", Groups: []string{"Finance"}, PermissionSets: []string{"Billing"}, Accounts: []string{"management"}},
		{Key: "access.assignments[2]", GroupPattern: regexp.MustCompile(`^(?:AWS-(?P<account>\d{12})-(?P<permission_set>.+))$`), PermissionSets: []string{"$permission_set"}, Accounts: []string{"$account"}},
		{Key: "access.assignments[3]", Groups: []string{"Engineering"}, PermissionSets: []string{"DevOps"}, OUs: []string{"Workloads"}, AccountTags: map[string]string{"env": "sandbox"}},
	}
	return l
}

// plan reads everything through the reader and plans, as the sync's access phase does.
func (l *live) plan() *access.Plan {
	l.t.Helper()
	ctx := context.Background()
	org, err := l.c.Organization(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	sets, err := l.c.PermissionSets(ctx, l.inst)
	if err != nil {
		l.t.Fatal(err)
	}
	owned, err := l.st.OwnedAccess(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	var refs []access.PrincipalRef
	var principals []access.Principal
	for _, g := range l.snap.Groups {
		refs = append(refs, access.PrincipalRef{Type: access.PrincipalGroup, ExternalID: g.ExternalID, Name: g.DisplayName, ID: l.groups[g.ExternalID]})
		principals = append(principals, access.Principal{Type: access.PrincipalGroup, ID: l.groups[g.ExternalID]})
	}
	as, err := l.c.Assignments(ctx, l.inst, principals)
	if err != nil {
		l.t.Fatal(err)
	}
	return access.Compute(access.Input{Rules: l.rules, Desired: l.snap, Org: org, Defined: l.sets, Current: sets, Assignments: as,
		Principals: refs, Owned: owned, Policy: l.policy})
}

func (l *live) apply(p *access.Plan) access.Result {
	l.t.Helper()
	res, err := access.Apply(context.Background(), l.c, l.inst, p, l.st, time.Now)
	if err != nil {
		l.t.Fatal(err)
	}
	return res
}

// held lists the instance's assignments as "account/permission set name/group externalId".
func (l *live) held() []string {
	names := map[string]string{}
	sets, err := l.c.PermissionSets(context.Background(), l.inst)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, ps := range sets {
		names[ps.ARN] = ps.Name
	}
	ext := map[string]string{}
	for e, id := range l.groups {
		ext[id] = e
	}
	var out []string
	for _, a := range l.srv.Emu.Assignments() {
		out = append(out, a.AccountID+"/"+names[a.PermissionSetARN]+"/"+ext[a.PrincipalID])
	}
	slices.Sort(out)
	return out
}

func writes(s emulator.Stats) int64 {
	var n int64
	for k, v := range s {
		op, ok := strings.CutPrefix(k, "sso-admin.")
		if ok && !strings.HasPrefix(op, "List") && !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "Get") && op != "throttled" {
			n += v
		}
	}
	return n
}

func TestAgainstTheEmulator(t *testing.T) {
	l := startLive(t)
	accounts := l.srv.Emu.AccountIDs()
	org, err := l.c.Organization(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sandboxes []string
	for _, a := range org.Accounts {
		if a.Tags["env"] == "sandbox" {
			sandboxes = append(sandboxes, a.ID)
		}
	}
	// One workload account is suspended at first: it is picked up once it is active.
	late := accounts[len(accounts)-1]
	if err := l.srv.Emu.SetAccountStatus(late, "SUSPENDED"); err != nil {
		t.Fatal(err)
	}

	// Rules by name (all accounts, the management account), a pattern's captures, an OU with tags.
	p := l.plan()
	if len(p.Problems) != 0 {
		t.Fatalf("problems: %v", p.Problems)
	}
	res := l.apply(p)
	if res.Failed != 0 {
		t.Fatalf("first apply: %+v", res)
	}
	var want []string
	for _, a := range accounts[:len(accounts)-1] {
		want = append(want, a+"/AdministratorAccess/g-admins")
	}
	want = append(want, accounts[0]+"/Billing/g-fin", accounts[3]+"/ReadOnly/g-ro")
	for _, s := range sandboxes { // the Engineering rule: OU Workloads or tagged sandbox
		if s != late {
			want = append(want, s+"/DevOps/g-eng")
		}
	}
	for _, a := range org.Accounts {
		if a.ID != late && slices.Contains(a.Path, unitID(org, "Workloads")) {
			want = append(want, a.ID+"/DevOps/g-eng")
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if got := l.held(); !slices.Equal(got, want) {
		t.Fatalf("assignments:\n got %q\nwant %q", got, want)
	}
	l.srv.Emu.ResetStats()
	if p := l.plan(); !p.Empty() {
		t.Fatalf("second plan: %d writes, want none: %+v", p.Writes(), p)
	}
	if n := writes(l.srv.Emu.Stats()); n != 0 {
		t.Errorf("a plan made %d sso-admin writes", n)
	}

	// The suspended account becomes active: Administrators (and Engineering, by OU) get it.
	if err := l.srv.Emu.SetAccountStatus(late, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	p = l.plan()
	if len(p.CreateAssignments) == 0 || slices.ContainsFunc(p.CreateAssignments, func(c access.Change) bool { return c.AccountID != late }) {
		t.Errorf("the new account: got creates %v, want those on %s only", p.CreateAssignments, late)
	}
	if res := l.apply(p); res.Failed != 0 {
		t.Fatalf("apply: %+v", res)
	}

	// A renamed group that a rule still matches keeps its assignments (same externalId and id).
	l.snap.Groups[0].DisplayName = "Platform Administrators"
	l.rules[0].Groups = []string{"Administrators", "Platform Administrators"}
	if p := l.plan(); !p.Empty() {
		t.Errorf("after a rename: %d writes, want none", p.Writes())
	}

	// An assignment made by hand (not owned) is left alone, counted, and survives its rule going.
	arnOf := func(name string) string {
		sets, err := l.c.PermissionSets(context.Background(), l.inst)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range sets {
			if ps.Name == name {
				return ps.ARN
			}
		}
		t.Fatalf("no permission set %s", name)
		return ""
	}
	_, err = l.sso.CreateAccountAssignment(context.Background(), &ssoadmin.CreateAccountAssignmentInput{InstanceArn: aws.String(l.inst.ARN),
		TargetId: aws.String(accounts[1]), TargetType: ssotypes.TargetTypeAwsAccount, PermissionSetArn: aws.String(arnOf("Billing")),
		PrincipalType: ssotypes.PrincipalTypeGroup, PrincipalId: aws.String(l.groups["g-fin"])})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // its completion delay
	p = l.plan()
	if !p.Empty() || p.UnmanagedAssignments != 1 {
		t.Errorf("with a hand-made assignment: %d writes, %d unmanaged; want 0 and 1", p.Writes(), p.UnmanagedAssignments)
	}
	l.rules = slices.Delete(l.rules, 1, 2) // Finance's rule goes
	p = l.plan()
	if len(p.DeleteAssignments) != 1 || p.DeleteAssignments[0].AccountID != accounts[0] {
		t.Fatalf("deletes: got %v, want Finance's own Billing on the management account only", p.DeleteAssignments)
	}
	l.apply(p)
	if got := l.held(); !slices.Contains(got, accounts[1]+"/Billing/g-fin") || slices.Contains(got, accounts[0]+"/Billing/g-fin") {
		t.Errorf("after removing the rule: %q", got)
	}

	// A permission set's policy changes: it is updated and provisioned again.
	l.sets[0].ManagedPolicies = append(l.sets[0].ManagedPolicies, "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess")
	l.srv.Emu.ResetStats()
	p = l.plan()
	if len(p.UpdatePermissionSets) != 1 || len(p.ProvisionPermissionSets) != 1 {
		t.Fatalf("policy change: %d updates, %d provisions; want 1 and 1", len(p.UpdatePermissionSets), len(p.ProvisionPermissionSets))
	}
	if res := l.apply(p); res.PermissionSetsProvisioned != 1 || res.Failed != 0 {
		t.Errorf("policy change: %+v", res)
	}
	if n := l.srv.Emu.Stats()["sso-admin.ProvisionPermissionSet"]; n != 1 {
		t.Errorf("ProvisionPermissionSet calls: got %d, want 1", n)
	}
	if p := l.plan(); !p.Empty() {
		t.Errorf("after the policy change: %d writes, want none", p.Writes())
	}

	// A mass removal (Administrators' rule goes) is blocked by the guard.
	l.rules = l.rules[1:]
	p = l.plan()
	var be *plan.BlockedError
	if err := access.DefaultGuards.Check(p); !errors.As(err, &be) || !strings.Contains(err.Error(), "--allow-assignment-deletes "+strconv.Itoa(len(accounts))) {
		t.Errorf("mass removal of %d: got %v, want a block naming the flag", len(p.DeleteAssignments), err)
	}
}

// TestFailedAssignment: an account that lacks a customer managed policy the permission set
// references fails the assignment (FAILED with AWS's reason): the record is reported, not owned,
// and planned again; the others go through.
func TestFailedAssignment(t *testing.T) {
	l := startLive(t)
	accounts := l.srv.Emu.AccountIDs()
	l.rules = []access.Rule{{Key: "access.assignments[0]", Groups: []string{"Engineering"}, PermissionSets: []string{"DevOps"}, Accounts: accounts[:3]}}
	l.srv.Emu.SetCustomerPolicyMissing(accounts[1], "team-boundary", true)
	res := l.apply(l.plan())
	if res.Failed != 1 || res.AssignmentsCreated != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], accounts[1]) {
		t.Fatalf("got %+v, want one FAILED record naming account %s and 2 created", res, accounts[1])
	}
	owned, err := l.st.OwnedAccess(context.Background())
	if err != nil || len(owned.Assignments) != 2 {
		t.Errorf("owned: %d assignments (%v), want the 2 that succeeded", len(owned.Assignments), err)
	}
	l.srv.Emu.SetCustomerPolicyMissing(accounts[1], "team-boundary", false)
	p := l.plan()
	if len(p.CreateAssignments) != 1 || p.CreateAssignments[0].AccountID != accounts[1] {
		t.Fatalf("the next plan: got %v, want the failed one again", p.CreateAssignments)
	}
	if res := l.apply(p); res.Failed != 0 {
		t.Errorf("retry: %+v", res)
	}
}

func unitID(org *access.Organization, name string) string {
	for _, u := range org.Units {
		if u.Name == name {
			return u.ID
		}
	}
	return ""
}
