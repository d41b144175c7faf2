package emulator

import (
	"context"
	"fmt"
	"slices"
)

// opOut renders an assignment operation's status (AccountAssignmentOperationStatus).
func (op *asyncOp) assignmentOut() map[string]any {
	out := map[string]any{
		"CreatedDate": epoch(op.Created), "PermissionSetArn": op.Key.PermissionSet, "PrincipalId": op.Key.PrincipalID,
		"PrincipalType": op.Key.PrincipalType, "RequestId": op.ID, "Status": op.Status,
		"TargetId": op.Key.Account, "TargetType": "AWS_ACCOUNT",
	}
	if op.Reason != "" {
		out["FailureReason"] = op.Reason
	}
	return out
}

// provisioningOut renders a provisioning's status (PermissionSetProvisioningStatus).
func (op *asyncOp) provisioningOut() map[string]any {
	out := map[string]any{"CreatedDate": epoch(op.Created), "PermissionSetArn": op.Key.PermissionSet,
		"RequestId": op.ID, "Status": op.Status}
	if op.Key.Account != "" {
		out["AccountId"] = op.Key.Account
	}
	if op.Reason != "" {
		out["FailureReason"] = op.Reason
	}
	return out
}

// assignmentRequest is a CreateAccountAssignment or DeleteAccountAssignment request.
type assignmentRequest struct {
	psRequest
	PrincipalID   *string `json:"PrincipalId"`
	PrincipalType *string `json:"PrincipalType"`
	TargetID      *string `json:"TargetId"`
	TargetType    *string `json:"TargetType"`
}

// assignment validates the request as AWS does: a permission set of the instance, a principal
// of the identity store, an account of the organization.
func (e *Emulator) assignment(ctx context.Context, req assignmentRequest) (assignmentKey, error) {
	a := e.access
	ps, err := a.target(req.psRequest)
	if err != nil {
		return assignmentKey{}, err
	}
	if deref(req.TargetType) != "AWS_ACCOUNT" {
		return assignmentKey{}, ssoInvalid("TargetType must be AWS_ACCOUNT")
	}
	account := deref(req.TargetID)
	if err := checkAccountID("TargetId", account); err != nil {
		return assignmentKey{}, err
	}
	if a.accounts[account] == nil {
		return assignmentKey{}, ssoInvalid(fmt.Sprintf("TargetId %s is not an account of the organization", account))
	}
	ptype, pid := deref(req.PrincipalType), deref(req.PrincipalID)
	if err := checkPrincipalID(pid); err != nil {
		return assignmentKey{}, err
	}
	var exists bool
	switch ptype {
	case "USER":
		exists, err = e.store.userExists(ctx, nil, pid)
	case "GROUP":
		exists, err = e.store.groupExists(ctx, nil, pid)
	default:
		return assignmentKey{}, ssoInvalid("PrincipalType must be USER or GROUP")
	}
	if err != nil {
		return assignmentKey{}, err
	}
	if !exists {
		return assignmentKey{}, ssoNotFound(fmt.Sprintf("%s %s does not exist in identity store %s", ptype, pid, e.storeID))
	}
	return assignmentKey{Account: account, PermissionSet: ps.ARN, PrincipalType: ptype, PrincipalID: pid}, nil
}

func (e *Emulator) ssoCreateAssignment(ctx context.Context, body []byte) (any, error) {
	var req assignmentRequest
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	key, err := e.assignment(ctx, req)
	if err != nil {
		return nil, err
	}
	op, err := e.access.startOp(e, asyncCreate, key)
	if err != nil {
		return nil, err
	}
	return map[string]any{"AccountAssignmentCreationStatus": op.assignmentOut()}, nil
}

func (e *Emulator) ssoDeleteAssignment(ctx context.Context, body []byte) (any, error) {
	var req assignmentRequest
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	// A deleted principal's assignments can still be deleted: look the assignment up first.
	key := assignmentKey{Account: deref(req.TargetID), PermissionSet: ps.ARN, PrincipalType: deref(req.PrincipalType), PrincipalID: deref(req.PrincipalID)}
	if _, ok := a.assignments[key.id()]; !ok {
		if key, err = e.assignment(ctx, req); err != nil {
			return nil, err
		}
	}
	op, err := a.startOp(e, asyncDelete, key)
	if err != nil {
		return nil, err
	}
	return map[string]any{"AccountAssignmentDeletionStatus": op.assignmentOut()}, nil
}

// operation returns the request's operation of the kind wanted.
func (a *accessState) operation(instance, id *string, kind asyncKind, field string) (*asyncOp, error) {
	if err := a.checkInstance(instance); err != nil {
		return nil, err
	}
	if id == nil || *id == "" {
		return nil, ssoInvalid(field + " is required")
	}
	op := a.ops[*id]
	if op == nil || op.Kind != kind {
		return nil, ssoNotFound(fmt.Sprintf("Could not find the request %s", *id))
	}
	return op, nil
}

// describeOp answers a Describe...Status call: the operation of kind the request names in
// field, rendered by out under outKey.
func (a *accessState) describeOp(instance, id *string, kind asyncKind, field, outKey string, out func(*asyncOp) map[string]any) (any, error) {
	op, err := a.operation(instance, id, kind, field)
	if err != nil {
		return nil, err
	}
	return map[string]any{outKey: out(op)}, nil
}

func (e *Emulator) ssoDescribeCreation(_ context.Context, body []byte) (any, error) {
	var req struct {
		InstanceArn *string `json:"InstanceArn"`
		RequestID   *string `json:"AccountAssignmentCreationRequestId"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	return e.access.describeOp(req.InstanceArn, req.RequestID, asyncCreate, "AccountAssignmentCreationRequestId", "AccountAssignmentCreationStatus", (*asyncOp).assignmentOut)
}

func (e *Emulator) ssoDescribeDeletion(_ context.Context, body []byte) (any, error) {
	var req struct {
		InstanceArn *string `json:"InstanceArn"`
		RequestID   *string `json:"AccountAssignmentDeletionRequestId"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	return e.access.describeOp(req.InstanceArn, req.RequestID, asyncDelete, "AccountAssignmentDeletionRequestId", "AccountAssignmentDeletionStatus", (*asyncOp).assignmentOut)
}

// statusListRequest is a List...Status request.
type statusListRequest struct {
	pageParams
	InstanceArn *string `json:"InstanceArn"`
	Filter      *struct {
		Status *string `json:"Status"`
	} `json:"Filter"`
}

// listOps lists the operations of a kind, optionally with one status, as status metadata.
func (a *accessState) listOps(req statusListRequest, kind asyncKind, field string) (any, error) {
	if err := a.checkInstance(req.InstanceArn); err != nil {
		return nil, err
	}
	status := ""
	if req.Filter != nil && req.Filter.Status != nil {
		status = *req.Filter.Status
		if !slices.Contains([]string{statusInProgress, statusFailed, statusSucceeded}, status) {
			return nil, ssoInvalid("Filter.Status must be IN_PROGRESS, FAILED or SUCCEEDED")
		}
	}
	// Keys sort in the order the operations were made.
	var keys []string
	byKey := map[string]*asyncOp{}
	for _, id := range a.opOrder {
		op := a.ops[id]
		if op.Kind == kind && (status == "" || op.Status == status) {
			k := fmt.Sprintf("%015d", op.Seq)
			keys = append(keys, k)
			byKey[k] = op
		}
	}
	return pageAnswer(keys, req.pageParams, ssoAdminPage, fmt.Sprintf("ops:%d:%s", kind, status), ssoInvalid, field, func(k string) any {
		op := byKey[k]
		return map[string]any{"CreatedDate": epoch(op.Created), "RequestId": op.ID, "Status": op.Status}
	})
}

// ssoListOps is the handler of a List...Status call: the operations of kind, under field.
func ssoListOps(kind asyncKind, field string) accessOperation {
	return func(e *Emulator, _ context.Context, body []byte) (any, error) {
		var req statusListRequest
		if err := decodeAccess(body, &req); err != nil {
			return nil, err
		}
		return e.access.listOps(req, kind, field)
	}
}

func assignmentOut(k assignmentKey) map[string]any {
	return map[string]any{"AccountId": k.Account, "PermissionSetArn": k.PermissionSet,
		"PrincipalId": k.PrincipalID, "PrincipalType": k.PrincipalType}
}

// listAssignments pages through the assignments keep selects.
func (a *accessState) listAssignments(p pageParams, sig string, keep func(assignmentKey) bool) (any, error) {
	var keys []string
	for id, k := range a.assignments {
		if keep(k) {
			keys = append(keys, id)
		}
	}
	return pageAnswer(keys, p, ssoAdminPage, sig, ssoInvalid, "AccountAssignments", func(id string) any {
		return assignmentOut(a.assignments[id])
	})
}

func (e *Emulator) ssoListAssignments(_ context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		pageParams
		AccountID *string `json:"AccountId"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	account := deref(req.AccountID)
	if err := checkAccountID("AccountId", account); err != nil {
		return nil, err
	}
	return a.listAssignments(req.pageParams, "assignments:"+account+":"+ps.ARN, func(k assignmentKey) bool {
		return k.Account == account && k.PermissionSet == ps.ARN
	})
}

func (e *Emulator) ssoListAssignmentsForPrincipal(_ context.Context, body []byte) (any, error) {
	var req struct {
		pageParams
		InstanceArn   *string `json:"InstanceArn"`
		PrincipalID   *string `json:"PrincipalId"`
		PrincipalType *string `json:"PrincipalType"`
		Filter        *struct {
			AccountID *string `json:"AccountId"`
		} `json:"Filter"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	if err := a.checkInstance(req.InstanceArn); err != nil {
		return nil, err
	}
	ptype, pid := deref(req.PrincipalType), deref(req.PrincipalID)
	if ptype != "USER" && ptype != "GROUP" {
		return nil, ssoInvalid("PrincipalType must be USER or GROUP")
	}
	if err := checkPrincipalID(pid); err != nil {
		return nil, err
	}
	account := ""
	if req.Filter != nil {
		account = deref(req.Filter.AccountID)
	}
	return a.listAssignments(req.pageParams, "principal:"+ptype+":"+pid+":"+account, func(k assignmentKey) bool {
		return k.PrincipalType == ptype && k.PrincipalID == pid && (account == "" || k.Account == account)
	})
}

func (e *Emulator) ssoProvision(_ context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		TargetID   *string `json:"TargetId"`
		TargetType *string `json:"TargetType"`
	}
	a := e.access
	ps, err := a.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	key := assignmentKey{PermissionSet: ps.ARN}
	switch deref(req.TargetType) {
	case "ALL_PROVISIONED_ACCOUNTS":
		if req.TargetID != nil {
			return nil, ssoInvalid("TargetId must be left out with TargetType ALL_PROVISIONED_ACCOUNTS")
		}
	case "AWS_ACCOUNT":
		key.Account = deref(req.TargetID)
		if a.accounts[key.Account] == nil {
			return nil, ssoInvalid(fmt.Sprintf("TargetId %q is not an account of the organization", key.Account))
		}
	default:
		return nil, ssoInvalid("TargetType must be AWS_ACCOUNT or ALL_PROVISIONED_ACCOUNTS")
	}
	op, err := a.startOp(e, asyncProvision, key)
	if err != nil {
		return nil, err
	}
	return map[string]any{"PermissionSetProvisioningStatus": op.provisioningOut()}, nil
}

func (e *Emulator) ssoDescribeProvisioning(_ context.Context, body []byte) (any, error) {
	var req struct {
		InstanceArn *string `json:"InstanceArn"`
		RequestID   *string `json:"ProvisionPermissionSetRequestId"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	return e.access.describeOp(req.InstanceArn, req.RequestID, asyncProvision, "ProvisionPermissionSetRequestId", "PermissionSetProvisioningStatus", (*asyncOp).provisioningOut)
}

// provisioningFilter checks a ProvisioningStatus filter and says whether an account passes it.
func provisioningFilter(status *string, ps *permSet, account string) (bool, error) {
	switch deref(status) {
	case "":
		return true, nil
	case "LATEST_PERMISSION_SET_PROVISIONED":
		return !slices.Contains(ps.Stale, account), nil
	case "LATEST_PERMISSION_SET_NOT_PROVISIONED":
		return slices.Contains(ps.Stale, account), nil
	}
	return false, ssoInvalid("ProvisioningStatus must be LATEST_PERMISSION_SET_PROVISIONED or LATEST_PERMISSION_SET_NOT_PROVISIONED")
}

func (e *Emulator) ssoListAccountsForPermissionSet(_ context.Context, body []byte) (any, error) {
	var req struct {
		psRequest
		pageParams
		ProvisioningStatus *string `json:"ProvisioningStatus"`
	}
	ps, err := e.access.decodePS(body, &req)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, acc := range ps.Provisioned {
		ok, err := provisioningFilter(req.ProvisioningStatus, ps, acc)
		if err != nil {
			return nil, err
		}
		if ok {
			ids = append(ids, acc)
		}
	}
	keys, next, err := pageOf(ids, req.pageParams, ssoAdminPage, "provisioned:"+ps.ARN+":"+deref(req.ProvisioningStatus), ssoInvalid)
	if err != nil {
		return nil, err
	}
	return map[string]any{"AccountIds": append([]string{}, keys...), "NextToken": next}, nil
}

func (e *Emulator) ssoListPermissionSetsForAccount(_ context.Context, body []byte) (any, error) {
	var req struct {
		pageParams
		InstanceArn        *string `json:"InstanceArn"`
		AccountID          *string `json:"AccountId"`
		ProvisioningStatus *string `json:"ProvisioningStatus"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	if err := a.checkInstance(req.InstanceArn); err != nil {
		return nil, err
	}
	account := deref(req.AccountID)
	if err := checkAccountID("AccountId", account); err != nil {
		return nil, err
	}
	var arns []string
	for arn, ps := range a.permSets {
		if !slices.Contains(ps.Provisioned, account) {
			continue
		}
		ok, err := provisioningFilter(req.ProvisioningStatus, ps, account)
		if err != nil {
			return nil, err
		}
		if ok {
			arns = append(arns, arn)
		}
	}
	keys, next, err := pageOf(arns, req.pageParams, ssoAdminPage, "account-sets:"+account+":"+deref(req.ProvisioningStatus), ssoInvalid)
	if err != nil {
		return nil, err
	}
	return map[string]any{"PermissionSets": append([]string{}, keys...), "NextToken": next}, nil
}
