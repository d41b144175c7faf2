package access_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/access/awsaccess"
)

// stale lists the accounts that do not hold the latest version of the permission set (sso-admin
// ListPermissionSetsProvisionedToAccount with LATEST_PERMISSION_SET_NOT_PROVISIONED).
func (l *live) stale(name string, accounts []string) []string {
	l.t.Helper()
	arn := l.arn(name)
	var out []string
	for _, acc := range accounts {
		res, err := l.sso.ListPermissionSetsProvisionedToAccount(context.Background(), &ssoadmin.ListPermissionSetsProvisionedToAccountInput{
			InstanceArn: aws.String(l.inst.ARN), AccountId: aws.String(acc), ProvisioningStatus: ssotypes.ProvisioningStatusLatestPermissionSetNotProvisioned})
		if err != nil {
			l.t.Fatal(err)
		}
		for _, a := range res.PermissionSets {
			if a == arn {
				out = append(out, acc)
			}
		}
	}
	return out
}

// arn returns the ARN of the instance's permission set of that name.
func (l *live) arn(name string) string {
	l.t.Helper()
	sets, err := l.c.PermissionSets(context.Background(), l.inst)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, ps := range sets {
		if ps.Name == name {
			return ps.ARN
		}
	}
	l.t.Fatalf("no permission set %s", name)
	return ""
}

// devOps narrows the rules to Engineering's DevOps on the first three accounts, applies them and
// returns those accounts.
func (l *live) devOps() []string {
	l.t.Helper()
	accounts := l.srv.Emu.AccountIDs()[:3]
	l.rules = []access.Rule{{Key: "access.assignments[0]", Groups: []string{"Engineering"}, PermissionSets: []string{"DevOps"}, Accounts: accounts}}
	if res := l.apply(l.plan()); res.Failed != 0 || res.AssignmentsCreated != 3 {
		l.t.Fatalf("first apply: got %+v, want 3 assignments created", res)
	}
	return accounts
}

// TestRemovedDescriptionIsLeftAsIs: AWS cannot clear a description or relay state, so one taken
// out of the configuration is left as the instance holds it: the next plan changes nothing
// (before, every run planned the clearing, updated and provisioned the set again).
func TestRemovedDescriptionIsLeftAsIs(t *testing.T) {
	l := startLive(t)
	l.sets[3].Description = "Engineering's operations access"
	l.sets[3].RelayState = "https://console.aws.amazon.com/ec2/"
	l.devOps()
	l.sets[3].Description, l.sets[3].RelayState = "", ""
	l.srv.Emu.ResetStats()
	if p := l.plan(); !p.Empty() {
		t.Fatalf("with the description and relay state removed: got %d writes (%+v), want none", p.Writes(), p.UpdatePermissionSets)
	}
	// Another change still goes through, and does not show the two fields as changing.
	l.sets[3].SessionDuration = "PT4H"
	p := l.plan()
	if len(p.UpdatePermissionSets) != 1 {
		t.Fatalf("session change: got %d updates, want 1", len(p.UpdatePermissionSets))
	}
	if f := p.UpdatePermissionSets[0].Fields; len(f) != 1 || f[0].Name != "sessionDuration" {
		t.Errorf("session change: got fields %+v, want sessionDuration only", f)
	}
	if res := l.apply(p); res.Failed != 0 || res.PermissionSetsProvisioned != 1 {
		t.Errorf("session change: got %+v, want it updated and provisioned", res)
	}
	if p := l.plan(); !p.Empty() {
		t.Errorf("after the session change: got %d writes, want none", p.Writes())
	}
	out, err := l.sso.DescribePermissionSet(context.Background(), &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(l.inst.ARN),
		PermissionSetArn: aws.String(l.arn("DevOps"))})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.PermissionSet.Description); got != "Engineering's operations access" {
		t.Errorf("description on the instance: got %q, want the one last written", got)
	}
}

// TestFailedProvisioningIsRetried: a provisioning that ends FAILED (an account lacks the
// customer managed policy the update added) is owed until one SUCCEEDED: every next plan
// provisions the permission set again, though it matches the configuration.
func TestFailedProvisioningIsRetried(t *testing.T) {
	l := startLive(t)
	accounts := l.devOps()
	l.srv.Emu.SetCustomerPolicyMissing(accounts[1], "audit", true)
	l.sets[3].CustomerManagedPolicies = append(l.sets[3].CustomerManagedPolicies, access.CustomerPolicy{Name: "audit"})
	res := l.apply(l.plan())
	if res.PermissionSetsUpdated != 1 || res.Failed != 1 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "provision") {
		t.Fatalf("update: got %+v, want it updated and its provisioning FAILED", res)
	}
	for range 2 { // still failing, then the policy is made in the account
		p := l.plan()
		if len(p.UpdatePermissionSets) != 0 || len(p.ProvisionPermissionSets) != 1 || false {
			t.Fatalf("after a FAILED provisioning: got %d updates, provisions %+v; want one retried provisioning only", len(p.UpdatePermissionSets), p.ProvisionPermissionSets)
		}
		if missing := len(res.Errors) > 0; missing {
			res = l.apply(p)
			if res.Failed != 1 {
				t.Fatalf("retry with the policy missing: got %+v, want it FAILED again", res)
			}
			l.srv.Emu.SetCustomerPolicyMissing(accounts[1], "audit", false)
			res.Errors = nil
			continue
		}
		if res := l.apply(p); res.Failed != 0 || res.PermissionSetsProvisioned != 1 {
			t.Fatalf("retry: got %+v, want it provisioned", res)
		}
	}
	if got := l.stale("DevOps", accounts); len(got) != 0 {
		t.Errorf("accounts without the latest DevOps: got %v, want none", got)
	}
	if p := l.plan(); !p.Empty() {
		t.Errorf("after the provisioning SUCCEEDED: got %d writes, want none", p.Writes())
	}
}

// crashAfterUpdate is the real client, with the run's context cancelled as soon as an update
// returns: the process dying between the update and the provisioning.
type crashAfterUpdate struct {
	*awsaccess.Client
	cancel context.CancelFunc
}

func (c crashAfterUpdate) UpdatePermissionSet(ctx context.Context, inst access.Instance, have, want access.PermissionSet) error {
	err := c.Client.UpdatePermissionSet(ctx, inst, have, want)
	c.cancel()
	return err
}

// TestCrashBetweenUpdateAndProvisioning: a run that ends after the update and before the
// provisioning leaves the provisioning owed in the state store; the next run provisions.
func TestCrashBetweenUpdateAndProvisioning(t *testing.T) {
	l := startLive(t)
	accounts := l.devOps()
	l.sets[3].ManagedPolicies = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
	p := l.plan()
	if len(p.UpdatePermissionSets) != 1 || len(p.ProvisionPermissionSets) != 1 {
		t.Fatalf("got %d updates, %d provisions; want 1 and 1", len(p.UpdatePermissionSets), len(p.ProvisionPermissionSets))
	}
	l.srv.Emu.ResetStats()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := access.Apply(ctx, crashAfterUpdate{l.c, cancel}, l.inst, p, l.st, time.Now); err == nil {
		t.Fatal("apply with the context cancelled after the update: got no error")
	}
	if n := l.srv.Emu.Stats()["sso-admin.ProvisionPermissionSet"]; n != 0 {
		t.Fatalf("ProvisionPermissionSet calls in the cancelled run: got %d, want 0", n)
	}
	if got := l.stale("DevOps", accounts); len(got) != len(accounts) {
		t.Fatalf("accounts without the latest DevOps after the crash: got %v, want all %d", got, len(accounts))
	}
	p = l.plan()
	if len(p.UpdatePermissionSets) != 0 || len(p.ProvisionPermissionSets) != 1 || false {
		t.Fatalf("the next plan: got %d updates, provisions %+v; want the owed provisioning only", len(p.UpdatePermissionSets), p.ProvisionPermissionSets)
	}
	if res := l.apply(p); res.Failed != 0 || res.PermissionSetsProvisioned != 1 {
		t.Fatalf("the next run: got %+v, want it provisioned", res)
	}
	if got := l.stale("DevOps", accounts); len(got) != 0 {
		t.Errorf("accounts without the latest DevOps: got %v, want none", got)
	}
	if p := l.plan(); !p.Empty() {
		t.Errorf("after the provisioning: got %d writes, want none", p.Writes())
	}
}
