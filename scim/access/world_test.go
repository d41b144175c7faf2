package access

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
)

// testOrg is a management account in the root, a Workloads OU with a production account and a
// nested Sandbox OU with a sandbox account, and a suspended account.
func testOrg() *Organization {
	return &Organization{
		ManagementAccountID: "111111111111",
		Units: []OrganizationalUnit{
			{ID: "r-root", Name: "Root"},
			{ID: "ou-work", Name: "Workloads", ParentID: "r-root"},
			{ID: "ou-sand", Name: "Sandbox", ParentID: "ou-work"},
		},
		Accounts: []Account{
			{ID: "111111111111", Name: "Management", Status: "ACTIVE", ParentID: "r-root", Path: []string{"r-root"}},
			{ID: "222222222222", Name: "Production", Status: "ACTIVE", ParentID: "ou-work", Path: []string{"r-root", "ou-work"}, Tags: map[string]string{"env": "prod"}},
			{ID: "333333333333", Name: "Sandbox", Status: "ACTIVE", ParentID: "ou-sand", Path: []string{"r-root", "ou-work", "ou-sand"}, Tags: map[string]string{"env": "dev"}},
			{ID: "444444444444", Name: "Closed", Status: "SUSPENDED", ParentID: "ou-work", Path: []string{"r-root", "ou-work"}},
		},
	}
}

func testSnapshot() scim.Snapshot {
	return scim.Snapshot{
		Users: []scim.User{
			{ExternalID: "u-1", UserName: "alice@example.com"},
			{ExternalID: "u-2", UserName: "bob@example.com"},
		},
		Groups: []scim.Group{
			{ExternalID: "g-admins", DisplayName: "Administrators", Members: []string{"u-1"}},
			{ExternalID: "g-fin", DisplayName: "Finance", Members: []string{"u-2"}},
			{ExternalID: "g-ro", DisplayName: "AWS-222222222222-ReadOnly", Members: []string{"u-1", "u-2"}},
		},
	}
}

func pattern(p string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + p + `)$`) }

// instance is an Identity Center instance in memory, with the state store's ownership: an
// Applier and a Recorder for the tests of the plan (the emulator tests use the real ones).
type instance struct {
	sets        map[string]PermissionSet // by ARN
	assignments map[Assignment]bool
	owned       Owned
	next        int
	// fail makes the create of these assignments end FAILED.
	fail        map[Assignment]bool
	provisioned []string
}

func newInstance() *instance {
	return &instance{sets: map[string]PermissionSet{}, assignments: map[Assignment]bool{},
		owned: Owned{PermissionSets: map[string]OwnedPermissionSet{}, Assignments: map[Key]OwnedAssignment{}}, fail: map[Assignment]bool{}}
}

func (w *instance) current() ([]PermissionSet, []Assignment) {
	var sets []PermissionSet
	for _, arn := range slices.Sorted(maps.Keys(w.sets)) {
		sets = append(sets, w.sets[arn])
	}
	var as []Assignment
	for a := range w.assignments {
		as = append(as, a)
	}
	return sets, as
}

// principals gives every principal of the snapshot an id derived from its externalId.
func principals(snap scim.Snapshot) []PrincipalRef {
	var out []PrincipalRef
	for _, u := range snap.Users {
		out = append(out, PrincipalRef{Type: PrincipalUser, ExternalID: u.ExternalID, Name: u.UserName, ID: "id-" + u.ExternalID})
	}
	for _, g := range snap.Groups {
		out = append(out, PrincipalRef{Type: PrincipalGroup, ExternalID: g.ExternalID, Name: g.DisplayName, ID: "id-" + g.ExternalID})
	}
	return out
}

func (w *instance) plan(rules []Rule, defined []PermissionSet, snap scim.Snapshot, org *Organization, policy plan.Policy) *Plan {
	sets, as := w.current()
	return Compute(Input{Rules: rules, Desired: snap, Org: org, Defined: defined, Current: sets, Assignments: as,
		Principals: principals(snap), Owned: w.cloneOwned(), Policy: policy})
}

func (w *instance) cloneOwned() Owned {
	return Owned{PermissionSets: maps.Clone(w.owned.PermissionSets), Assignments: maps.Clone(w.owned.Assignments)}
}

func (w *instance) apply(t *testing.T, p *Plan) Result {
	t.Helper()
	res, err := Apply(context.Background(), w, Instance{ARN: "arn:aws:sso:::instance/ssoins-test"}, p, w, func() time.Time { return time.Unix(0, 0) })
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func (w *instance) CreatePermissionSet(_ context.Context, _ Instance, ps PermissionSet) (string, error) {
	for _, have := range w.sets {
		if have.Name == ps.Name {
			return "", fmt.Errorf("permission set %q exists", ps.Name)
		}
	}
	w.next++
	ps.ARN = fmt.Sprintf("arn:aws:sso:::permissionSet/ssoins-test/ps-%04d", w.next)
	w.sets[ps.ARN] = Normalize(ps)
	return ps.ARN, nil
}

func (w *instance) UpdatePermissionSet(_ context.Context, _ Instance, _, want PermissionSet) error {
	if _, ok := w.sets[want.ARN]; !ok {
		return errors.New("no such permission set")
	}
	w.sets[want.ARN] = Normalize(want)
	return nil
}

func (w *instance) DeletePermissionSet(_ context.Context, _ Instance, arn string) error {
	for a := range w.assignments {
		if a.PermissionSetARN == arn {
			return errors.New("permission set is still assigned")
		}
	}
	delete(w.sets, arn)
	return nil
}

func (w *instance) ProvisionPermissionSet(_ context.Context, _ Instance, arn string) error {
	w.provisioned = append(w.provisioned, w.sets[arn].Name)
	return nil
}

func (w *instance) ApplyAssignments(_ context.Context, _ Instance, ops []AssignmentOp, done func(OpResult)) error {
	for _, op := range ops {
		r := OpResult{Op: op, Requests: 2}
		switch {
		case op.Kind == OpCreate && w.fail[op.Assignment]:
			r.Err = errors.New("FAILED: the permission set's policy is not valid in this account")
		case op.Kind == OpCreate:
			w.assignments[op.Assignment] = true
		default:
			delete(w.assignments, op.Assignment)
		}
		done(r)
	}
	return nil
}

func (w *instance) RecordPermissionSet(_ context.Context, o OwnedPermissionSet, _ time.Time) error {
	w.owned.PermissionSets[o.Written.Name] = o
	return nil
}

func (w *instance) ForgetPermissionSets(_ context.Context, names []string) error {
	for _, n := range names {
		delete(w.owned.PermissionSets, n)
	}
	return nil
}

func (w *instance) RecordAssignments(_ context.Context, as []OwnedAssignment, _ time.Time) error {
	for _, a := range as {
		w.owned.Assignments[a.Key] = a
	}
	return nil
}

func (w *instance) ForgetAssignments(_ context.Context, keys []Key) error {
	for _, k := range keys {
		delete(w.owned.Assignments, k)
	}
	return nil
}
