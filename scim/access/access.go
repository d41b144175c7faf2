// Package access is scimbridge's model of AWS access in IAM Identity Center: the organization's
// accounts, permission sets, and account assignments (a principal, a permission set, an account).
//
// It is pure, like package scim: the rules that turn a desired snapshot into assignments, the plan
// that compares them with what the instance holds, and its rendering live here or in pure
// subpackages; the AWS reads and writes (sso-admin and organizations through aws-sdk-go-v2) live
// behind the Reader and Applier interfaces in a subpackage, so the plan never imports the SDK.
package access

import (
	"context"
	"time"
)

// Account is one AWS account of the organization.
type Account struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	// Status is ACTIVE or SUSPENDED (or PENDING_CLOSURE); only active accounts get assignments.
	Status string `json:"status,omitempty"`
	// ParentID is the id of the root or organizational unit that holds the account directly.
	ParentID string `json:"parentId"`
	// Path lists the ids of the root and every organizational unit above the account, from the
	// root down to ParentID; an OU rule selects an account when the OU's id is on its path.
	Path []string          `json:"path"`
	Tags map[string]string `json:"tags,omitempty"`
}

// OrganizationalUnit is an OU (or the root, with an empty ParentID).
type OrganizationalUnit struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	ParentID string `json:"parentId,omitempty"`
}

// Organization is what the organizations API told about the accounts.
type Organization struct {
	ManagementAccountID string               `json:"managementAccountId"`
	Accounts            []Account            `json:"accounts"`
	Units               []OrganizationalUnit `json:"units"`
}

// CustomerPolicy references a customer managed IAM policy by name and path (the policy must exist
// under that name in every account the permission set is provisioned to).
type CustomerPolicy struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"` // "/" when empty
}

// PermissionSet is a permission set as defined in configuration or read from the instance.
// Slices are kept sorted so that two equal definitions compare equal.
type PermissionSet struct {
	// ARN is empty for a desired permission set that does not exist yet.
	ARN             string `json:"arn,omitempty"`
	Name            string `json:"name"`
	Description     string `json:"description,omitempty"`
	SessionDuration string `json:"sessionDuration,omitempty"` // ISO 8601, e.g. PT1H
	RelayState      string `json:"relayState,omitempty"`
	// ManagedPolicies are AWS managed policy ARNs.
	ManagedPolicies         []string          `json:"managedPolicies,omitempty"`
	CustomerManagedPolicies []CustomerPolicy  `json:"customerManagedPolicies,omitempty"`
	InlinePolicy            string            `json:"inlinePolicy,omitempty"` // JSON, compacted
	Tags                    map[string]string `json:"tags,omitempty"`
}

// PrincipalType says whether an assignment is to a group or a user.
type PrincipalType string

const (
	PrincipalGroup PrincipalType = "GROUP"
	PrincipalUser  PrincipalType = "USER"
)

// Assignment grants a principal (by its identity store id) a permission set in one account.
type Assignment struct {
	AccountID        string        `json:"accountId"`
	PermissionSetARN string        `json:"permissionSetArn"`
	PrincipalType    PrincipalType `json:"principalType"`
	PrincipalID      string        `json:"principalId"`
}

// Principal is an identity store user or group whose assignments are read.
type Principal struct {
	Type PrincipalType `json:"type"`
	ID   string        `json:"id"`
}

// Instance names the Identity Center instance: its ARN (for sso-admin) and its identity store.
type Instance struct {
	ARN             string `json:"arn"`
	IdentityStoreID string `json:"identityStoreId"`
}

// Reader reads the organization and the instance's access. Implementations page through every
// list and return an error, never a partial answer, when any call failed.
type Reader interface {
	// Instance returns the Identity Center instance (sso-admin ListInstances; when there are
	// several, the one whose identity store id was configured).
	Instance(ctx context.Context) (Instance, error)
	// Organization lists the root, every OU (recursively), every account with its parent, path
	// and tags.
	Organization(ctx context.Context) (*Organization, error)
	// PermissionSets lists and describes every permission set of the instance with its managed,
	// customer managed and inline policies and tags.
	PermissionSets(ctx context.Context, inst Instance) ([]PermissionSet, error)
	// Assignments returns the current assignments of the given principals (sso-admin
	// ListAccountAssignmentsForPrincipal), and the accounts each permission set is provisioned to.
	Assignments(ctx context.Context, inst Instance, principals []Principal) ([]Assignment, error)
}

// OpKind is what an assignment operation does.
type OpKind string

const (
	OpCreate OpKind = "create"
	OpDelete OpKind = "delete"
)

// AssignmentOp is one assignment to create or delete.
type AssignmentOp struct {
	Kind       OpKind     `json:"kind"`
	Assignment Assignment `json:"assignment"`
}

// OpResult is the outcome of one operation: Err is nil when its request status ended SUCCEEDED,
// and names the FAILED reason otherwise.
type OpResult struct {
	Op  AssignmentOp
	Err error
	// Requests counts the API calls this operation took (its start and its status polls).
	Requests int
	Took     time.Duration
}

// Applier writes access. Every method returns when the asynchronous operation it started has
// finished (SUCCEEDED or FAILED), or when ctx ends.
type Applier interface {
	// CreatePermissionSet creates the permission set with its policies and tags, returning its ARN.
	CreatePermissionSet(ctx context.Context, inst Instance, ps PermissionSet) (string, error)
	// UpdatePermissionSet makes the permission set at want.ARN equal to want (attributes,
	// policies, tags), given what it holds now.
	UpdatePermissionSet(ctx context.Context, inst Instance, have, want PermissionSet) error
	// DeletePermissionSet deletes a permission set that has no assignments left.
	DeletePermissionSet(ctx context.Context, inst Instance, arn string) error
	// ProvisionPermissionSet provisions the permission set to every account that has it
	// (ALL_PROVISIONED_ACCOUNTS) and waits for it.
	ProvisionPermissionSet(ctx context.Context, inst Instance, arn string) error
	// ApplyAssignments runs the operations with at most the configured number outstanding at
	// once, polling their status, and calls done once per operation, in completion order, from
	// one goroutine at a time. It returns early only when ctx ends.
	ApplyAssignments(ctx context.Context, inst Instance, ops []AssignmentOp, done func(OpResult)) error
}
