package emulator

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxPermissionSets is the default quota of permission sets per instance.
const maxPermissionSets = 2000

func (a *accessState) psOut(ps *permSet) map[string]any {
	out := map[string]any{"Name": ps.Name, "PermissionSetArn": ps.ARN, "CreatedDate": epoch(ps.Created),
		"SessionDuration": ps.SessionDuration}
	if ps.Description != "" {
		out["Description"] = ps.Description
	}
	if ps.RelayState != "" {
		out["RelayState"] = ps.RelayState
	}
	return out
}

// checkPSAttributes validates a permission set's description, session duration and relay state.
func checkPSAttributes(description, session, relay *string) error {
	if description != nil {
		if len(*description) < 1 || len(*description) > 700 || !descriptionPattern.MatchString(*description) {
			return ssoInvalid("Description must be 1 to 700 characters of printable Latin-1")
		}
	}
	if session != nil {
		if err := checkSessionDuration(*session); err != nil {
			return err
		}
	}
	if relay != nil && (len(*relay) < 1 || len(*relay) > 240) {
		return ssoInvalid("RelayState must be 1 to 240 characters")
	}
	return nil
}

func (e *Emulator) ssoCreatePermissionSet(ctx context.Context, body []byte) (any, error) {
	var req struct {
		InstanceArn     *string `json:"InstanceArn"`
		Name            *string `json:"Name"`
		Description     *string `json:"Description"`
		SessionDuration *string `json:"SessionDuration"`
		RelayState      *string `json:"RelayState"`
		Tags            []tagIn `json:"Tags"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	if err := a.checkInstance(req.InstanceArn); err != nil {
		return nil, err
	}
	if req.Name == nil || len(*req.Name) < 1 || len(*req.Name) > 32 || !psNamePattern.MatchString(*req.Name) {
		return nil, ssoInvalid(fmt.Sprintf("Name %q must be 1 to 32 characters of letters, digits and +=,.@_-", deref(req.Name)))
	}
	if err := checkPSAttributes(req.Description, req.SessionDuration, req.RelayState); err != nil {
		return nil, err
	}
	tags, err := checkTags(req.Tags, nil)
	if err != nil {
		return nil, err
	}
	for _, ps := range a.permSets {
		if strings.EqualFold(ps.Name, *req.Name) {
			return nil, ssoConflict(fmt.Sprintf("PermissionSet with name %s already exists", *req.Name))
		}
	}
	if len(a.permSets) >= maxPermissionSets {
		return nil, ssoQuota(fmt.Sprintf("an instance holds at most %d permission sets", maxPermissionSets))
	}
	a.psSeq++
	if err := e.store.accessPut(ctx, "seq", "permission_set", a.psSeq); err != nil {
		return nil, err
	}
	ps := &permSet{
		ARN:  "arn:aws:sso:::permissionSet/" + a.instanceID + "/ps-" + hashHex(16, e.storeID, "ps", strconv.Itoa(a.psSeq)),
		Name: *req.Name, Description: deref(req.Description), SessionDuration: "PT1H", RelayState: deref(req.RelayState),
		Created: time.Now().UTC(), Tags: tags,
	}
	if req.SessionDuration != nil {
		ps.SessionDuration = *req.SessionDuration
	}
	if err := e.store.accessPut(ctx, "permission_set", ps.ARN, ps); err != nil {
		return nil, err
	}
	a.permSets[ps.ARN] = ps
	return map[string]any{"PermissionSet": a.psOut(ps)}, nil
}

func (e *Emulator) ssoDescribePermissionSet(_ context.Context, body []byte) (any, error) {
	var req psRequest
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"PermissionSet": e.access.psOut(ps)}, nil
}

func (e *Emulator) ssoUpdatePermissionSet(ctx context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		Description     *string `json:"Description"`
		SessionDuration *string `json:"SessionDuration"`
		RelayState      *string `json:"RelayState"`
	}
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	if err := checkPSAttributes(req.Description, req.SessionDuration, req.RelayState); err != nil {
		return nil, err
	}
	return e.access.updatePS(ctx, e, ps, true, func(next *permSet) {
		if req.Description != nil {
			next.Description = *req.Description
		}
		if req.SessionDuration != nil {
			next.SessionDuration = *req.SessionDuration
		}
		if req.RelayState != nil {
			next.RelayState = *req.RelayState
		}
	})
}

// savePS stores next as ps's new state. A change that reaches the accounts (policies, session
// duration, relay state) marks every account the permission set is provisioned to as not having
// its latest version, until ProvisionPermissionSet.
func (a *accessState) savePS(ctx context.Context, e *Emulator, ps *permSet, next permSet, reachesAccounts bool) error {
	if reachesAccounts {
		next.Stale = slices.Clone(next.Provisioned)
	}
	if err := e.store.accessPut(ctx, "permission_set", ps.ARN, &next); err != nil {
		return err
	}
	*ps = next
	return nil
}

func (e *Emulator) ssoDeletePermissionSet(ctx context.Context, body []byte) (any, error) {
	var req psRequest
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	for _, k := range a.assignments {
		if k.PermissionSet == ps.ARN {
			return nil, ssoConflict(fmt.Sprintf("PermissionSet %s is assigned in account %s; delete its account assignments first",
				ps.Name, k.Account))
		}
	}
	for _, op := range a.active {
		if op.Key.PermissionSet == ps.ARN {
			return nil, ssoConflict(fmt.Sprintf("PermissionSet %s has an operation in progress (request %s)", ps.Name, op.ID))
		}
	}
	if err := e.store.accessDelete(ctx, "permission_set", ps.ARN); err != nil {
		return nil, err
	}
	delete(a.permSets, ps.ARN)
	return map[string]any{}, nil
}

func (e *Emulator) ssoListPermissionSets(_ context.Context, body []byte) (any, error) {
	var req struct {
		pageParams
		InstanceArn *string `json:"InstanceArn"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	if err := a.checkInstance(req.InstanceArn); err != nil {
		return nil, err
	}
	arns := make([]string, 0, len(a.permSets))
	for arn := range a.permSets {
		arns = append(arns, arn)
	}
	keys, next, err := pageOf(arns, req.pageParams, ssoAdminPage, "permission-sets", ssoInvalid)
	if err != nil {
		return nil, err
	}
	return map[string]any{"PermissionSets": append([]string{}, keys...), "NextToken": next}, nil
}
