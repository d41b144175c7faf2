package state

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/access"
)

func TestOwnedAccessRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := AccessStore{Store: db}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ps := access.OwnedPermissionSet{ARN: "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
		Written: access.PermissionSet{ARN: "arn:aws:sso:::permissionSet/ssoins-1/ps-1", Name: "Billing", SessionDuration: "PT1H", ManagedPolicies: []string{"arn:aws:iam::aws:policy/job-function/Billing"}}}
	must(t, s.RecordPermissionSet(ctx, ps, now))
	// A provisioning owed (an update sent, its provisioning not SUCCEEDED yet) is kept with it.
	owed := access.OwnedPermissionSet{ARN: "arn:aws:sso:::permissionSet/ssoins-1/ps-2", ProvisionPending: true,
		Written: access.PermissionSet{ARN: "arn:aws:sso:::permissionSet/ssoins-1/ps-2", Name: "DevOps", SessionDuration: "PT4H"}}
	must(t, s.RecordPermissionSet(ctx, owed, now))
	// Keys with characters that would break a joined string: the key is stored as JSON.
	a1 := access.OwnedAssignment{Key: access.Key{Type: access.PrincipalGroup, ExternalID: `g/1:"x"`, PermissionSet: "Billing", AccountID: "111111111111"},
		PrincipalID: "id-1", PrincipalName: "Finance", PermissionSetARN: ps.ARN, AccountName: "Management"}
	a2 := a1
	a2.Key.AccountID, a2.AccountName = "222222222222", "Production"
	must(t, s.RecordAssignments(ctx, []access.OwnedAssignment{a1, a2}, now))

	got, err := s.OwnedAccess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := access.Owned{PermissionSets: map[string]access.OwnedPermissionSet{"Billing": ps, "DevOps": owed}, Assignments: map[access.Key]access.OwnedAssignment{a1.Key: a1, a2.Key: a2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owned access (-want +got):\n%s", diff)
	}
	must(t, s.ForgetAssignments(ctx, []access.Key{a1.Key}))
	must(t, s.ForgetPermissionSets(ctx, []string{"Billing", "DevOps"}))
	if got, err = s.OwnedAccess(ctx); err != nil {
		t.Fatal(err)
	}
	want = access.Owned{PermissionSets: map[string]access.OwnedPermissionSet{}, Assignments: map[access.Key]access.OwnedAssignment{a2.Key: a2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after forgetting (-want +got):\n%s", diff)
	}
	// Access kinds do not count as users or groups.
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != 0 || st.Groups != 0 {
		t.Errorf("stats: got %+v, want no users or groups", st)
	}
	// Kinds are open (any name of letters, digits, _ - .), so the store carries new ones
	// generically; a malformed one is refused.
	if _, err := s.Objects(ctx, Kind("no such kind!")); err == nil {
		t.Error("a malformed kind is accepted")
	}
}

// TestMigrateFromVersion2 opens a version-2 file holding an owned group with members: the
// rebuilt tables keep the objects and the memberships, and accept the access kinds.
func TestMigrateFromVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], migrations[1], fmt.Sprintf("PRAGMA application_id = %d", applicationID), "PRAGMA user_version = 2",
		`INSERT INTO objects VALUES ('group', 'g-1', 'tid-1', '{"externalId":"g-1","displayName":"Admins"}', 'h', '2026-01-01T00:00:00Z')`,
		`INSERT INTO objects VALUES ('user', 'u-1', 'uid-1', '{"externalId":"u-1","userName":"a"}', 'h', '2026-01-01T00:00:00Z')`,
		`INSERT INTO members (group_external_id, user_external_id) VALUES ('g-1', 'u-1')`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(t, db.Close())
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, s.IntegrityCheck(ctx))
	members, err := s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"g-1": {"u-1"}}, members); diff != "" {
		t.Errorf("members after migration (-want +got):\n%s", diff)
	}
	groups, err := s.Objects(ctx, KindGroup)
	if err != nil || len(groups) != 1 || groups[0].TargetID != "tid-1" {
		t.Errorf("groups after migration: got %+v, %v; want g-1 with target id tid-1", groups, err)
	}
	must(t, AccessStore{Store: s}.RecordPermissionSet(ctx, access.OwnedPermissionSet{ARN: "arn", Written: access.PermissionSet{Name: "X"}}, time.Now()))
	// The foreign key still holds: deleting the group drops its memberships.
	must(t, s.DeleteObjects(ctx, KindGroup, []string{"g-1"}))
	if members, err = s.Members(ctx); err != nil || len(members) != 0 {
		t.Errorf("members after deleting the group: got %v, %v; want none", members, err)
	}
}
