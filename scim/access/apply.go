package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Recorder records in the state store what scimbridge owns; state.Store implements it.
type Recorder interface {
	RecordPermissionSet(ctx context.Context, o OwnedPermissionSet, now time.Time) error
	ForgetPermissionSets(ctx context.Context, names []string) error
	RecordAssignments(ctx context.Context, as []OwnedAssignment, now time.Time) error
	ForgetAssignments(ctx context.Context, keys []Key) error
}

// Result is what an apply did.
type Result struct {
	PermissionSetsCreated     int `json:"permissionSetsCreated"`
	PermissionSetsUpdated     int `json:"permissionSetsUpdated"`
	PermissionSetsProvisioned int `json:"permissionSetsProvisioned"`
	PermissionSetsDeleted     int `json:"permissionSetsDeleted"`
	AssignmentsCreated        int `json:"assignmentsCreated"`
	AssignmentsDeleted        int `json:"assignmentsDeleted"`
	// Failed counts the records that failed; Errors has one line for each, with the reason.
	Failed int      `json:"failed"`
	Errors []string `json:"errors,omitempty"`
	// Requests counts the assignment operations' calls (starts and status polls).
	Requests int `json:"assignmentRequests"`
}

// Apply carries out the plan through the applier, in the order that keeps every request valid:
// permission sets created and updated (and provisioned again), assignments created and deleted
// (at most the applier's limit outstanding), then permission sets deleted. Ownership is recorded
// as it goes: an assignment is recorded before its create starts, so that an answer lost in a
// crash leaves it owned (the next plan finds it, or forgets it), and forgotten again when its
// create fails. One failed record is reported and the rest goes on; the error is only for a
// state store that cannot record, or ctx ending.
func Apply(ctx context.Context, a Applier, inst Instance, p *Plan, rec Recorder, now func() time.Time) (Result, error) {
	var res Result
	fail := func(format string, args ...any) {
		res.Failed++
		res.Errors = append(res.Errors, fmt.Sprintf(format, args...))
	}
	if err := rec.ForgetAssignments(ctx, p.ForgetAssignments); err != nil {
		return res, err
	}
	if err := rec.ForgetPermissionSets(ctx, p.ForgetPermissionSets); err != nil {
		return res, err
	}
	for _, c := range p.ClaimPermissionSets {
		if err := rec.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: c.ARN, Written: PermissionSet{Name: c.Name, ARN: c.ARN}}, now()); err != nil {
			return res, err
		}
	}
	arns := map[string]string{}
	failedSets := map[string]bool{}
	for _, ps := range p.CreatePermissionSets {
		// Recorded as pending first: a crash before the answer leaves it ours (see PendingARN).
		if err := rec.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: PendingARN, Written: ps}, now()); err != nil {
			return res, err
		}
		arn, err := a.CreatePermissionSet(ctx, inst, ps)
		if err != nil {
			failedSets[ps.Name] = true
			// The pending record stays: an error does not prove that nothing was made (a lost
			// answer); the next plan claims the set if it exists and forgets the record if not.
			fail("permission set %q: create: %v", ps.Name, err)
			continue
		}
		arns[ps.Name] = arn
		ps.ARN = arn
		if err := rec.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: arn, Written: ps}, now()); err != nil {
			return res, err
		}
		res.PermissionSetsCreated++
	}
	for _, u := range p.UpdatePermissionSets {
		// The provisioning the update needs is recorded as owed before the update is sent: a
		// run that dies before the provisioning SUCCEEDED leaves it to the next run (see
		// OwnedPermissionSet.ProvisionPending).
		if err := rec.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: u.ARN, Written: u.Have, ProvisionPending: true}, now()); err != nil {
			return res, err
		}
		if err := a.UpdatePermissionSet(ctx, inst, u.Have, u.Want); err != nil {
			failedSets[u.Name] = true
			fail("permission set %q: update: %v", u.Name, err)
			continue
		}
		if err := rec.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: u.ARN, Written: u.Want, ProvisionPending: true}, now()); err != nil {
			return res, err
		}
		res.PermissionSetsUpdated++
	}
	for _, ps := range p.ProvisionPermissionSets {
		if failedSets[ps.Name] {
			continue
		}
		if err := a.ProvisionPermissionSet(ctx, inst, ps.ARN); err != nil {
			// The owed provisioning stays recorded: the next run provisions it again.
			fail("permission set %q: provision: %v", ps.Name, err)
			continue
		}
		if err := rec.RecordPermissionSet(ctx, OwnedPermissionSet{ARN: ps.ARN, Written: ps.Have}, now()); err != nil {
			return res, err
		}
		res.PermissionSetsProvisioned++
	}

	var ops []AssignmentOp
	byOp := map[AssignmentOp]Change{}
	var intents []OwnedAssignment
	for _, c := range p.CreateAssignments {
		if c.PermissionSetARN == "" {
			c.PermissionSetARN = arns[c.PermissionSet]
		}
		switch {
		case failedSets[c.PermissionSet] || c.PermissionSetARN == "":
			fail("assignment %s: permission set %q was not created", describeChange(c), c.PermissionSet)
			continue
		case c.Principal.ID == "":
			fail("assignment %s: the %s has no identity store id (not created)", describeChange(c), strings.ToLower(string(c.Principal.Type)))
			continue
		}
		op := AssignmentOp{Kind: OpCreate, Assignment: c.Assignment()}
		byOp[op] = c
		ops = append(ops, op)
		intents = append(intents, owned(c))
	}
	if err := rec.RecordAssignments(ctx, intents, now()); err != nil {
		return res, err
	}
	for _, c := range p.DeleteAssignments {
		op := AssignmentOp{Kind: OpDelete, Assignment: c.Assignment()}
		byOp[op] = c
		ops = append(ops, op)
	}
	var recErr error
	if len(ops) > 0 {
		err := a.ApplyAssignments(ctx, inst, ops, func(r OpResult) {
			res.Requests += r.Requests
			c := byOp[r.Op]
			switch {
			case r.Err != nil && r.Op.Kind == OpCreate:
				fail("assignment %s: create: %v", describeChange(c), r.Err)
				recErr = errors.Join(recErr, rec.ForgetAssignments(context.WithoutCancel(ctx), []Key{c.Key()}))
			case r.Err != nil:
				fail("assignment %s: delete: %v", describeChange(c), r.Err)
			case r.Op.Kind == OpCreate:
				res.AssignmentsCreated++
			default:
				res.AssignmentsDeleted++
				recErr = errors.Join(recErr, rec.ForgetAssignments(context.WithoutCancel(ctx), []Key{c.Key()}))
			}
		})
		if err != nil {
			return res, errors.Join(err, recErr)
		}
	}
	if recErr != nil {
		return res, recErr
	}
	for _, ps := range p.DeletePermissionSets {
		if err := a.DeletePermissionSet(ctx, inst, ps.ARN); err != nil {
			fail("permission set %q: delete: %v", ps.Name, err)
			continue
		}
		if err := rec.ForgetPermissionSets(ctx, []string{ps.Name}); err != nil {
			return res, err
		}
		res.PermissionSetsDeleted++
	}
	return res, ctx.Err()
}

func owned(c Change) OwnedAssignment {
	return OwnedAssignment{Key: c.Key(), PrincipalID: c.Principal.ID, PrincipalName: c.Principal.Name, PermissionSetARN: c.PermissionSetARN, AccountName: c.AccountName}
}

func describeChange(c Change) string {
	return fmt.Sprintf("%s %s on %s", principal(c.Principal), q(c.PermissionSet), account(c.AccountID, c.AccountName))
}
