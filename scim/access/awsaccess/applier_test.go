package awsaccess

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/emulator"
)

func TestPermissionSetLifecycle(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	ctx := context.Background()
	want := access.PermissionSet{
		Name: "Operators", Description: "Day-to-day operations", SessionDuration: "PT4H", RelayState: "https://console.aws.amazon.com/ec2",
		ManagedPolicies:         []string{"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"},
		CustomerManagedPolicies: []access.CustomerPolicy{{Name: "OpsBoundary", Path: "/"}, {Name: "Logs", Path: "/team/"}},
		InlinePolicy:            `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}`,
		Tags:                    map[string]string{"owner": "ops", "managed-by": "scimbridge"},
	}
	arn, err := c.CreatePermissionSet(ctx, e.inst, want)
	if err != nil {
		t.Fatalf("CreatePermissionSet: %v", err)
	}
	want.ARN = arn
	want.InlinePolicy = compactJSON(want.InlinePolicy)
	sortPolicies(&want)
	have := readOne(t, c, e.inst, "after the create", want)

	// Policies added and removed, the inline policy replaced, tags changed and removed, the
	// session duration changed.
	next := have
	next.SessionDuration = "PT8H"
	next.ManagedPolicies = []string{"arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"}
	next.CustomerManagedPolicies = []access.CustomerPolicy{{Name: "Logs", Path: "/team/"}, {Name: "Network", Path: "/"}}
	next.InlinePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}`
	next.Tags = map[string]string{"owner": "platform", "cost-center": "42"}
	sortPolicies(&next)
	if err := c.UpdatePermissionSet(ctx, e.inst, have, next); err != nil {
		t.Fatalf("UpdatePermissionSet: %v", err)
	}
	have = readOne(t, c, e.inst, "after the update", next)

	// The inline policy and every policy cleared.
	cleared := have
	cleared.InlinePolicy, cleared.ManagedPolicies, cleared.CustomerManagedPolicies = "", nil, nil
	if err := c.UpdatePermissionSet(ctx, e.inst, have, cleared); err != nil {
		t.Fatalf("UpdatePermissionSet (clear): %v", err)
	}
	readOne(t, c, e.inst, "after clearing the policies", cleared)

	// A second create with the same name is refused as a conflict.
	_, err = c.CreatePermissionSet(ctx, e.inst, access.PermissionSet{Name: "Operators"})
	var conflict *ssotypes.ConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("a second create of Operators: got %v, want a ConflictException", err)
	}

	if err := c.DeletePermissionSet(ctx, e.inst, arn); err != nil {
		t.Fatalf("DeletePermissionSet: %v", err)
	}
	sets, err := c.PermissionSets(ctx, e.inst)
	if err != nil || len(sets) != 0 {
		t.Errorf("PermissionSets after the delete = %v, %v; want none", sets, err)
	}
}

// readOne reads the instance's only permission set and compares it with want.
func readOne(t *testing.T, c *Client, inst access.Instance, when string, want access.PermissionSet) access.PermissionSet {
	t.Helper()
	sets, err := c.PermissionSets(context.Background(), inst)
	if err != nil {
		t.Fatalf("PermissionSets %s: %v", when, err)
	}
	if len(sets) != 1 {
		t.Fatalf("PermissionSets %s: got %d, want 1", when, len(sets))
	}
	if diff := cmp.Diff(want, sets[0]); diff != "" {
		t.Errorf("permission set %s (-want +got):\n%s", when, diff)
	}
	return sets[0]
}

func TestPermissionSetRulesAsAWS(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	ctx := context.Background()
	long := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"` +
		strings.Repeat("a", 10300) + `"}]}`
	for _, tc := range []struct {
		name string
		ps   access.PermissionSet
		want string // in the error
	}{
		{"name too long", access.PermissionSet{Name: strings.Repeat("n", 33)}, "1 to 32"},
		{"name with a space", access.PermissionSet{Name: "Read Only"}, "1 to 32"},
		{"session too long", access.PermissionSet{Name: "Long", SessionDuration: "PT13H"}, "PT1H to PT12H"},
		{"session too short", access.PermissionSet{Name: "Short", SessionDuration: "PT30M"}, "PT1H to PT12H"},
		{"inline too long", access.PermissionSet{Name: "Inline", InlinePolicy: long}, "10240"},
		{"not a managed policy", access.PermissionSet{Name: "Bad", ManagedPolicies: []string{"arn:aws:iam::123456789012:policy/Mine"}}, "AWS managed policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreatePermissionSet(ctx, e.inst, tc.ps)
			var ve *ssotypes.ValidationException
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a ValidationException naming %q", err, tc.want)
			}
		})
	}
}

func TestProvisionAfterPolicyChange(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	ctx := context.Background()
	ps := e.permissionSet(t, c, "ReadOnly")
	accounts := e.srv.Emu.AccountIDs()
	for _, r := range apply(t, c, e.inst, opsFor(access.OpCreate, ps, e.groups(t, 1), accounts[:3], 3)) {
		if r.Err != nil {
			t.Fatalf("create: %v", r.Err)
		}
	}
	have, err := c.PermissionSet(ctx, e.inst, ps)
	if err != nil {
		t.Fatal(err)
	}
	want := have
	want.ManagedPolicies = []string{"arn:aws:iam::aws:policy/AdministratorAccess"}
	if err := c.UpdatePermissionSet(ctx, e.inst, have, want); err != nil {
		t.Fatal(err)
	}
	stale := func() []string {
		out, err := e.sso.ListAccountsForProvisionedPermissionSet(ctx, &ssoadmin.ListAccountsForProvisionedPermissionSetInput{
			InstanceArn: &e.inst.ARN, PermissionSetArn: &ps, ProvisioningStatus: ssotypes.ProvisioningStatusLatestPermissionSetNotProvisioned})
		if err != nil {
			t.Fatal(err)
		}
		return out.AccountIds
	}
	if got := stale(); len(got) != 3 {
		t.Errorf("accounts without the latest version after the change: %v, want the 3 assigned", got)
	}
	if err := c.ProvisionPermissionSet(ctx, e.inst, ps); err != nil {
		t.Fatalf("ProvisionPermissionSet: %v", err)
	}
	if got := stale(); len(got) != 0 {
		t.Errorf("accounts without the latest version after provisioning: %v, want none", got)
	}

	// A provisioning that cannot succeed is an error naming the reason.
	if err := e.srv.Emu.SetAccountStatus(accounts[1], "SUSPENDED"); err != nil {
		t.Fatal(err)
	}
	err = c.ProvisionPermissionSet(ctx, e.inst, ps)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "SUSPENDED") {
		t.Errorf("provisioning to a suspended account: got %v, want ErrFailed naming SUSPENDED", err)
	}
}
