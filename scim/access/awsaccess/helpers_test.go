package awsaccess

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// env is an emulator with the real SDK clients pointed at it.
type env struct {
	srv  *emulatortest.Server
	sso  *ssoadmin.Client
	org  *organizations.Client
	ids  *identitystore.Client
	inst access.Instance
}

func sdkConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
}

// start starts an emulator with opts (an unlimited admin rate and 20 ms operations unless opts
// say otherwise) and makes the SDK clients.
func start(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	if opts.Access.RateLimit == 0 {
		opts.Access.RateLimit = -1
	}
	if opts.Access.CompletionDelay == 0 {
		opts.Access.CompletionDelay = 20 * time.Millisecond
	}
	srv := emulatortest.Start(t, opts)
	cfg := sdkConfig()
	e := &env{
		srv: srv,
		sso: ssoadmin.NewFromConfig(cfg, func(o *ssoadmin.Options) { o.BaseEndpoint = aws.String(srv.SSOAdminEndpoint) }),
		org: organizations.NewFromConfig(cfg, func(o *organizations.Options) { o.BaseEndpoint = aws.String(srv.OrganizationsEndpoint) }),
		ids: identitystore.NewFromConfig(cfg, func(o *identitystore.Options) { o.BaseEndpoint = aws.String(srv.IdentityStoreEndpoint) }),
	}
	e.inst = access.Instance{ARN: srv.Emu.InstanceARN(), IdentityStoreID: srv.StoreID}
	return e
}

// client makes an awsaccess Client with fast polling.
func (e *env) client(opts Options) *Client {
	if opts.Rate == 0 {
		opts.Rate = 1000
	}
	if opts.PollMin == 0 {
		opts.PollMin = 5 * time.Millisecond
	}
	if opts.FirstEstimate == 0 {
		opts.FirstEstimate = 10 * time.Millisecond
	}
	return New(e.sso, e.org, opts)
}

// groups creates n groups in the identity store and returns their principals.
func (e *env) groups(t *testing.T, n int) []access.Principal {
	t.Helper()
	var out []access.Principal
	for i := range n {
		res, err := e.ids.CreateGroup(context.Background(), &identitystore.CreateGroupInput{
			IdentityStoreId: aws.String(e.srv.StoreID), DisplayName: aws.String(fmt.Sprintf("group-%d", i))})
		if err != nil {
			t.Fatalf("create group %d: %v", i, err)
		}
		out = append(out, access.Principal{Type: access.PrincipalGroup, ID: aws.ToString(res.GroupId)})
	}
	return out
}

// permissionSet creates a permission set with AWS managed policies only.
func (e *env) permissionSet(t *testing.T, c *Client, name string) string {
	t.Helper()
	arn, err := c.CreatePermissionSet(context.Background(), e.inst, access.PermissionSet{Name: name,
		ManagedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}})
	if err != nil {
		t.Fatalf("create permission set %s: %v", name, err)
	}
	return arn
}

// opsFor makes one create operation per (principal, account) pair.
func opsFor(kind access.OpKind, psARN string, principals []access.Principal, accounts []string, n int) []access.AssignmentOp {
	var ops []access.AssignmentOp
	for _, p := range principals {
		for _, acc := range accounts {
			if len(ops) == n {
				return ops
			}
			ops = append(ops, access.AssignmentOp{Kind: kind, Assignment: access.Assignment{AccountID: acc,
				PermissionSetARN: psARN, PrincipalType: p.Type, PrincipalID: p.ID}})
		}
	}
	return ops
}

// apply runs ApplyAssignments and returns the results in completion order.
func apply(t *testing.T, c *Client, inst access.Instance, ops []access.AssignmentOp) []access.OpResult {
	t.Helper()
	var mu sync.Mutex
	var results []access.OpResult
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.ApplyAssignments(ctx, inst, ops, func(r access.OpResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}); err != nil {
		t.Fatalf("ApplyAssignments: %v", err)
	}
	if len(results) != len(ops) {
		t.Fatalf("ApplyAssignments reported %d results, want one per operation (%d)", len(results), len(ops))
	}
	return results
}

// emulated converts the emulator's assignments for comparison.
func emulated(emu *emulator.Emulator) []access.Assignment {
	var out []access.Assignment
	for _, a := range emu.Assignments() {
		out = append(out, access.Assignment{AccountID: a.AccountID, PermissionSetARN: a.PermissionSetARN,
			PrincipalType: access.PrincipalType(a.PrincipalType), PrincipalID: a.PrincipalID})
	}
	sortAssignments(out)
	return out
}

func assignmentsOf(ops []access.AssignmentOp) []access.Assignment {
	var out []access.Assignment
	for _, op := range ops {
		out = append(out, op.Assignment)
	}
	sortAssignments(out)
	return out
}
