package awsaccess

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/scimbridge/scimbridge/scim/access"
)

// CreatePermissionSet creates the permission set with its attributes and tags, then attaches its
// policies. When a later step fails the ARN is returned with the error: the permission set
// exists, and an update completes it.
func (c *Client) CreatePermissionSet(ctx context.Context, inst access.Instance, ps access.PermissionSet) (string, error) {
	in := &ssoadmin.CreatePermissionSetInput{InstanceArn: aws.String(inst.ARN), Name: aws.String(ps.Name),
		Description: optional(ps.Description), SessionDuration: optional(ps.SessionDuration), RelayState: optional(ps.RelayState),
		Tags: tagList(ps.Tags)}
	var arn string
	if _, err := c.call(ctx, "CreatePermissionSet", callOpts{}, func(ctx context.Context) error {
		out, err := c.sso.CreatePermissionSet(ctx, in, noRetrySSO)
		if err == nil && out.PermissionSet != nil {
			arn = aws.ToString(out.PermissionSet.PermissionSetArn)
		}
		return err
	}); err != nil {
		return "", fmt.Errorf("create permission set %s: %w", ps.Name, err)
	}
	have := access.PermissionSet{ARN: arn, Name: ps.Name, Description: ps.Description, SessionDuration: ps.SessionDuration,
		RelayState: ps.RelayState, Tags: ps.Tags}
	want := ps
	want.ARN = arn
	if err := c.updatePolicies(ctx, inst, have, want); err != nil {
		return arn, fmt.Errorf("create permission set %s: %w", ps.Name, err)
	}
	return arn, nil
}

// UpdatePermissionSet makes the permission set at want.ARN equal to want: its attributes, its
// managed, customer managed and inline policies, and its tags. It does not provision it.
func (c *Client) UpdatePermissionSet(ctx context.Context, inst access.Instance, have, want access.PermissionSet) error {
	if err := c.updatePermissionSet(ctx, inst, have, want); err != nil {
		return fmt.Errorf("update permission set %s: %w", want.Name, err)
	}
	return nil
}

func (c *Client) updatePermissionSet(ctx context.Context, inst access.Instance, have, want access.PermissionSet) error {
	upd := &ssoadmin.UpdatePermissionSetInput{InstanceArn: aws.String(inst.ARN), PermissionSetArn: aws.String(want.ARN)}
	changed := false
	// AWS cannot clear a description or relay state (they are 1 character at least); an empty
	// wanted value leaves the current one.
	if want.Description != "" && want.Description != have.Description {
		upd.Description, changed = aws.String(want.Description), true
	}
	if want.SessionDuration != "" && want.SessionDuration != have.SessionDuration {
		upd.SessionDuration, changed = aws.String(want.SessionDuration), true
	}
	if want.RelayState != "" && want.RelayState != have.RelayState {
		upd.RelayState, changed = aws.String(want.RelayState), true
	}
	if changed {
		if _, err := c.call(ctx, "UpdatePermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.UpdatePermissionSet(ctx, upd, noRetrySSO)
			return err
		}); err != nil {
			return err
		}
	}
	if err := c.updatePolicies(ctx, inst, have, want); err != nil {
		return err
	}
	return c.updateTags(ctx, inst, want.ARN, have.Tags, want.Tags)
}

// updatePolicies attaches and detaches managed and customer managed policies, and puts or
// deletes the inline policy, from have to want.
func (c *Client) updatePolicies(ctx context.Context, inst access.Instance, have, want access.PermissionSet) error {
	in, arn := aws.String(inst.ARN), aws.String(want.ARN)
	for _, p := range want.ManagedPolicies {
		if slices.Contains(have.ManagedPolicies, p) {
			continue
		}
		if _, err := c.call(ctx, "AttachManagedPolicyToPermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.AttachManagedPolicyToPermissionSet(ctx, &ssoadmin.AttachManagedPolicyToPermissionSetInput{
				InstanceArn: in, PermissionSetArn: arn, ManagedPolicyArn: aws.String(p)}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("attach %s: %w", p, err)
		}
	}
	for _, p := range have.ManagedPolicies {
		if slices.Contains(want.ManagedPolicies, p) {
			continue
		}
		if _, err := c.call(ctx, "DetachManagedPolicyFromPermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.DetachManagedPolicyFromPermissionSet(ctx, &ssoadmin.DetachManagedPolicyFromPermissionSetInput{
				InstanceArn: in, PermissionSetArn: arn, ManagedPolicyArn: aws.String(p)}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("detach %s: %w", p, err)
		}
	}
	same := func(x, y access.CustomerPolicy) bool { return x.Name == y.Name && policyPath(x) == policyPath(y) }
	holds := func(list []access.CustomerPolicy, p access.CustomerPolicy) bool {
		return slices.ContainsFunc(list, func(q access.CustomerPolicy) bool { return same(p, q) })
	}
	for _, p := range want.CustomerManagedPolicies {
		if holds(have.CustomerManagedPolicies, p) {
			continue
		}
		ref := &ssotypes.CustomerManagedPolicyReference{Name: aws.String(p.Name), Path: aws.String(policyPath(p))}
		if _, err := c.call(ctx, "AttachCustomerManagedPolicyReferenceToPermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.AttachCustomerManagedPolicyReferenceToPermissionSet(ctx, &ssoadmin.AttachCustomerManagedPolicyReferenceToPermissionSetInput{
				InstanceArn: in, PermissionSetArn: arn, CustomerManagedPolicyReference: ref}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("attach customer managed policy %s%s: %w", policyPath(p), p.Name, err)
		}
	}
	for _, p := range have.CustomerManagedPolicies {
		if holds(want.CustomerManagedPolicies, p) {
			continue
		}
		ref := &ssotypes.CustomerManagedPolicyReference{Name: aws.String(p.Name), Path: aws.String(policyPath(p))}
		if _, err := c.call(ctx, "DetachCustomerManagedPolicyReferenceFromPermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.DetachCustomerManagedPolicyReferenceFromPermissionSet(ctx, &ssoadmin.DetachCustomerManagedPolicyReferenceFromPermissionSetInput{
				InstanceArn: in, PermissionSetArn: arn, CustomerManagedPolicyReference: ref}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("detach customer managed policy %s%s: %w", policyPath(p), p.Name, err)
		}
	}
	wantInline, haveInline := compactJSON(want.InlinePolicy), compactJSON(have.InlinePolicy)
	switch {
	case wantInline == haveInline:
	case wantInline == "":
		if _, err := c.call(ctx, "DeleteInlinePolicyFromPermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.DeleteInlinePolicyFromPermissionSet(ctx, &ssoadmin.DeleteInlinePolicyFromPermissionSetInput{
				InstanceArn: in, PermissionSetArn: arn}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("delete the inline policy: %w", err)
		}
	default:
		if _, err := c.call(ctx, "PutInlinePolicyToPermissionSet", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{
				InstanceArn: in, PermissionSetArn: arn, InlinePolicy: aws.String(wantInline)}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("put the inline policy: %w", err)
		}
	}
	return nil
}

// updateTags tags and untags the permission set from have to want.
func (c *Client) updateTags(ctx context.Context, inst access.Instance, arn string, have, want map[string]string) error {
	set := map[string]string{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			set[k] = v
		}
	}
	var drop []string
	for k := range have {
		if _, ok := want[k]; !ok {
			drop = append(drop, k)
		}
	}
	sort.Strings(drop)
	if len(set) > 0 {
		if _, err := c.call(ctx, "TagResource", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.TagResource(ctx, &ssoadmin.TagResourceInput{InstanceArn: aws.String(inst.ARN), ResourceArn: aws.String(arn),
				Tags: tagList(set)}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
	}
	if len(drop) > 0 {
		if _, err := c.call(ctx, "UntagResource", callOpts{}, func(ctx context.Context) error {
			_, err := c.sso.UntagResource(ctx, &ssoadmin.UntagResourceInput{InstanceArn: aws.String(inst.ARN), ResourceArn: aws.String(arn),
				TagKeys: drop}, noRetrySSO)
			return err
		}); err != nil {
			return fmt.Errorf("untag: %w", err)
		}
	}
	return nil
}

// DeletePermissionSet deletes a permission set that has no assignments left.
func (c *Client) DeletePermissionSet(ctx context.Context, inst access.Instance, arn string) error {
	if _, err := c.call(ctx, "DeletePermissionSet", callOpts{}, func(ctx context.Context) error {
		_, err := c.sso.DeletePermissionSet(ctx, &ssoadmin.DeletePermissionSetInput{InstanceArn: aws.String(inst.ARN),
			PermissionSetArn: aws.String(arn)}, noRetrySSO)
		return err
	}); err != nil {
		return fmt.Errorf("delete permission set %s: %w", arn, err)
	}
	return nil
}

// ProvisionPermissionSet provisions the permission set to every account that has it and waits
// for the provisioning to end; a FAILED provisioning is an error wrapping ErrFailed with AWS's
// reason.
func (c *Client) ProvisionPermissionSet(ctx context.Context, inst access.Instance, arn string) error {
	if err := c.provision(ctx, inst, arn); err != nil {
		return fmt.Errorf("provision permission set %s: %w", arn, err)
	}
	return nil
}

func (c *Client) provision(ctx context.Context, inst access.Instance, arn string) error {
	var status *ssotypes.PermissionSetProvisioningStatus
	started := time.Now()
	if _, err := c.call(ctx, "ProvisionPermissionSet", callOpts{retryConflict: true}, func(ctx context.Context) error {
		out, err := c.sso.ProvisionPermissionSet(ctx, &ssoadmin.ProvisionPermissionSetInput{InstanceArn: aws.String(inst.ARN),
			PermissionSetArn: aws.String(arn), TargetType: ssotypes.ProvisionTargetTypeAllProvisionedAccounts}, noRetrySSO)
		if err == nil {
			status = out.PermissionSetProvisioningStatus
		}
		return err
	}); err != nil {
		return err
	}
	wait := c.estimate(kindProvision).next(started, c.opts)
	for status != nil && status.Status == ssotypes.StatusValuesInProgress {
		if err := sleep(ctx, time.Until(wait)); err != nil {
			return err
		}
		id := status.RequestId
		if _, err := c.call(ctx, "DescribePermissionSetProvisioningStatus", callOpts{}, func(ctx context.Context) error {
			out, err := c.sso.DescribePermissionSetProvisioningStatus(ctx, &ssoadmin.DescribePermissionSetProvisioningStatusInput{
				InstanceArn: aws.String(inst.ARN), ProvisionPermissionSetRequestId: id}, noRetrySSO)
			if err == nil {
				status = out.PermissionSetProvisioningStatus
			}
			return err
		}); err != nil {
			return err
		}
		est := c.estimate(kindProvision)
		if status.Status == ssotypes.StatusValuesInProgress {
			est.stillRunning(time.Since(started))
			wait = time.Now().Add(est.step(c.opts))
		} else {
			est.finished(time.Since(started))
		}
	}
	if status != nil && status.Status == ssotypes.StatusValuesFailed {
		return fmt.Errorf("%w: %s", ErrFailed, aws.ToString(status.FailureReason))
	}
	return nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// tagList renders tags sorted by key.
func tagList(tags map[string]string) []ssotypes.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []ssotypes.Tag
	for _, k := range keys {
		out = append(out, ssotypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}
