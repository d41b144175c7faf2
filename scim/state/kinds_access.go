package state

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scimbridge/scimbridge/scim/access"
)

// The kinds of the access scimbridge owns, kept in the objects table beside users and groups:
//
//   - KindPermissionSet: ExternalID is the permission set's name (unique in an instance),
//     TargetID its ARN, Data the access.PermissionSet scimbridge last wrote (with
//     provisionPending while a provisioning is owed).
//   - KindAssignment: ExternalID is the access.Key as compact JSON (principal type and
//     externalId, permission set name, account id), TargetID the principal's identity store id,
//     Data the access.OwnedAssignment.
//
// Both go through the generic object calls (PutObjects, Objects, DeleteObjects), so a store that
// carries every Kind carries these.
const (
	KindPermissionSet Kind = "permission_set"
	KindAssignment    Kind = "assignment"
)

// AccessStore reads and records the access scimbridge owns in any Store (SQLite or PostgreSQL),
// through the generic object calls.
type AccessStore struct{ Store }

// OwnedAccess returns the permission sets and assignments scimbridge created.
func (s AccessStore) OwnedAccess(ctx context.Context) (access.Owned, error) {
	out := access.Owned{PermissionSets: map[string]access.OwnedPermissionSet{}, Assignments: map[access.Key]access.OwnedAssignment{}}
	sets, err := s.Objects(ctx, KindPermissionSet)
	if err != nil {
		return out, err
	}
	for _, o := range sets {
		var ps permissionSetRecord
		if err := json.Unmarshal(o.Data, &ps); err != nil {
			return out, fmt.Errorf("state: decode permission set %q: %w", o.ExternalID, err)
		}
		out.PermissionSets[o.ExternalID] = access.OwnedPermissionSet{ARN: o.TargetID, Written: ps.PermissionSet, ProvisionPending: ps.ProvisionPending}
	}
	as, err := s.Objects(ctx, KindAssignment)
	if err != nil {
		return out, err
	}
	for _, o := range as {
		var a access.OwnedAssignment
		if err := json.Unmarshal(o.Data, &a); err != nil {
			return out, fmt.Errorf("state: decode assignment %s: %w", o.ExternalID, err)
		}
		out.Assignments[a.Key] = a
	}
	return out, nil
}

// permissionSetRecord is the Data of a KindPermissionSet object: the permission set's fields,
// and provisionPending beside them while a provisioning is owed (records written before it
// existed read as none owed).
type permissionSetRecord struct {
	access.PermissionSet
	ProvisionPending bool `json:"provisionPending,omitempty"`
}

// RecordPermissionSet records a permission set as created (or last written) by scimbridge.
func (s AccessStore) RecordPermissionSet(ctx context.Context, o access.OwnedPermissionSet, now time.Time) error {
	data, err := json.Marshal(permissionSetRecord{PermissionSet: o.Written, ProvisionPending: o.ProvisionPending})
	if err != nil {
		return fmt.Errorf("state: encode permission set %q: %w", o.Written.Name, err)
	}
	return s.PutObjects(ctx, []Object{{Kind: KindPermissionSet, ExternalID: o.Written.Name, TargetID: o.ARN, Data: data, UpdatedAt: now}})
}

// ForgetPermissionSets forgets permission sets by name.
func (s AccessStore) ForgetPermissionSets(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	return s.DeleteObjects(ctx, KindPermissionSet, names)
}

// RecordAssignments records assignments as created by scimbridge, in one transaction.
func (s AccessStore) RecordAssignments(ctx context.Context, as []access.OwnedAssignment, now time.Time) error {
	if len(as) == 0 {
		return nil
	}
	objs := make([]Object, 0, len(as))
	for _, a := range as {
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("state: encode assignment %s: %w", a.Key, err)
		}
		id, err := assignmentID(a.Key)
		if err != nil {
			return err
		}
		objs = append(objs, Object{Kind: KindAssignment, ExternalID: id, TargetID: a.PrincipalID, Data: data, UpdatedAt: now})
	}
	return s.PutObjects(ctx, objs)
}

// ForgetAssignments forgets assignments by key.
func (s AccessStore) ForgetAssignments(ctx context.Context, keys []access.Key) error {
	if len(keys) == 0 {
		return nil
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		id, err := assignmentID(k)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	return s.DeleteObjects(ctx, KindAssignment, ids)
}

func assignmentID(k access.Key) (string, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("state: encode assignment key %s: %w", k, err)
	}
	return string(b), nil
}
