package emulator_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// accessClients are the real SDK clients against one emulator, without the SDK's retries so
// that every answer is seen as it is.
type accessClients struct {
	emu  *emulator.Emulator
	sso  *ssoadmin.Client
	org  *organizations.Client
	ids  *identitystore.Client
	inst *string
}

func accessStart(t *testing.T, opts emulator.Options) *accessClients {
	t.Helper()
	emu, err := emulator.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		ts.Close()
		emu.Close()
	})
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	return &accessClients{
		emu:  emu,
		sso:  ssoadmin.NewFromConfig(cfg, func(o *ssoadmin.Options) { o.BaseEndpoint = aws.String(ts.URL + emu.SSOAdminPath()) }),
		org:  organizations.NewFromConfig(cfg, func(o *organizations.Options) { o.BaseEndpoint = aws.String(ts.URL + emu.OrganizationsPath()) }),
		ids:  identitystore.NewFromConfig(cfg, func(o *identitystore.Options) { o.BaseEndpoint = aws.String(ts.URL + emu.IdentityStorePath()) }),
		inst: aws.String(emu.InstanceARN()),
	}
}

func (c *accessClients) group(t *testing.T, name string) string {
	t.Helper()
	out, err := c.ids.CreateGroup(context.Background(), &identitystore.CreateGroupInput{
		IdentityStoreId: aws.String(c.emu.IdentityStoreID()), DisplayName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateGroup %s: %v", name, err)
	}
	return aws.ToString(out.GroupId)
}

func (c *accessClients) permissionSet(t *testing.T, name string) string {
	t.Helper()
	out, err := c.sso.CreatePermissionSet(context.Background(), &ssoadmin.CreatePermissionSetInput{InstanceArn: c.inst, Name: aws.String(name)})
	if err != nil {
		t.Fatalf("CreatePermissionSet %s: %v", name, err)
	}
	return aws.ToString(out.PermissionSet.PermissionSetArn)
}

func (c *accessClients) assign(ps, group, account string) (*ssoadmin.CreateAccountAssignmentOutput, error) {
	return c.sso.CreateAccountAssignment(context.Background(), &ssoadmin.CreateAccountAssignmentInput{InstanceArn: c.inst,
		PermissionSetArn: aws.String(ps), PrincipalId: aws.String(group), PrincipalType: ssotypes.PrincipalTypeGroup,
		TargetId: aws.String(account), TargetType: ssotypes.TargetTypeAwsAccount})
}

func TestAccessPersistsAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ic.db")
	opts := emulator.Options{DataPath: path, Access: emulator.AccessOptions{Accounts: 5, CompletionDelay: -1, RateLimit: -1}}
	first := accessStart(t, opts)
	ps := first.permissionSet(t, "Billing")
	group := first.group(t, "Finance")
	accounts := first.emu.AccountIDs()
	if _, err := first.assign(ps, group, accounts[0]); err != nil {
		t.Fatalf("CreateAccountAssignment: %v", err)
	}
	wantAssignments := first.emu.Assignments() // completes the operation
	if len(wantAssignments) != 1 {
		t.Fatalf("assignments after one create: %v", wantAssignments)
	}
	wantInstance := first.emu.InstanceARN()
	first.emu.Close()

	opts.Access.Accounts = 9 // ignored: the data file holds an organization
	second := accessStart(t, opts)
	if diff := cmp.Diff(accounts, second.emu.AccountIDs()); diff != "" {
		t.Errorf("accounts on the second run (-first +second):\n%s", diff)
	}
	if got := second.emu.InstanceARN(); got != wantInstance {
		t.Errorf("instance on the second run = %s, want %s", got, wantInstance)
	}
	if diff := cmp.Diff(wantAssignments, second.emu.Assignments()); diff != "" {
		t.Errorf("assignments on the second run (-first +second):\n%s", diff)
	}
	sets, err := second.sso.ListPermissionSets(context.Background(), &ssoadmin.ListPermissionSetsInput{InstanceArn: second.inst})
	if err != nil || len(sets.PermissionSets) != 1 || sets.PermissionSets[0] != ps {
		t.Errorf("permission sets on the second run = %v, %v; want [%s]", sets, err, ps)
	}
	// A new permission set does not take the first one's ARN.
	if again := second.permissionSet(t, "Admin"); again == ps {
		t.Errorf("second permission set got the first one's ARN %s", ps)
	}
}

func TestOutstandingLimitAnsweredAsAWS(t *testing.T) {
	c := accessStart(t, emulator.Options{Access: emulator.AccessOptions{MaxOutstanding: 3, CompletionDelay: time.Hour, RateLimit: -1}})
	ps := c.permissionSet(t, "ReadOnly")
	group := c.group(t, "Readers")
	accounts := c.emu.AccountIDs()
	for i := range 3 {
		out, err := c.assign(ps, group, accounts[i])
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if got := out.AccountAssignmentCreationStatus.Status; got != ssotypes.StatusValuesInProgress {
			t.Errorf("create %d status %s, want IN_PROGRESS", i, got)
		}
	}
	_, err := c.assign(ps, group, accounts[3])
	var te *ssotypes.ThrottlingException
	if !errors.As(err, &te) {
		t.Fatalf("a fourth create with 3 outstanding: got %v, want ThrottlingException", err)
	}
	stats := c.emu.Stats()
	if stats["sso-admin.MaxOutstanding"] != 3 || stats["sso-admin.OutstandingRefused"] != 1 {
		t.Errorf("MaxOutstanding %d, OutstandingRefused %d; want 3 and 1", stats["sso-admin.MaxOutstanding"], stats["sso-admin.OutstandingRefused"])
	}
	list, err := c.sso.ListAccountAssignmentCreationStatus(context.Background(), &ssoadmin.ListAccountAssignmentCreationStatusInput{
		InstanceArn: c.inst, Filter: &ssotypes.OperationStatusFilter{Status: ssotypes.StatusValuesInProgress}})
	if err != nil || len(list.AccountAssignmentsCreationStatus) != 3 {
		t.Errorf("IN_PROGRESS creations = %v, %v; want 3", list, err)
	}
}

func TestAdminRateThrottles(t *testing.T) {
	c := accessStart(t, emulator.Options{Access: emulator.AccessOptions{RateLimit: 1, Burst: 1}})
	ctx := context.Background()
	if _, err := c.sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{}); err != nil {
		t.Fatalf("first ListInstances: %v", err)
	}
	_, err := c.sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	var te *ssotypes.ThrottlingException
	if !errors.As(err, &te) {
		t.Errorf("second ListInstances at once: got %v, want ThrottlingException", err)
	}
	_, err = c.org.ListRoots(ctx, &organizations.ListRootsInput{})
	var tm *orgtypes.TooManyRequestsException
	if !errors.As(err, &tm) {
		t.Errorf("ListRoots sharing the exhausted rate: got %v, want TooManyRequestsException", err)
	}
}

func TestAssignmentRequestsValidatedAsAWS(t *testing.T) {
	c := accessStart(t, emulator.Options{Access: emulator.AccessOptions{CompletionDelay: -1, RateLimit: -1}})
	ctx := context.Background()
	ps := c.permissionSet(t, "ReadOnly")
	group := c.group(t, "Readers")
	accounts := c.emu.AccountIDs()

	var nf *ssotypes.ResourceNotFoundException
	if _, err := c.assign(ps, c.emu.IdentityStoreID()[2:]+"-00000000-0000-0000-0000-000000000000", accounts[0]); !errors.As(err, &nf) {
		t.Errorf("assignment to a group that does not exist: got %v, want ResourceNotFoundException", err)
	}
	var ve *ssotypes.ValidationException
	if _, err := c.assign(ps, group, "999999999999"); !errors.As(err, &ve) {
		t.Errorf("assignment in an account outside the organization: got %v, want ValidationException", err)
	}
	if _, err := c.assign(ps[:len(ps)-1]+"0", group, accounts[0]); !errors.As(err, &nf) {
		t.Errorf("assignment of an unknown permission set: got %v, want ResourceNotFoundException", err)
	}
	if _, err := c.assign(ps, group, accounts[0]); err != nil {
		t.Fatalf("CreateAccountAssignment: %v", err)
	}
	c.emu.Assignments() // completes it
	var ce *ssotypes.ConflictException
	if _, err := c.sso.DeletePermissionSet(ctx, &ssoadmin.DeletePermissionSetInput{InstanceArn: c.inst, PermissionSetArn: aws.String(ps)}); !errors.As(err, &ce) {
		t.Errorf("deleting an assigned permission set: got %v, want ConflictException", err)
	}
	var pnf *orgtypes.ParentNotFoundException
	if _, err := c.org.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String("ou-none-00000000")}); !errors.As(err, &pnf) {
		t.Errorf("accounts of an unknown parent: got %v, want ParentNotFoundException", err)
	}
}
