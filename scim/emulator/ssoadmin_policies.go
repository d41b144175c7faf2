package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Policy limits of a permission set: managed policies (AWS and customer managed together, IAM's
// default of 10 per role) and the inline policy's size.
const (
	maxManagedPolicies    = 10
	maxInlinePolicyBytes  = 32768
	maxInlinePolicyChars  = 10240 // characters other than white space
	maxCustomerPolicyName = 128
	maxCustomerPolicyPath = 512
)

// A permission set's two lists of managed policies: AWS managed (by ARN) and customer managed.
func managedList(ps *permSet) *[]string       { return &ps.Managed }
func customerList(ps *permSet) *[]customerRef { return &ps.Customer }

// attachPolicy adds item to the policy list of ps that list selects, kept sorted by compare;
// attached is the conflict's message when it is there already. AWS and customer managed
// policies count together against the quota.
func attachPolicy[T comparable](ctx context.Context, e *Emulator, ps *permSet, list func(*permSet) *[]T, item T,
	compare func(x, y T) int, attached string) (any, error) {
	if slices.Contains(*list(ps), item) {
		return nil, ssoConflict(attached)
	}
	if len(ps.Managed)+len(ps.Customer) >= maxManagedPolicies {
		return nil, ssoQuota(fmt.Sprintf("PermissionSet %s holds %d managed policies, the most allowed", ps.Name, maxManagedPolicies))
	}
	return e.access.updatePS(ctx, e, ps, true, func(next *permSet) {
		l := append(slices.Clone(*list(ps)), item)
		slices.SortFunc(l, compare)
		*list(next) = l
	})
}

// detachPolicy removes item from the policy list of ps that list selects; notAttached is the
// error's message when it is not there.
func detachPolicy[T comparable](ctx context.Context, e *Emulator, ps *permSet, list func(*permSet) *[]T, item T,
	notAttached string) (any, error) {
	if !slices.Contains(*list(ps), item) {
		return nil, ssoNotFound(notAttached)
	}
	return e.access.updatePS(ctx, e, ps, true, func(next *permSet) {
		*list(next) = slices.DeleteFunc(slices.Clone(*list(ps)), func(x T) bool { return x == item })
	})
}

func (e *Emulator) ssoAttachManaged(ctx context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		ManagedPolicyArn *string `json:"ManagedPolicyArn"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	arn := deref(req.ManagedPolicyArn)
	if !managedPolicyARN.MatchString(arn) {
		return nil, ssoInvalid(fmt.Sprintf("ManagedPolicyArn %q is not the ARN of an AWS managed policy", arn))
	}
	return attachPolicy(ctx, e, ps, managedList, arn, strings.Compare,
		fmt.Sprintf("Policy %s is already attached to PermissionSet %s", arn, ps.Name))
}

func (e *Emulator) ssoDetachManaged(ctx context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		ManagedPolicyArn *string `json:"ManagedPolicyArn"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	arn := deref(req.ManagedPolicyArn)
	return detachPolicy(ctx, e, ps, managedList, arn,
		fmt.Sprintf("Policy %s is not attached to PermissionSet %s", arn, ps.Name))
}

func (e *Emulator) ssoListManaged(_ context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		pageParams
	}
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	return pageAnswer(slices.Clone(ps.Managed), req.pageParams, ssoAdminPage, "managed:"+ps.ARN, ssoInvalid, "AttachedManagedPolicies", func(arn string) any {
		return map[string]any{"Arn": arn, "Name": arn[strings.LastIndex(arn, "/")+1:]}
	})
}

// customerRefIn is a CustomerManagedPolicyReference of a request.
type customerRefIn struct {
	Name *string `json:"Name"`
	Path *string `json:"Path"`
}

func (c *customerRefIn) check() (customerRef, error) {
	if c == nil || c.Name == nil || len(*c.Name) < 1 || len(*c.Name) > maxCustomerPolicyName || !psNamePattern.MatchString(*c.Name) {
		return customerRef{}, ssoInvalid("CustomerManagedPolicyReference.Name must be 1 to 128 characters of letters, digits and +=,.@_-")
	}
	ref := customerRef{Name: *c.Name, Path: "/"}
	if c.Path != nil {
		if len(*c.Path) > maxCustomerPolicyPath || !customerPathPattern.MatchString(*c.Path) {
			return customerRef{}, ssoInvalid(fmt.Sprintf("CustomerManagedPolicyReference.Path %q must start and end with /", *c.Path))
		}
		ref.Path = *c.Path
	}
	return ref, nil
}

// decodeCustomer decodes an attach or detach of a customer managed policy: the permission set
// and the checked reference.
func (a *accessState) decodeCustomer(body []byte) (*permSet, customerRef, error) {
	var req struct {
		psRequest
		Ref *customerRefIn `json:"CustomerManagedPolicyReference"`
	}
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, customerRef{}, err
	}
	ref, err := req.Ref.check()
	if err != nil {
		return nil, customerRef{}, err
	}
	return ps, ref, nil
}

func (e *Emulator) ssoAttachCustomer(ctx context.Context, body []byte) (any, error) {
	ps, ref, err := e.access.decodeCustomer(body)
	if err != nil {
		return nil, err
	}
	return attachPolicy(ctx, e, ps, customerList, ref, func(x, y customerRef) int { return strings.Compare(x.Path+x.Name, y.Path+y.Name) },
		fmt.Sprintf("Customer managed policy %s%s is already attached to PermissionSet %s", ref.Path, ref.Name, ps.Name))
}

func (e *Emulator) ssoDetachCustomer(ctx context.Context, body []byte) (any, error) {
	ps, ref, err := e.access.decodeCustomer(body)
	if err != nil {
		return nil, err
	}
	return detachPolicy(ctx, e, ps, customerList, ref,
		fmt.Sprintf("Customer managed policy %s%s is not attached to PermissionSet %s", ref.Path, ref.Name, ps.Name))
}

func (e *Emulator) ssoListCustomer(_ context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		pageParams
	}
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	byKey := map[string]customerRef{}
	var keys []string
	for _, c := range ps.Customer {
		byKey[c.Path+c.Name] = c
		keys = append(keys, c.Path+c.Name)
	}
	return pageAnswer(keys, req.pageParams, ssoAdminPage, "customer:"+ps.ARN, ssoInvalid, "CustomerManagedPolicyReferences", func(k string) any {
		return map[string]any{"Name": byKey[k].Name, "Path": byKey[k].Path}
	})
}

// checkInlinePolicy applies AWS's limits: a JSON object, at most 32,768 bytes and 10,240
// characters other than white space.
func checkInlinePolicy(p string) error {
	if p == "" {
		return ssoInvalid("InlinePolicy is required")
	}
	if len(p) > maxInlinePolicyBytes {
		return ssoInvalid(fmt.Sprintf("InlinePolicy is %d bytes long, more than %d", len(p), maxInlinePolicyBytes))
	}
	n := 0
	for _, r := range p {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	if n > maxInlinePolicyChars {
		return ssoInvalid(fmt.Sprintf("InlinePolicy holds %d characters other than white space, more than %d", n, maxInlinePolicyChars))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		return ssoInvalid("InlinePolicy is not a JSON policy document: " + err.Error())
	}
	if _, ok := doc["Statement"]; !ok {
		return ssoInvalid("InlinePolicy has no Statement")
	}
	return nil
}

func (e *Emulator) ssoPutInline(ctx context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		InlinePolicy *string `json:"InlinePolicy"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	if err := checkInlinePolicy(deref(req.InlinePolicy)); err != nil {
		return nil, err
	}
	return a.updatePS(ctx, e, ps, true, func(next *permSet) {
		next.Inline = *req.InlinePolicy
	})
}

func (e *Emulator) ssoGetInline(_ context.Context, body []byte) (any, error) {
	var req psRequest
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if ps.Inline != "" {
		out["InlinePolicy"] = ps.Inline
	}
	return out, nil
}

func (e *Emulator) ssoDeleteInline(ctx context.Context, body []byte) (any, error) {
	var req psRequest
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	if ps.Inline == "" {
		return map[string]any{}, nil
	}
	return a.updatePS(ctx, e, ps, true, func(next *permSet) {
		next.Inline = ""
	})
}

// tagRequest is the part the tag operations share: the resource is a permission set.
type tagRequest struct {
	InstanceArn *string `json:"InstanceArn"`
	ResourceArn *string `json:"ResourceArn"`
}

func (r tagRequest) lookup(a *accessState) (*permSet, error) { return a.tagTarget(r) }

func (a *accessState) tagTarget(r tagRequest) (*permSet, error) {
	if err := a.checkInstance(r.InstanceArn); err != nil {
		return nil, err
	}
	if r.ResourceArn == nil || *r.ResourceArn == "" {
		return nil, ssoInvalid("ResourceArn is required")
	}
	ps := a.permSets[*r.ResourceArn]
	if ps == nil {
		return nil, ssoNotFound(fmt.Sprintf("Could not find resource %s", *r.ResourceArn))
	}
	return ps, nil
}

func (e *Emulator) ssoTagResource(ctx context.Context, body []byte) (any, error) {
	var req struct {
		tagRequest
		Tags []tagIn `json:"Tags"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	if len(req.Tags) == 0 {
		return nil, ssoInvalid("Tags must hold 1 to 50 tags")
	}
	tags, err := checkTags(req.Tags, ps.Tags)
	if err != nil {
		return nil, err
	}
	return a.updatePS(ctx, e, ps, false, func(next *permSet) {
		next.Tags = tags
	})
}

func (e *Emulator) ssoUntagResource(ctx context.Context, body []byte) (any, error) {
	var req struct {
		tagRequest
		TagKeys []string `json:"TagKeys"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	if len(req.TagKeys) == 0 || len(req.TagKeys) > 50 {
		return nil, ssoInvalid("TagKeys must hold 1 to 50 keys")
	}
	return a.updatePS(ctx, e, ps, false, func(next *permSet) {
		next.Tags = map[string]string{}
		for k, v := range ps.Tags {
			if !slices.Contains(req.TagKeys, k) {
				next.Tags[k] = v
			}
		}
	})
}

func (e *Emulator) ssoListTags(_ context.Context, body []byte) (any, error) {
	var req struct {
		tagRequest
		NextToken *string `json:"NextToken"`
	}
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Tags": tagsOut(ps.Tags)}, nil
}
