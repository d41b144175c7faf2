package emulator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

func FuzzAccess(f *testing.F) {
	for _, s := range [][3]string{
		{"sso", "ListInstances", `{"MaxResults":1}`},
		{"sso", "CreatePermissionSet", `{"InstanceArn":"{inst}","Name":"n","SessionDuration":"PT2H","Tags":[{"Key":"k","Value":"v"}]}`},
		{"sso", "UpdatePermissionSet", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","SessionDuration":"PT99H"}`},
		{"sso", "AttachManagedPolicyToPermissionSet", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","ManagedPolicyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}`},
		{"sso", "AttachCustomerManagedPolicyReferenceToPermissionSet", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","CustomerManagedPolicyReference":{"Name":"p","Path":"/a/"}}`},
		{"sso", "PutInlinePolicyToPermissionSet", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","InlinePolicy":"{\"Statement\":[]}"}`},
		{"sso", "UntagResource", `{"InstanceArn":"{inst}","ResourceArn":"{ps}","TagKeys":["k"]}`},
		{"sso", "CreateAccountAssignment", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","PrincipalId":"{gid}","PrincipalType":"GROUP","TargetId":"{acct}","TargetType":"AWS_ACCOUNT"}`},
		{"sso", "DeleteAccountAssignment", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","PrincipalId":"{uid}","PrincipalType":"USER","TargetId":"{acct}","TargetType":"AWS_ACCOUNT"}`},
		{"sso", "ListAccountAssignmentCreationStatus", `{"InstanceArn":"{inst}","Filter":{"Status":"IN_PROGRESS"},"NextToken":"x"}`},
		{"sso", "DescribeAccountAssignmentDeletionStatus", `{"InstanceArn":"{inst}","AccountAssignmentDeletionRequestId":"x"}`},
		{"sso", "ListAccountAssignmentsForPrincipal", `{"InstanceArn":"{inst}","PrincipalId":"{gid}","PrincipalType":"GROUP","Filter":{"AccountId":"{acct}"}}`},
		{"sso", "ProvisionPermissionSet", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}","TargetType":"ALL_PROVISIONED_ACCOUNTS"}`},
		{"sso", "ListPermissionSetsProvisionedToAccount", `{"InstanceArn":"{inst}","AccountId":"{acct}","ProvisioningStatus":"LATEST_PERMISSION_SET_PROVISIONED"}`},
		{"sso", "DeletePermissionSet", `{"InstanceArn":"{inst}","PermissionSetArn":"{ps}"}`},
		{"org", "ListAccountsForParent", `{"ParentId":"{root}","MaxResults":2}`},
		{"org", "ListParents", `{"ChildId":"{acct}"}`},
		{"org", "ListTagsForResource", `{"ResourceId":"{acct}"}`},
		{"org", "Nope", `[]`},
	} {
		f.Add(s[0], s[1], s[2])
	}
	srv, c := start(f, emulator.Options{Token: "tok", Tenant: "t", Access: emulator.AccessOptions{CompletionDelay: -1, RateLimit: -1}})
	uid := c.createUser("fuzz")
	gid := c.createGroup("fuzzers", uid)
	emu := srv.Emu
	post := func(path, target, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sso/aws4_request")
		req.Header.Set("X-Amz-Target", target)
		rec := httptest.NewRecorder()
		emu.Handler().ServeHTTP(rec, req)
		return rec
	}
	rec := post(emu.SSOAdminPath(), "SWBExternalService.CreatePermissionSet", `{"InstanceArn":"`+emu.InstanceARN()+`","Name":"fuzzed"}`)
	var created struct {
		PermissionSet struct{ PermissionSetArn string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.PermissionSet.PermissionSetArn == "" {
		f.Fatalf("create permission set: %d %s", rec.Code, rec.Body.String())
	}
	rec = post(emu.OrganizationsPath(), "AWSOrganizationsV20161128.ListRoots", `{}`)
	var roots struct{ Roots []struct{ Id string } }
	if err := json.Unmarshal(rec.Body.Bytes(), &roots); err != nil || len(roots.Roots) != 1 {
		f.Fatalf("list roots: %d %s", rec.Code, rec.Body.String())
	}
	fill := strings.NewReplacer("{inst}", emu.InstanceARN(), "{ps}", created.PermissionSet.PermissionSetArn, "{uid}", uid,
		"{gid}", gid, "{acct}", emu.AccountIDs()[1], "{root}", roots.Roots[0].Id)
	f.Fuzz(func(t *testing.T, api, op, body string) {
		path, target := emu.SSOAdminPath(), "SWBExternalService."+op
		if api == "org" {
			path, target = emu.OrganizationsPath(), "AWSOrganizationsV20161128."+op
		}
		rec := post(path, target, fill.Replace(body))
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", api, op, body, rec.Code, rec.Body.String())
		}
		if rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"__type"`) {
			t.Fatalf("%s %s %q: status %d without an AWS error type: %s", api, op, body, rec.Code, rec.Body.String())
		}
	})
}
