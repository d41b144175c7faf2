package plan

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim"
)

func TestInitialSyncCreatesEverything(t *testing.T) {
	w := newWorld()
	desired := scim.Snapshot{
		Users:  []scim.User{user("2", "bob"), user("1", "alice")},
		Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Admins", Members: []string{"1", "2"}}},
	}
	p := compute(w, desired, Options{})
	if got, want := len(p.CreateUsers), 2; got != want {
		t.Fatalf("CreateUsers = %d, want %d", got, want)
	}
	if p.CreateUsers[0].ExternalID != "1" {
		t.Errorf("creates not sorted: %v", p.CreateUsers)
	}
	if diff := cmp.Diff([]string{"1", "2"}, p.CreateGroups[0].Members); diff != "" {
		t.Errorf("group members (-want +got):\n%s", diff)
	}
	if got := p.LowerBound(100); got != 3 {
		t.Errorf("LowerBound = %d, want 3", got)
	}
	w.apply(t, p)
	if p2 := compute(w, desired, Options{}); !p2.Empty() {
		t.Errorf("second plan not empty: %+v", p2.Changes)
	}
}

func TestRenameAndEmailChangeKeepObjectAndMemberships(t *testing.T) {
	w := newWorld()
	a := w.addUser(user("1", "alice"), true)
	b := w.addUser(user("2", "bob"), true)
	w.addGroup("g1", "Finance", true, a, b)

	alice := user("1", "alice.smith")
	alice.Email = "alice.smith@example.com"
	desired := scim.Snapshot{
		Users:  []scim.User{alice, user("2", "bob")},
		Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Finance & Ops", Members: []string{"1", "2"}}},
	}
	p := compute(w, desired, Options{})
	if len(p.CreateUsers)+len(p.DeleteUsers)+len(p.CreateGroups)+len(p.DeleteGroups)+len(p.Members) != 0 {
		t.Fatalf("rename must not create, delete or touch memberships: %+v", p.Changes)
	}
	if len(p.UpdateUsers) != 1 || p.UpdateUsers[0].ID != a {
		t.Fatalf("UpdateUsers = %+v, want one update of %s", p.UpdateUsers, a)
	}
	var names []string
	for _, f := range p.UpdateUsers[0].Fields {
		names = append(names, f.Name)
	}
	if diff := cmp.Diff([]string{"userName", "displayName", "emails"}, names); diff != "" {
		t.Errorf("changed fields (-want +got):\n%s", diff)
	}
	if len(p.UpdateGroups) != 1 || p.UpdateGroups[0].From != "Finance" || p.UpdateGroups[0].To != "Finance & Ops" {
		t.Errorf("UpdateGroups = %+v, want one rename", p.UpdateGroups)
	}
	if got := p.LowerBound(100); got != 2 {
		t.Errorf("LowerBound = %d, want 2 (one user update, one group rename)", got)
	}
}

func TestUnownedObjectsAreNeverTouched(t *testing.T) {
	w := newWorld()
	manual := w.addUser(scim.User{UserName: "break-glass", DisplayName: "B", GivenName: "B", FamilyName: "G", Active: true}, false)
	w.addGroup("", "AWSControlTowerAdmins", false, manual)
	w.addUser(user("legacy", "carol"), false) // created by another tool, same kind of externalId
	desired := scim.Snapshot{Users: []scim.User{user("1", "alice")}}
	p := compute(w, desired, Options{})
	if len(p.DeleteUsers)+len(p.DeleteGroups)+len(p.UpdateUsers)+len(p.Members) != 0 {
		t.Fatalf("unowned objects touched: %+v", p.Changes)
	}
	if p.UnmanagedUsers != 2 || p.UnmanagedGroups != 1 {
		t.Errorf("unmanaged = %d users, %d groups; want 2, 1", p.UnmanagedUsers, p.UnmanagedGroups)
	}
}

func TestDeprovisioningAndPolicies(t *testing.T) {
	setup := func() (*world, string) {
		w := newWorld()
		a := w.addUser(user("1", "alice"), true)
		b := w.addUser(user("2", "bob"), true)
		w.addGroup("g1", "Team", true, a, b)
		w.addGroup("g2", "Old", true, b)
		return w, b
	}
	desired := scim.Snapshot{Users: []scim.User{user("1", "alice")}, Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Team", Members: []string{"1"}}}}

	w, b := setup()
	p := compute(w, desired, Options{})
	if len(p.DeleteUsers) != 1 || p.DeleteUsers[0].ID != b || len(p.DeleteGroups) != 1 {
		t.Fatalf("sync: %+v", p.Changes)
	}
	if len(p.Members) != 0 {
		t.Errorf("a deleted user leaves its groups with its deletion; got member changes %+v", p.Members)
	}

	w, b = setup()
	p = compute(w, desired, Options{Deprovision: DeprovisionDisable})
	if len(p.DisableUsers) != 1 || len(p.DeleteUsers) != 0 || len(p.Members) != 1 || p.Members[0].Remove[0].ID != b {
		t.Fatalf("disable: %+v", p.Changes)
	}
	w.apply(t, p)
	if p2 := compute(w, desired, Options{Deprovision: DeprovisionDisable}); !p2.Empty() {
		t.Errorf("disabled user is disabled again: %+v", p2.Changes)
	}

	w, _ = setup()
	p = compute(w, desired, Options{Policy: PolicyUpsertOnly})
	if len(p.DeleteUsers)+len(p.DisableUsers)+len(p.DeleteGroups) != 0 {
		t.Fatalf("upsert-only deprovisioned: %+v", p.Changes)
	}

	w, _ = setup()
	renamed := desired
	renamed.Users = []scim.User{user("1", "alice2")}
	p = compute(w, renamed, Options{Policy: PolicyCreateOnly})
	if p.Writes() != 0 {
		t.Fatalf("create-only changed existing objects: %+v", p.Changes)
	}
}

func TestReplacingALeaverWithTheSameUserName(t *testing.T) {
	w := newWorld()
	w.addUser(user("old", "jsmith"), true)
	desired := scim.Snapshot{Users: []scim.User{user("new", "jsmith")}}
	p := compute(w, desired, Options{})
	if len(p.DeleteUsers) != 1 || len(p.CreateUsers) != 1 || len(p.Problems) != 0 {
		t.Fatalf("want delete old + create new, got %+v problems %+v", p.Changes, p.Problems)
	}
	p = compute(w, desired, Options{Deprovision: DeprovisionDisable})
	if len(p.CreateUsers) != 0 || len(p.Problems) != 1 || !strings.Contains(p.Problems[0].Reason, "deprovisioned") {
		t.Fatalf("disable mode keeps the name: want a reported clash, got %+v problems %+v", p.Changes, p.Problems)
	}
}

func TestSkippedRecordsKeepTheirTargetObjects(t *testing.T) {
	w := newWorld()
	a := w.addUser(user("1", "alice"), true)
	bad := w.addUser(user("2", "bob"), true)
	w.addGroup("g1", "Team", true, a, bad)
	w.addGroup("g2", "Broken", true)
	desired := scim.Snapshot{
		Users:  []scim.User{user("1", "alice"), {ExternalID: "2", UserName: "bob"}}, // bob lost his names
		Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Team", Members: []string{"1", "2"}}, {ExternalID: "g2", DisplayName: ""}},
	}
	p := compute(w, desired, Options{})
	if p.Writes() != 0 {
		t.Fatalf("skipped records must leave the target alone: %+v", p.Changes)
	}
	if len(p.Problems) != 2 {
		t.Errorf("Problems = %+v, want bob and g2 reported", p.Problems)
	}
}

func TestManagerIsComparedBySourceID(t *testing.T) {
	w := newWorld()
	boss := user("1", "boss")
	emp := user("2", "emp")
	emp.Enterprise.Manager = "1"
	bossID := w.addUser(boss, true)
	e := emp
	e.Enterprise.Manager = bossID
	w.addUser(e, true)
	if p := compute(w, scim.Snapshot{Users: []scim.User{boss, emp}}, Options{}); !p.Empty() {
		t.Fatalf("manager by target id should equal manager by source id: %+v", p.UpdateUsers)
	}
}

func TestForgetOwnedObjectsDeletedInTheConsole(t *testing.T) {
	w := newWorld()
	w.owned.Users["u-gone"] = "1"
	w.owned.Groups["g-gone"] = "g1"
	desired := scim.Snapshot{Users: []scim.User{user("1", "alice")}, Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Team", Members: []string{"1"}}}}
	p := compute(w, desired, Options{})
	if len(p.Forget) != 2 || len(p.CreateUsers) != 1 || len(p.CreateGroups) != 1 {
		t.Fatalf("want forget + recreate, got %+v", p.Changes)
	}
}

func TestGuards(t *testing.T) {
	mk := func(owned, keep int) *Plan {
		w := newWorld()
		var desired scim.Snapshot
		for i := range owned {
			u := user(fmt.Sprint(i), fmt.Sprint("user", i))
			w.addUser(u, true)
			if i < keep {
				desired.Users = append(desired.Users, u)
			}
		}
		return compute(w, desired, Options{})
	}
	tests := []struct {
		name    string
		plan    *Plan
		guards  Guards
		blocked bool
	}{
		{"no deletes", mk(10, 10), DefaultGuards, false},
		{"one of ten", mk(10, 9), DefaultGuards, false},
		{"forty percent", mk(100, 60), DefaultGuards, true},
		{"forty percent allowed", mk(100, 60), Guards{MaxDeletes: 100, MaxDeletePercent: 20, AllowDeletes: 40}, false},
		{"allowance too small", mk(100, 60), Guards{MaxDeletes: 100, MaxDeletePercent: 20, AllowDeletes: 39}, true},
		{"empty source", mk(3, 0), Guards{MaxDeletes: -1, MaxDeletePercent: -1}, true},
		{"count limit", mk(300, 150), Guards{MaxDeletes: 100, MaxDeletePercent: -1}, true},
		{"limits off", mk(300, 150), Guards{MaxDeletes: -1, MaxDeletePercent: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guards.Check(tt.plan)
			var be *BlockedError
			if got := errors.As(err, &be); got != tt.blocked {
				t.Fatalf("blocked = %v (err %v), want %v", got, err, tt.blocked)
			}
		})
	}
}

func TestMembershipBatchesInLowerBound(t *testing.T) {
	w := newWorld()
	var desired scim.Snapshot
	var members []string
	for i := range 250 {
		u := user(fmt.Sprintf("%03d", i), fmt.Sprint("u", i))
		desired.Users = append(desired.Users, u)
		members = append(members, u.ExternalID)
	}
	desired.Groups = []scim.Group{{ExternalID: "big", DisplayName: "Big", Members: members}}
	p := compute(w, desired, Options{})
	// 250 users + 1 group POST with 100 members + 2 PATCHes for the other 150.
	if got, want := p.LowerBound(100), 250+1+2; got != want {
		t.Errorf("LowerBound = %d, want %d", got, want)
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	build := func() []byte {
		w := newWorld()
		for i := range 50 {
			w.addUser(user(fmt.Sprint("o", i), fmt.Sprint("old", i)), i%2 == 0)
		}
		var desired scim.Snapshot
		for i := range 50 {
			desired.Users = append(desired.Users, user(fmt.Sprint("n", i), fmt.Sprint("new", i)))
		}
		var buf bytes.Buffer
		p := compute(w, desired, Options{})
		if err := p.WriteJSON(&buf, 100); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteText(&buf, 100); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := build()
	for range 5 {
		if !bytes.Equal(first, build()) {
			t.Fatal("same inputs gave different output")
		}
	}
}

// TestPropertyPlanReachesDesiredState generates random desired and current states, applies the
// plan the way the reconciler does, and checks that the target then holds the desired state and
// that the next plan is empty.
func TestPropertyPlanReachesDesiredState(t *testing.T) {
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			w := newWorld()
			opts := Options{
				Deprovision: []Deprovision{DeprovisionDelete, DeprovisionDisable}[r.IntN(2)],
				Adopt:       []Adopt{AdoptNone, AdoptExternalID, AdoptName}[r.IntN(3)],
			}
			nUsers := r.IntN(30)
			var desired scim.Snapshot
			for i := range nUsers {
				u := user(fmt.Sprint("s", i), fmt.Sprint("name", r.IntN(40)))
				if r.IntN(4) == 0 {
					u.Active = false
				}
				if i > 0 && r.IntN(3) == 0 {
					u.Enterprise.Manager = fmt.Sprint("s", r.IntN(i))
				}
				if r.IntN(3) > 0 {
					desired.Users = append(desired.Users, u)
				}
				switch r.IntN(4) {
				case 0: // owned, possibly stale
					cur := u
					cur.Enterprise.Manager = ""
					switch r.IntN(3) {
					case 0:
						cur.UserName = fmt.Sprint("was", i)
						cur.Email = fmt.Sprint("was", i, "@example.com")
					case 1: // another record's name: renames form chains and swaps
						cur.UserName = fmt.Sprint("name", r.IntN(40))
						cur.Email = fmt.Sprint("x", i, "@example.com")
					}
					if !w.nameTaken(cur.UserName, "") {
						w.addUser(cur, true)
					}
				case 1: // created before a crash, answer lost
					if w.nameTaken(u.UserName, "") {
						break
					}
					u.Enterprise.Manager = "" // a target names managers by target id; none yet
					w.addUser(u, false)
					w.owned.PendingUsers[u.ExternalID] = r.IntN(2) == 0
				}
			}
			for i := range r.IntN(5) { // unowned users, sometimes clashing with desired names
				name := fmt.Sprint("name", r.IntN(60))
				if w.nameTaken(name, "") {
					continue
				}
				w.addUser(scim.User{UserName: name, DisplayName: "x", GivenName: "x", FamilyName: "x", Active: true, ExternalID: []string{"", fmt.Sprint("x", i)}[r.IntN(2)]}, false)
			}
			var userIDs []string
			for id := range w.users {
				userIDs = append(userIDs, id)
			}
			slices.Sort(userIDs)
			for i := range r.IntN(8) {
				g := scim.Group{ExternalID: fmt.Sprint("g", i), DisplayName: fmt.Sprint("group", r.IntN(12))}
				for _, u := range desired.Users {
					if r.IntN(3) == 0 {
						g.Members = append(g.Members, u.ExternalID)
					}
				}
				if r.IntN(4) > 0 {
					desired.Groups = append(desired.Groups, g)
				}
				if r.IntN(2) == 0 {
					var members []string
					for _, id := range userIDs {
						if r.IntN(3) == 0 {
							members = append(members, id)
						}
					}
					name := g.DisplayName
					switch r.IntN(3) {
					case 0:
						name = fmt.Sprint("oldgroup", i)
					case 1:
						name = fmt.Sprint("group", r.IntN(12))
					}
					if !w.groupNameTaken(name) {
						w.addGroup(g.ExternalID, name, true, members...)
					}
				}
			}
			if !w.groupNameTaken("AWSControlTowerAdmins") {
				w.addGroup("", "AWSControlTowerAdmins", false, userIDs...)
			}
			before := w.unowned()

			p := compute(w, desired, opts)
			if testing.Verbose() {
				t.Logf("opts %+v\nstate %+v\nowned %+v\n%s", opts, w.state(), w.owned, text(p))
			}
			w.apply(t, p)
			p2 := compute(w, desired, opts)
			if !p2.Empty() || len(p2.Claims) > 0 || len(p2.Forget) > 0 {
				t.Fatalf("second plan not empty:\n%s", text(p2))
			}
			w.checkUnownedKept(t, before, p)
			w.checkHolds(t, scim.Normalize(desired), p)
		})
	}
}

func TestSwapsGoThroughATemporaryName(t *testing.T) {
	w := newWorld()
	w.addUser(user("a", "bob"), true)
	w.addUser(user("b", "carol"), true)
	w.addUser(user("c", "alice"), true)
	w.addGroup("ga", "Blue", true)
	w.addGroup("gb", "Red", true)
	// a, b, c rotate their userNames; the two groups swap displayNames.
	desired := scim.Snapshot{Users: []scim.User{user("a", "alice"), user("b", "bob"), user("c", "carol")},
		Groups: []scim.Group{{ExternalID: "ga", DisplayName: "Red"}, {ExternalID: "gb", DisplayName: "Blue"}}}
	p := compute(w, desired, Options{})
	if len(p.Problems) != 0 {
		t.Fatalf("problems: %+v", p.Problems)
	}
	temps := 0
	for _, u := range p.UpdateUsers {
		if u.TempName != "" {
			temps++
			if !strings.HasPrefix(u.TempName, "scimbridge-swap-") || len(u.TempName) != 32 {
				t.Errorf("temporary name %q", u.TempName)
			}
		}
	}
	for _, g := range p.UpdateGroups {
		if g.TempName != "" {
			temps++
		}
	}
	if temps != 2 {
		t.Errorf("got %d temporary renames, want 2 (one per cycle)", temps)
	}
	// 3 user renames + 2 group renames + one temporary rename per cycle.
	if got := p.LowerBound(100); got != 7 {
		t.Errorf("LowerBound = %d, want 7", got)
	}
	w.apply(t, p) // fails on any rename onto a name still taken
	if p2 := compute(w, desired, Options{}); !p2.Empty() || len(p2.Problems) != 0 {
		t.Errorf("a swap did not converge in one run:\n%s", text(p2))
	}
}

func TestHeadlineOfATrustedRun(t *testing.T) {
	w := newWorld()
	w.addUser(user("1", "alice"), true)
	p := compute(w, scim.Snapshot{Users: []scim.User{user("1", "alice")}}, Options{})
	p.TargetNotRead = true
	out := text(p)
	if !strings.Contains(out, "target not read this run") || strings.Contains(out, "left alone") {
		t.Errorf("trusted run headline:\n%s", out)
	}
}

// TestGroupUpdateFoldedIntoMembersInLowerBound: the applier sends a group's update in its first
// membership PATCH unless the update takes part in a rename chain or cycle, so the lower bound
// counts such an update once with its membership change, and a swap's updates on their own.
func TestGroupUpdateFoldedIntoMembersInLowerBound(t *testing.T) {
	w := newWorld()
	w.addUser(user("a", "a"), true)
	w.addGroup("g1", "One", true)
	w.addGroup("g2", "Two", true)
	w.addGroup("g3", "Three", true)
	desired := scim.Snapshot{Users: []scim.User{user("a", "a")}, Groups: []scim.Group{
		{ExternalID: "g1", DisplayName: "Uno", Members: []string{"a"}},   // renamed, one member added: one PATCH
		{ExternalID: "g2", DisplayName: "Three", Members: []string{"a"}}, // swaps with g3: temp rename, rename, then members
		{ExternalID: "g3", DisplayName: "Two"},
	}}
	p := compute(w, desired, Options{})
	if len(p.UpdateGroups) != 3 || len(p.Members) != 2 {
		t.Fatalf("got %d group updates and %d member changes, want 3 and 2\n%s", len(p.UpdateGroups), len(p.Members), text(p))
	}
	// g1: 1 (rename folded into its member add); g2 and g3: 2 renames + 1 temporary rename, and
	// g2's member add on its own: 4.
	if got, want := p.LowerBound(100), 1+4; got != want {
		t.Errorf("LowerBound = %d, want %d\n%s", got, want, text(p))
	}
}
