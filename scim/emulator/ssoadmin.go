package emulator

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// ssoAdminPage is the largest page sso-admin listings return.
const ssoAdminPage = 100

// ssoAdminOperations maps each sso-admin operation the emulator serves (X-Amz-Target
// "SWBExternalService.<name>"; the Stats key is "sso-admin.<name>") to its handler: permission
// sets in ssoadmin_permissionsets.go, their policies and tags in ssoadmin_policies.go, account
// assignments and provisioning in ssoadmin_assignments.go.
var ssoAdminOperations = map[string]accessOperation{
	"ListInstances":                                         (*Emulator).ssoListInstances,
	"CreatePermissionSet":                                   (*Emulator).ssoCreatePermissionSet,
	"DescribePermissionSet":                                 (*Emulator).ssoDescribePermissionSet,
	"UpdatePermissionSet":                                   (*Emulator).ssoUpdatePermissionSet,
	"DeletePermissionSet":                                   (*Emulator).ssoDeletePermissionSet,
	"ListPermissionSets":                                    (*Emulator).ssoListPermissionSets,
	"AttachManagedPolicyToPermissionSet":                    (*Emulator).ssoAttachManaged,
	"DetachManagedPolicyFromPermissionSet":                  (*Emulator).ssoDetachManaged,
	"ListManagedPoliciesInPermissionSet":                    (*Emulator).ssoListManaged,
	"AttachCustomerManagedPolicyReferenceToPermissionSet":   (*Emulator).ssoAttachCustomer,
	"DetachCustomerManagedPolicyReferenceFromPermissionSet": (*Emulator).ssoDetachCustomer,
	"ListCustomerManagedPolicyReferencesInPermissionSet":    (*Emulator).ssoListCustomer,
	"PutInlinePolicyToPermissionSet":                        (*Emulator).ssoPutInline,
	"GetInlinePolicyForPermissionSet":                       (*Emulator).ssoGetInline,
	"DeleteInlinePolicyFromPermissionSet":                   (*Emulator).ssoDeleteInline,
	"TagResource":                                           (*Emulator).ssoTagResource,
	"UntagResource":                                         (*Emulator).ssoUntagResource,
	"ListTagsForResource":                                   (*Emulator).ssoListTags,
	"ProvisionPermissionSet":                                (*Emulator).ssoProvision,
	"DescribePermissionSetProvisioningStatus":               (*Emulator).ssoDescribeProvisioning,
	"ListAccountsForProvisionedPermissionSet":               (*Emulator).ssoListAccountsForPermissionSet,
	"ListPermissionSetsProvisionedToAccount":                (*Emulator).ssoListPermissionSetsForAccount,
	"CreateAccountAssignment":                               (*Emulator).ssoCreateAssignment,
	"DeleteAccountAssignment":                               (*Emulator).ssoDeleteAssignment,
	"DescribeAccountAssignmentCreationStatus":               (*Emulator).ssoDescribeCreation,
	"DescribeAccountAssignmentDeletionStatus":               (*Emulator).ssoDescribeDeletion,
	"ListAccountAssignmentCreationStatus":                   ssoListOps(asyncCreate, "AccountAssignmentsCreationStatus"),
	"ListAccountAssignmentDeletionStatus":                   ssoListOps(asyncDelete, "AccountAssignmentsDeletionStatus"),
	"ListAccountAssignments":                                (*Emulator).ssoListAssignments,
	"ListAccountAssignmentsForPrincipal":                    (*Emulator).ssoListAssignmentsForPrincipal,
}

func ssoInvalid(detail string) error { return validationException("%s", detail) }

func ssoNotFound(detail string) error {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: "ResourceNotFoundException"}
}

func ssoConflict(detail string) error {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: "ConflictException"}
}

func ssoQuota(detail string) error {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: "ServiceQuotaExceededException"}
}

// checkInstance checks the InstanceArn every sso-admin request but ListInstances carries.
func (a *accessState) checkInstance(arn *string) error {
	if arn == nil || *arn == "" {
		return ssoInvalid("InstanceArn is required")
	}
	if *arn != a.instanceARN {
		return ssoNotFound(fmt.Sprintf("Instance %s does not exist", *arn))
	}
	return nil
}

// permissionSet returns the permission set a request names.
func (a *accessState) permissionSet(arn *string) (*permSet, error) {
	if arn == nil || *arn == "" {
		return nil, ssoInvalid("PermissionSetArn is required")
	}
	ps := a.permSets[*arn]
	if ps == nil {
		return nil, ssoNotFound(fmt.Sprintf("Could not find PermissionSet with PermissionSetArn %s", *arn))
	}
	return ps, nil
}

// psRequest is the part every permission set request shares.
type psRequest struct {
	InstanceArn      *string `json:"InstanceArn"`
	PermissionSetArn *string `json:"PermissionSetArn"`
}

// target checks the instance and returns the named permission set.
func (a *accessState) target(r psRequest) (*permSet, error) {
	if err := a.checkInstance(r.InstanceArn); err != nil {
		return nil, err
	}
	return a.permissionSet(r.PermissionSetArn)
}

// psTargeted is a request that names one permission set: psRequest, tagRequest and the request
// types that embed either.
type psTargeted interface {
	lookup(a *accessState) (*permSet, error)
}

func (r psRequest) lookup(a *accessState) (*permSet, error) { return a.target(r) }

// decodePS decodes body strictly into req (a pointer) and returns the permission set it names.
func (a *accessState) decodePS(body []byte, req psTargeted) (*permSet, error) {
	if err := decodeAccess(body, req); err != nil {
		return nil, err
	}
	return req.lookup(a)
}

// updatePS answers a call that changes a permission set: change edits a copy of ps, which is then
// saved (see savePS).
func (a *accessState) updatePS(ctx context.Context, e *Emulator, ps *permSet, reachesAccounts bool, change func(next *permSet)) (any, error) {
	next := *ps
	change(&next)
	return map[string]any{}, a.savePS(ctx, e, ps, next, reachesAccounts)
}

// checkAccountID checks an account id field of a request.
func checkAccountID(field, account string) error {
	if !accountIDPattern.MatchString(account) {
		return ssoInvalid(fmt.Sprintf("%s %q is not a 12-digit account id", field, account))
	}
	return nil
}

// checkPrincipalID checks a PrincipalId field of a request.
func checkPrincipalID(pid string) error {
	if !principalIDPattern.MatchString(pid) {
		return ssoInvalid(fmt.Sprintf("PrincipalId %q is not an identity store id", pid))
	}
	return nil
}

func (e *Emulator) ssoListInstances(_ context.Context, body []byte) (any, error) {
	var req pageParams
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	return pageAnswer([]string{a.instanceARN}, req, ssoAdminPage, "instances", ssoInvalid, "Instances", func(string) any {
		return map[string]any{
			"InstanceArn": a.instanceARN, "IdentityStoreId": e.storeID, "Name": "scimbridge-emulator",
			"OwnerAccountId": a.org.Management, "Status": "ACTIVE", "CreatedDate": epoch(a.org.Accounts[0].Joined),
		}
	})
}

var (
	psNamePattern       = regexp.MustCompile(`^[\w+=,.@-]+$`)
	descriptionPattern  = regexp.MustCompile(`^[\x{0009}\x{000A}\x{000D}\x{0020}-\x{007E}\x{00A1}-\x{00FF}]*$`)
	sessionPattern      = regexp.MustCompile(`^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$`)
	accountIDPattern    = regexp.MustCompile(`^\d{12}$`)
	principalIDPattern  = regexp.MustCompile(`^[A-Za-z0-9-]{1,47}$`) // AWS: ([0-9a-f]{10}-|)UUID; the store id an emulator is given may not be hex
	managedPolicyARN    = regexp.MustCompile(`^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):iam::aws:policy((/[A-Za-z0-9\.,\+@=_-]+)*)/([\w+=,.@-]{1,128})$`)
	customerPathPattern = regexp.MustCompile(`^((/[A-Za-z0-9\.,\+@=_-]+)*)/$`)
)

// checkSessionDuration accepts ISO 8601 durations from PT1H to PT12H.
func checkSessionDuration(s string) error {
	m := sessionPattern.FindStringSubmatch(s)
	if m == nil || s == "PT" {
		return ssoInvalid(fmt.Sprintf("SessionDuration %q is not an ISO 8601 duration such as PT1H", s))
	}
	secs := 0
	for i, mult := range []int{3600, 60, 1} {
		if m[i+1] != "" {
			var v int
			fmt.Sscanf(m[i+1], "%d", &v)
			secs += v * mult
		}
	}
	if secs < 3600 || secs > 12*3600 {
		return ssoInvalid(fmt.Sprintf("SessionDuration %s must be from PT1H to PT12H", s))
	}
	return nil
}

// checkTags validates the tags of a request: at most 50, keys 1..128, values up to 256.
func checkTags(tags []tagIn, have map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range have {
		out[k] = v
	}
	for _, t := range tags {
		if t.Key == nil || len(*t.Key) < 1 || len(*t.Key) > 128 || strings.HasPrefix(*t.Key, "aws:") {
			return nil, ssoInvalid("tag keys must be 1 to 128 characters and must not start with aws:")
		}
		if t.Value == nil || len(*t.Value) > 256 {
			return nil, ssoInvalid(fmt.Sprintf("the value of tag %s must be at most 256 characters", *t.Key))
		}
		out[*t.Key] = *t.Value
	}
	if len(out) > 50 {
		return nil, ssoInvalid("a resource holds at most 50 tags")
	}
	return out, nil
}
