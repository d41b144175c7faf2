package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim"
)

func TestNameClashWithUnownedUserIsReportedUnlessAdopting(t *testing.T) {
	w := newWorld()
	id := w.addUser(scim.User{UserName: "alice", DisplayName: "A", GivenName: "A", FamilyName: "S", Active: true}, false)
	desired := scim.Snapshot{Users: []scim.User{user("1", "alice")}, Groups: []scim.Group{{ExternalID: "g", DisplayName: "G", Members: []string{"1"}}}}

	p := compute(w, desired, Options{})
	if len(p.CreateUsers) != 0 || len(p.UpdateUsers) != 0 {
		t.Fatalf("clash must not create or update: %+v", p.Changes)
	}
	if len(p.Problems) != 1 || p.Problems[0].Field != "userName" || !strings.Contains(p.Problems[0].Reason, "not owned") {
		t.Fatalf("Problems = %+v, want one userName clash", p.Problems)
	}
	if len(p.CreateGroups) != 1 || len(p.CreateGroups[0].Members) != 0 {
		t.Errorf("group should be created without the blocked member: %+v", p.CreateGroups)
	}

	p = compute(w, desired, Options{Adopt: AdoptName})
	if len(p.UpdateUsers) != 1 || p.UpdateUsers[0].ID != id || p.UpdateUsers[0].Adopted != "userName" {
		t.Fatalf("adopt by name: UpdateUsers = %+v", p.UpdateUsers)
	}
	w.apply(t, p)
	if p2 := compute(w, desired, Options{}); !p2.Empty() {
		t.Errorf("after adoption the plan is not empty: %+v", p2.Changes)
	}
}

func TestAdoptByExternalIDAndPendingClaim(t *testing.T) {
	w := newWorld()
	id := w.addUser(user("1", "alice"), false)
	desired := scim.Snapshot{Users: []scim.User{user("1", "alice")}}

	if p := compute(w, desired, Options{}); len(p.Problems) != 1 {
		t.Fatalf("without adoption a same-externalId user clashes; problems = %+v", p.Problems)
	}
	w.owned.PendingUsers["1"] = true
	p := compute(w, desired, Options{})
	if diff := cmp.Diff([]Claim{{Kind: "user", ExternalID: "1", ID: id}}, p.Claims); diff != "" {
		t.Fatalf("claims (-want +got):\n%s", diff)
	}
	if !p.Empty() {
		t.Errorf("a claim needs no request: %+v", p.Changes)
	}
	delete(w.owned.PendingUsers, "1")
	// Nothing differs: adoption is recorded as owned without a request.
	p = compute(w, desired, Options{Adopt: AdoptExternalID})
	if diff := cmp.Diff([]Claim{{Kind: "user", ExternalID: "1", ID: id, Adopted: "external_id", Name: "alice"}}, p.Claims); diff != "" || !p.Empty() {
		t.Errorf("adopt external_id: claims (-want +got):\n%s\nchanges %+v", diff, p.Changes)
	}
}

func TestClashHintNamesTheMatchingAdoptMode(t *testing.T) {
	w := newWorld()
	// Made by another tool with the same source id, then renamed in the directory.
	w.addUser(user("g-1", "ann.old"), false)
	// Made by hand with the same name but another id scheme.
	w.addUser(user("ssosync-bob", "bob"), false)
	w.addGroup("g-9", "Admins", false)
	desired := scim.Snapshot{Users: []scim.User{user("g-1", "ann"), user("g-2", "bob")},
		Groups: []scim.Group{{ExternalID: "g-9", DisplayName: "Admins"}}}
	p := compute(w, desired, Options{})
	if len(p.CreateUsers)+len(p.CreateGroups)+len(p.UpdateUsers) != 0 {
		t.Fatalf("a clash must neither create nor update:\n%s", text(p))
	}
	got := map[string]Adopt{}
	for _, c := range p.Clashes {
		got[c.ExternalID] = c.Adopt
	}
	want := map[string]Adopt{"g-1": AdoptExternalID, "g-2": AdoptName, "g-9": AdoptExternalID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clash hints (-want +got):\n%s", diff)
	}
	out := text(p)
	if strings.Contains(out, "The target matches the source") || !strings.Contains(out, "3 records are left out") {
		t.Errorf("headline while records are left out:\n%s", out)
	}
	if !strings.Contains(out, "set adopt: external_id") || !strings.Contains(out, "set adopt: name") {
		t.Errorf("hints missing:\n%s", out)
	}
	// With the hinted modes, the plan shows adopt lines.
	p = compute(w, desired, Options{Adopt: AdoptName})
	if p.Adoptions() != 3 || !strings.Contains(text(p), "[adopt: matched by") {
		t.Errorf("adopt name:\n%s", text(p))
	}
}

func TestAdoptionComparesEveryManagedAttribute(t *testing.T) {
	w := newWorld()
	prev := user("g-1", "ann")
	prev.PhoneNumber, prev.PhoneType = "+1 555 0100", "work"
	prev.Title = "Engineer"
	prev.Address = &scim.Address{Locality: "Paris"}
	prev.Enterprise.CostCenter = "42"
	w.addUser(prev, false)
	w.addUser(user("g-2", "bob"), false)
	desired := scim.Snapshot{Users: []scim.User{user("g-1", "ann"), user("g-2", "bob")}}
	p := compute(w, desired, Options{Adopt: AdoptExternalID})
	if len(p.UpdateUsers) != 1 || len(p.Claims) != 1 || p.Claims[0].ExternalID != "g-2" {
		t.Fatalf("want one adoption with a write (g-1) and one without (g-2):\n%s", text(p))
	}
	var names []string
	for _, f := range p.UpdateUsers[0].Fields {
		names = append(names, f.Name)
		if f.To != "" {
			t.Errorf("field %s: to %q, want cleared", f.Name, f.To)
		}
	}
	for _, want := range []string{"title", "phoneNumbers", "addresses.locality", "enterprise.costCenter"} {
		found := false
		for _, n := range names {
			found = found || strings.Contains(n, strings.TrimPrefix(want, "enterprise."))
		}
		if !found {
			t.Errorf("fields %v: %s that adoption clears is not listed", names, want)
		}
	}
	if got := p.LowerBound(100); got != 1 {
		t.Errorf("LowerBound = %d, want 1 (only the user that differs)", got)
	}
}

func TestPendingClaimOnlyForObjectsThisCreateCouldHaveMade(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		created time.Time
		seen    bool
		claim   bool
	}{
		{"made after the intent", at.Add(time.Second), false, true},
		{"made within the clock skew", at.Add(-ClockSkew / 2), false, true},
		{"made long before the intent", at.Add(-time.Hour), false, false},
		{"seen unowned by the last full read", at.Add(time.Second), true, false},
		{"no creation time", time.Time{}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			id := w.addUser(user("1", "alice"), false)
			w.users[id].Created = tt.created
			w.owned.PendingUsers["1"] = true
			w.owned.PendingUsers["gone"] = true // neither on the target nor in the source
			w.owned.PendingUsersAt = map[string]time.Time{"1": at}
			w.owned.SeenUnownedUsers = map[string]bool{}
			if tt.seen {
				w.owned.SeenUnownedUsers[id] = true
			}
			p := compute(w, scim.Snapshot{Users: []scim.User{user("1", "alice")}}, Options{})
			if got := len(p.Claims) == 1; got != tt.claim {
				t.Fatalf("claimed %v, want %v:\n%s", got, tt.claim, text(p))
			}
			wantClear := []Claim{{Kind: "user", ExternalID: "gone"}}
			if !tt.claim {
				wantClear = append([]Claim{{Kind: "user", ExternalID: "1"}}, wantClear...)
				if len(p.Clashes) != 1 || len(p.CreateUsers) != 0 {
					t.Errorf("not claimed: want a clash and no create:\n%s", text(p))
				}
			}
			if diff := cmp.Diff(wantClear, p.ClearPending); diff != "" {
				t.Errorf("ClearPending (-want +got):\n%s", diff)
			}
		})
	}
}
