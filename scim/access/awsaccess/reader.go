package awsaccess

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/scimbridge/scimbridge/scim/access"
)

// pages calls one page after another until the listing ends; fn gets the page's token and
// returns the next one. Results must be taken in fn only when it succeeds.
func (c *Client) pages(ctx context.Context, name string, fn func(ctx context.Context, token *string) (*string, error)) error {
	var token *string
	for {
		var next *string
		if _, err := c.call(ctx, name, callOpts{}, func(ctx context.Context) error {
			n, err := fn(ctx, token)
			next = n
			return err
		}); err != nil {
			return err
		}
		if aws.ToString(next) == "" {
			return nil
		}
		token = next
	}
}

// Instance returns the Identity Center instance: the only one, or the one whose identity store
// is Options.IdentityStoreID.
func (c *Client) Instance(ctx context.Context) (access.Instance, error) {
	var all []access.Instance
	err := c.pages(ctx, "ListInstances", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{NextToken: token}, noRetrySSO)
		if err != nil {
			return nil, err
		}
		for _, in := range out.Instances {
			all = append(all, access.Instance{ARN: aws.ToString(in.InstanceArn), IdentityStoreID: aws.ToString(in.IdentityStoreId)})
		}
		return out.NextToken, nil
	})
	if err != nil {
		return access.Instance{}, fmt.Errorf("read the Identity Center instance: %w", err)
	}
	var ids []string
	for _, in := range all {
		if c.opts.IdentityStoreID == "" && len(all) == 1 || in.IdentityStoreID == c.opts.IdentityStoreID {
			return in, nil
		}
		ids = append(ids, in.IdentityStoreID)
	}
	if len(all) == 0 {
		return access.Instance{}, fmt.Errorf("read the Identity Center instance: ListInstances found none")
	}
	if c.opts.IdentityStoreID == "" {
		return access.Instance{}, fmt.Errorf("read the Identity Center instance: %d instances (identity stores %s): configure the identity store id",
			len(all), strings.Join(ids, ", "))
	}
	return access.Instance{}, fmt.Errorf("read the Identity Center instance: none has identity store %s (found %s)",
		c.opts.IdentityStoreID, strings.Join(ids, ", "))
}

// Organization reads the root, every OU below it, every account with its parent, path and tags.
func (c *Client) Organization(ctx context.Context) (*access.Organization, error) {
	org, err := c.organization(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the organization: %w", err)
	}
	return org, nil
}

func (c *Client) organization(ctx context.Context) (*access.Organization, error) {
	var org access.Organization
	if _, err := c.call(ctx, "DescribeOrganization", callOpts{}, func(ctx context.Context) error {
		out, err := c.org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}, noRetryOrg)
		if err == nil && out.Organization != nil {
			org.ManagementAccountID = aws.ToString(out.Organization.MasterAccountId)
		}
		return err
	}); err != nil {
		return nil, err
	}
	var roots []orgtypes.Root
	if err := c.pages(ctx, "ListRoots", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.org.ListRoots(ctx, &organizations.ListRootsInput{NextToken: token}, noRetryOrg)
		if err != nil {
			return nil, err
		}
		roots = append(roots, out.Roots...)
		return out.NextToken, nil
	}); err != nil {
		return nil, err
	}
	type parent struct {
		id   string
		path []string // ids from the root down to id
	}
	var queue []parent
	for _, r := range roots {
		id := aws.ToString(r.Id)
		org.Units = append(org.Units, access.OrganizationalUnit{ID: id, Name: aws.ToString(r.Name)})
		queue = append(queue, parent{id: id, path: []string{id}})
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if err := c.pages(ctx, "ListOrganizationalUnitsForParent", func(ctx context.Context, token *string) (*string, error) {
			out, err := c.org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{
				ParentId: aws.String(p.id), NextToken: token}, noRetryOrg)
			if err != nil {
				return nil, err
			}
			for _, u := range out.OrganizationalUnits {
				id := aws.ToString(u.Id)
				org.Units = append(org.Units, access.OrganizationalUnit{ID: id, Name: aws.ToString(u.Name), ParentID: p.id})
				queue = append(queue, parent{id: id, path: append(slices.Clone(p.path), id)})
			}
			return out.NextToken, nil
		}); err != nil {
			return nil, err
		}
		if err := c.pages(ctx, "ListAccountsForParent", func(ctx context.Context, token *string) (*string, error) {
			out, err := c.org.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{
				ParentId: aws.String(p.id), NextToken: token}, noRetryOrg)
			if err != nil {
				return nil, err
			}
			for _, a := range out.Accounts {
				status := string(a.State)
				if status == "" {
					status = string(a.Status) //nolint:staticcheck // Status is deprecated for State, which older answers lack
				}
				org.Accounts = append(org.Accounts, access.Account{ID: aws.ToString(a.Id), Name: aws.ToString(a.Name),
					Email: aws.ToString(a.Email), Status: status, ParentID: p.id, Path: slices.Clone(p.path)})
			}
			return out.NextToken, nil
		}); err != nil {
			return nil, err
		}
	}
	for i := range org.Accounts {
		tags, err := c.orgTags(ctx, org.Accounts[i].ID)
		if err != nil {
			return nil, err
		}
		org.Accounts[i].Tags = tags
	}
	sort.Slice(org.Accounts, func(i, j int) bool { return org.Accounts[i].ID < org.Accounts[j].ID })
	return &org, nil
}

func (c *Client) orgTags(ctx context.Context, id string) (map[string]string, error) {
	var tags map[string]string
	err := c.pages(ctx, "ListTagsForResource", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.org.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String(id), NextToken: token}, noRetryOrg)
		if err != nil {
			return nil, err
		}
		for _, t := range out.Tags {
			if tags == nil {
				tags = map[string]string{}
			}
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		return out.NextToken, nil
	})
	return tags, err
}

// PermissionSets lists and describes every permission set of the instance, with its policies
// and tags.
func (c *Client) PermissionSets(ctx context.Context, inst access.Instance) ([]access.PermissionSet, error) {
	var arns []string
	err := c.pages(ctx, "ListPermissionSets", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.sso.ListPermissionSets(ctx, &ssoadmin.ListPermissionSetsInput{InstanceArn: aws.String(inst.ARN), NextToken: token}, noRetrySSO)
		if err != nil {
			return nil, err
		}
		arns = append(arns, out.PermissionSets...)
		return out.NextToken, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the permission sets: %w", err)
	}
	out := make([]access.PermissionSet, 0, len(arns))
	for _, arn := range arns {
		ps, err := c.PermissionSet(ctx, inst, arn)
		if err != nil {
			return nil, err
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PermissionSet describes one permission set with its policies and tags.
func (c *Client) PermissionSet(ctx context.Context, inst access.Instance, arn string) (access.PermissionSet, error) {
	ps, err := c.permissionSet(ctx, inst, arn)
	if err != nil {
		return access.PermissionSet{}, fmt.Errorf("read permission set %s: %w", arn, err)
	}
	return ps, nil
}

func (c *Client) permissionSet(ctx context.Context, inst access.Instance, arn string) (access.PermissionSet, error) {
	ps := access.PermissionSet{ARN: arn}
	in, psArn := aws.String(inst.ARN), aws.String(arn)
	if _, err := c.call(ctx, "DescribePermissionSet", callOpts{}, func(ctx context.Context) error {
		out, err := c.sso.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: in, PermissionSetArn: psArn}, noRetrySSO)
		if err == nil && out.PermissionSet != nil {
			p := out.PermissionSet
			ps.Name, ps.Description = aws.ToString(p.Name), aws.ToString(p.Description)
			ps.SessionDuration, ps.RelayState = aws.ToString(p.SessionDuration), aws.ToString(p.RelayState)
		}
		return err
	}); err != nil {
		return ps, err
	}
	if err := c.pages(ctx, "ListManagedPoliciesInPermissionSet", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.sso.ListManagedPoliciesInPermissionSet(ctx, &ssoadmin.ListManagedPoliciesInPermissionSetInput{
			InstanceArn: in, PermissionSetArn: psArn, NextToken: token}, noRetrySSO)
		if err != nil {
			return nil, err
		}
		for _, p := range out.AttachedManagedPolicies {
			ps.ManagedPolicies = append(ps.ManagedPolicies, aws.ToString(p.Arn))
		}
		return out.NextToken, nil
	}); err != nil {
		return ps, err
	}
	if err := c.pages(ctx, "ListCustomerManagedPolicyReferencesInPermissionSet", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.sso.ListCustomerManagedPolicyReferencesInPermissionSet(ctx, &ssoadmin.ListCustomerManagedPolicyReferencesInPermissionSetInput{
			InstanceArn: in, PermissionSetArn: psArn, NextToken: token}, noRetrySSO)
		if err != nil {
			return nil, err
		}
		for _, p := range out.CustomerManagedPolicyReferences {
			ps.CustomerManagedPolicies = append(ps.CustomerManagedPolicies, access.CustomerPolicy{Name: aws.ToString(p.Name), Path: aws.ToString(p.Path)})
		}
		return out.NextToken, nil
	}); err != nil {
		return ps, err
	}
	if _, err := c.call(ctx, "GetInlinePolicyForPermissionSet", callOpts{}, func(ctx context.Context) error {
		out, err := c.sso.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: in, PermissionSetArn: psArn}, noRetrySSO)
		if err == nil {
			ps.InlinePolicy = compactJSON(aws.ToString(out.InlinePolicy))
		}
		return err
	}); err != nil {
		return ps, err
	}
	if err := c.pages(ctx, "ListTagsForResource", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.sso.ListTagsForResource(ctx, &ssoadmin.ListTagsForResourceInput{InstanceArn: in, ResourceArn: psArn, NextToken: token}, noRetrySSO)
		if err != nil {
			return nil, err
		}
		for _, t := range out.Tags {
			if ps.Tags == nil {
				ps.Tags = map[string]string{}
			}
			ps.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		return out.NextToken, nil
	}); err != nil {
		return ps, err
	}
	sortPolicies(&ps)
	return ps, nil
}

// sortPolicies sorts the policy lists, so that equal permission sets compare equal.
func sortPolicies(ps *access.PermissionSet) {
	slices.Sort(ps.ManagedPolicies)
	slices.SortFunc(ps.CustomerManagedPolicies, func(x, y access.CustomerPolicy) int {
		return strings.Compare(policyPath(x)+x.Name, policyPath(y)+y.Name)
	})
}

func policyPath(p access.CustomerPolicy) string {
	if p.Path == "" {
		return "/"
	}
	return p.Path
}

// compactJSON compacts a JSON document; text that is not JSON is returned as it is.
func compactJSON(s string) string {
	if s == "" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}

// Assignments returns the current assignments of the principals
// (ListAccountAssignmentsForPrincipal, one listing per principal).
func (c *Client) Assignments(ctx context.Context, inst access.Instance, principals []access.Principal) ([]access.Assignment, error) {
	var out []access.Assignment
	for _, p := range principals {
		err := c.pages(ctx, "ListAccountAssignmentsForPrincipal", func(ctx context.Context, token *string) (*string, error) {
			res, err := c.sso.ListAccountAssignmentsForPrincipal(ctx, &ssoadmin.ListAccountAssignmentsForPrincipalInput{
				InstanceArn: aws.String(inst.ARN), PrincipalId: aws.String(p.ID), PrincipalType: ssotypes.PrincipalType(p.Type),
				NextToken: token}, noRetrySSO)
			if err != nil {
				return nil, err
			}
			for _, a := range res.AccountAssignments {
				out = append(out, access.Assignment{AccountID: aws.ToString(a.AccountId), PermissionSetARN: aws.ToString(a.PermissionSetArn),
					PrincipalType: access.PrincipalType(a.PrincipalType), PrincipalID: aws.ToString(a.PrincipalId)})
			}
			return res.NextToken, nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the assignments of %s %s: %w", strings.ToLower(string(p.Type)), p.ID, err)
		}
	}
	sortAssignments(out)
	return out, nil
}

func sortAssignments(as []access.Assignment) {
	key := func(a access.Assignment) string {
		return a.AccountID + "|" + a.PermissionSetARN + "|" + string(a.PrincipalType) + "|" + a.PrincipalID
	}
	sort.Slice(as, func(i, j int) bool { return key(as[i]) < key(as[j]) })
}

// ProvisionedAccounts lists the accounts a permission set is provisioned to
// (ListAccountsForProvisionedPermissionSet), sorted.
func (c *Client) ProvisionedAccounts(ctx context.Context, inst access.Instance, arn string) ([]string, error) {
	var ids []string
	err := c.pages(ctx, "ListAccountsForProvisionedPermissionSet", func(ctx context.Context, token *string) (*string, error) {
		out, err := c.sso.ListAccountsForProvisionedPermissionSet(ctx, &ssoadmin.ListAccountsForProvisionedPermissionSetInput{
			InstanceArn: aws.String(inst.ARN), PermissionSetArn: aws.String(arn), NextToken: token}, noRetrySSO)
		if err != nil {
			return nil, err
		}
		ids = append(ids, out.AccountIds...)
		return out.NextToken, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the accounts permission set %s is provisioned to: %w", arn, err)
	}
	slices.Sort(ids)
	return ids, nil
}
