package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// The two policy lists of a permission set (AWS managed by ARN, customer managed by path and
// name) answer attach, detach and list as AWS does: sorted, a second attach a conflict, a detach
// of what is not there not found, and both counting together against the quota of 10.
func TestPolicyListsAnsweredAsAWS(t *testing.T) {
	c := accessStart(t, emulator.Options{Access: emulator.AccessOptions{CompletionDelay: -1, RateLimit: -1}})
	ctx := context.Background()
	ps := aws.String(c.permissionSet(t, "Policies"))
	attachManaged := func(name string) error {
		_, err := c.sso.AttachManagedPolicyToPermissionSet(ctx, &ssoadmin.AttachManagedPolicyToPermissionSetInput{
			InstanceArn: c.inst, PermissionSetArn: ps, ManagedPolicyArn: aws.String("arn:aws:iam::aws:policy/" + name)})
		return err
	}
	attachCustomer := func(path, name string) error {
		_, err := c.sso.AttachCustomerManagedPolicyReferenceToPermissionSet(ctx, &ssoadmin.AttachCustomerManagedPolicyReferenceToPermissionSetInput{
			InstanceArn: c.inst, PermissionSetArn: ps,
			CustomerManagedPolicyReference: &ssotypes.CustomerManagedPolicyReference{Path: aws.String(path), Name: aws.String(name)}})
		return err
	}
	for _, n := range []string{"ViewOnlyAccess", "ReadOnlyAccess"} {
		if err := attachManaged(n); err != nil {
			t.Fatalf("attach managed %s: %v", n, err)
		}
	}
	for _, r := range [][2]string{{"/team/", "b"}, {"/", "z"}, {"/team/", "a"}} {
		if err := attachCustomer(r[0], r[1]); err != nil {
			t.Fatalf("attach customer %s%s: %v", r[0], r[1], err)
		}
	}
	var ce *ssotypes.ConflictException
	if err := attachManaged("ReadOnlyAccess"); !errors.As(err, &ce) {
		t.Errorf("second attach of a managed policy: got %v, want ConflictException", err)
	}
	if err := attachCustomer("/team/", "a"); !errors.As(err, &ce) {
		t.Errorf("second attach of a customer managed policy: got %v, want ConflictException", err)
	}

	var nf *ssotypes.ResourceNotFoundException
	if _, err := c.sso.DetachManagedPolicyFromPermissionSet(ctx, &ssoadmin.DetachManagedPolicyFromPermissionSetInput{
		InstanceArn: c.inst, PermissionSetArn: ps, ManagedPolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); !errors.As(err, &nf) {
		t.Errorf("detach of a managed policy not attached: got %v, want ResourceNotFoundException", err)
	}
	if _, err := c.sso.DetachCustomerManagedPolicyReferenceFromPermissionSet(ctx, &ssoadmin.DetachCustomerManagedPolicyReferenceFromPermissionSetInput{
		InstanceArn: c.inst, PermissionSetArn: ps,
		CustomerManagedPolicyReference: &ssotypes.CustomerManagedPolicyReference{Path: aws.String("/"), Name: aws.String("missing")}}); !errors.As(err, &nf) {
		t.Errorf("detach of a customer managed policy not attached: got %v, want ResourceNotFoundException", err)
	}
	if _, err := c.sso.DetachCustomerManagedPolicyReferenceFromPermissionSet(ctx, &ssoadmin.DetachCustomerManagedPolicyReferenceFromPermissionSetInput{
		InstanceArn: c.inst, PermissionSetArn: ps,
		CustomerManagedPolicyReference: &ssotypes.CustomerManagedPolicyReference{Path: aws.String("/"), Name: aws.String("z")}}); err != nil {
		t.Fatalf("detach customer /z: %v", err)
	}

	managed, err := c.sso.ListManagedPoliciesInPermissionSet(ctx, &ssoadmin.ListManagedPoliciesInPermissionSetInput{InstanceArn: c.inst, PermissionSetArn: ps})
	if err != nil {
		t.Fatalf("ListManagedPoliciesInPermissionSet: %v", err)
	}
	var gotManaged []string
	for _, p := range managed.AttachedManagedPolicies {
		gotManaged = append(gotManaged, aws.ToString(p.Name))
	}
	if diff := cmp.Diff([]string{"ReadOnlyAccess", "ViewOnlyAccess"}, gotManaged); diff != "" {
		t.Errorf("managed policies (-want +got):\n%s", diff)
	}
	customer, err := c.sso.ListCustomerManagedPolicyReferencesInPermissionSet(ctx, &ssoadmin.ListCustomerManagedPolicyReferencesInPermissionSetInput{InstanceArn: c.inst, PermissionSetArn: ps})
	if err != nil {
		t.Fatalf("ListCustomerManagedPolicyReferencesInPermissionSet: %v", err)
	}
	var gotCustomer []string
	for _, r := range customer.CustomerManagedPolicyReferences {
		gotCustomer = append(gotCustomer, aws.ToString(r.Path)+aws.ToString(r.Name))
	}
	if diff := cmp.Diff([]string{"/team/a", "/team/b"}, gotCustomer); diff != "" {
		t.Errorf("customer managed policies (-want +got):\n%s", diff)
	}

	// 2 managed + 2 customer: 6 more fit, the 11th of either kind does not.
	for i := range 6 {
		if err := attachCustomer("/", fmt.Sprintf("p%d", i)); err != nil {
			t.Fatalf("attach customer /p%d: %v", i, err)
		}
	}
	var qe *ssotypes.ServiceQuotaExceededException
	if err := attachManaged("AdministratorAccess"); !errors.As(err, &qe) {
		t.Errorf("11th managed policy: got %v, want ServiceQuotaExceededException", err)
	}
	if err := attachCustomer("/", "p6"); !errors.As(err, &qe) {
		t.Errorf("11th customer managed policy: got %v, want ServiceQuotaExceededException", err)
	}
}
