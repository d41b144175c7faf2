package plan

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim"
)

// clearWorld owns n users, each with an email, a title, a phone number and a manager (000, whose
// manager is 001),
// and returns the world and the desired users as they are.
func clearWorld(n int) (*world, []scim.User) {
	w := newWorld()
	var users []scim.User
	for i := range n {
		u := user(fmt.Sprintf("%03d", i), fmt.Sprintf("user%03d", i))
		u.Title, u.PhoneNumber = "Engineer", fmt.Sprintf("+1 555 %04d", i)
		u.Enterprise.Manager = "000"
		if i == 0 {
			u.Enterprise.Manager = "001"
		}
		users = append(users, u)
	}
	ids := map[string]string{}
	for _, u := range users {
		t := u
		t.Enterprise.Manager = ""
		ids[u.ExternalID] = w.addUser(t, true)
	}
	for id, tu := range w.users {
		for _, u := range users {
			if u.ExternalID == tu.ExternalID && u.Enterprise.Manager != "" {
				w.users[id].Enterprise.Manager = ids[u.Enterprise.Manager]
			}
		}
	}
	return w, users
}

// edited returns the users with edit applied to the first n of them.
func edited(users []scim.User, n int, edit func(u *scim.User)) []scim.User {
	out := slices.Clone(users)
	for i := range n {
		edit(&out[i])
	}
	return out
}

func TestClearGuard(t *testing.T) {
	noEmail := func(u *scim.User) { u.Email = "" }
	noTitle := func(u *scim.User) { u.Title = "" }
	tests := []struct {
		name    string
		owned   int
		cleared int
		edit    func(u *scim.User)
		guards  Guards
		// blocked lists the attributes named in the block, nil when the run goes through.
		blocked []string
		flag    string
	}{
		{"a mapping typo blanks every email", 20, 20, noEmail, DefaultGuards, []string{"emails"}, "--allow-clears emails"},
		{"allowed by the mapping name", 20, 20, noEmail, Guards{MaxDeletes: 100, MaxDeletePercent: 20, MaxClearPercent: 10, AllowClears: []string{"email"}}, nil, ""},
		{"allowed by the plan's name", 20, 20, noEmail, Guards{MaxDeletes: 100, MaxDeletePercent: 20, MaxClearPercent: 10, AllowClears: []string{"Emails"}}, nil, ""},
		{"another attribute allowed", 20, 20, noEmail, Guards{MaxClearPercent: 10, MaxDeletes: -1, MaxDeletePercent: -1, AllowClears: []string{"title"}}, []string{"emails"}, "--allow-clears emails"},
		{"limit off", 20, 20, noEmail, Guards{MaxClearPercent: -1, MaxDeletes: -1, MaxDeletePercent: -1}, nil, ""},
		{"exactly the limit", 30, 3, noTitle, DefaultGuards, nil, ""},
		{"over the limit", 30, 4, noTitle, DefaultGuards, []string{"title"}, "--allow-clears title"},
		{"small directory, under the minimum count", 3, MinClears - 1, noTitle, DefaultGuards, nil, ""},
		{"small directory, at the minimum count", 3, MinClears, noTitle, DefaultGuards, []string{"title"}, "--allow-clears title"},
		{"the manager mapping lost", 20, 20, func(u *scim.User) { u.Enterprise.Manager = "" }, DefaultGuards, []string{"manager"}, "--allow-clears manager"},
		{"two attributes, all named at once", 20, 20, func(u *scim.User) { u.Email, u.PhoneNumber = "", "" }, DefaultGuards, []string{"emails", "phoneNumbers"}, "--allow-clears emails,phoneNumbers"},
		{"a change of every value is no clear", 20, 20, func(u *scim.User) { u.Email = "new." + u.Email }, DefaultGuards, nil, ""},
		{"a value set where there was none is no clear", 20, 20, func(u *scim.User) { u.NickName = "nick" }, DefaultGuards, nil, ""},
		{"a disable is no clear", 20, 20, func(u *scim.User) { u.Active = false }, Guards{MaxClearPercent: 10, MaxDeletes: -1, MaxDeletePercent: -1}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, users := clearWorld(tt.owned)
			p := compute(w, scim.Snapshot{Users: edited(users, tt.cleared, tt.edit)}, Options{})
			if len(p.UpdateUsers) != tt.cleared {
				t.Fatalf("the plan updates %d users, want %d", len(p.UpdateUsers), tt.cleared)
			}
			err := tt.guards.Check(p)
			var be *BlockedError
			if !errors.As(err, &be) {
				if tt.blocked != nil {
					t.Fatalf("not blocked (err %v); want blocked on %v", err, tt.blocked)
				}
				return
			}
			if tt.blocked == nil {
				t.Fatalf("blocked: %v", err)
			}
			if got := slices.Sorted(maps.Keys(be.Clears)); !slices.Equal(got, tt.blocked) {
				t.Errorf("blocked on %v, want %v", got, tt.blocked)
			}
			for _, name := range tt.blocked {
				if be.Clears[name] != tt.cleared {
					t.Errorf("%s cleared on %d users, want %d", name, be.Clears[name], tt.cleared)
				}
				if want := fmt.Sprintf("clear %s", name); !strings.Contains(err.Error(), want) {
					t.Errorf("message lacks %q: %v", want, err)
				}
			}
			if !strings.Contains(err.Error(), "re-run with "+tt.flag+" ") {
				t.Errorf("message does not say to re-run with %s: %v", tt.flag, err)
			}
			if strings.Contains(err.Error(), "--allow-deletes") || be.EmptySource {
				t.Errorf("a plan without deletes names the delete guards: %v", err)
			}
		})
	}
}

func TestClearGuardNamesTheMappingTarget(t *testing.T) {
	w, users := clearWorld(15)
	p := compute(w, scim.Snapshot{Users: edited(users, 15, func(u *scim.User) { u.Email = "" })}, Options{})
	err := DefaultGuards.Check(p)
	if err == nil {
		t.Fatal("not blocked")
	}
	// The plan shows emails and emails.type going; the type follows its value and is not named.
	want := "updates would clear emails (mapping target email) on 15 of the 15 users scimbridge owns (100.0%), more than max_clear_percent (10%)"
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "emails.type") {
		t.Errorf("got %v\nwant it to hold %q and not emails.type", err, want)
	}
	if got, want := p.Clears(), map[string]int{"emails": 15}; !maps.Equal(got, want) {
		t.Errorf("Clears() = %v, want %v", got, want)
	}
}

// Adopting users whose target objects hold values the source lacks clears them too: the adopted
// users count among the owned, and the guard applies.
func TestClearGuardCountsAdoptions(t *testing.T) {
	w := newWorld()
	var desired scim.Snapshot
	for i := range 10 {
		u := user(fmt.Sprint(i), fmt.Sprint("user", i))
		t := u
		t.ExternalID = ""
		t.PhoneNumber = "+1 555 0100" // typed into the console once
		w.addUser(t, false)
		desired.Users = append(desired.Users, u)
	}
	p := compute(w, desired, Options{Adopt: AdoptName})
	if len(p.UpdateUsers) != 10 || p.UpdateUsers[0].Adopted == "" {
		t.Fatalf("want 10 adoptions, got %+v", p.UpdateUsers)
	}
	err := DefaultGuards.Check(p)
	var be *BlockedError
	if !errors.As(err, &be) || be.Clears["phoneNumbers"] != 10 || !strings.Contains(err.Error(), "on 10 of the 10 users") {
		t.Fatalf("adoptions that clear phone numbers: err %v, want blocked naming phoneNumbers on 10 of 10", err)
	}
}

// All the guards a plan trips are reported at once, with every flag the re-run needs.
func TestGuardsReportEverythingAtOnce(t *testing.T) {
	w, users := clearWorld(20)
	desired := edited(users[:10], 10, func(u *scim.User) { u.Email = "" }) // 10 of 20 leave, the rest lose their email
	p := compute(w, scim.Snapshot{Users: desired}, Options{})
	err := DefaultGuards.Check(p)
	if err == nil {
		t.Fatal("not blocked")
	}
	for _, want := range []string{"10 of 20 owned users (50.0%) would be deprovisioned", "updates would clear emails", "re-run with --allow-deletes 10 --allow-clears emails to let it through"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	// One of the two allowed: the other is still reported, and the flags still name both.
	g := DefaultGuards
	g.AllowDeletes = 10
	err = g.Check(p)
	if err == nil || strings.Contains(err.Error(), "deprovisioned") || !strings.Contains(err.Error(), "re-run with --allow-deletes 10 --allow-clears emails ") {
		t.Errorf("with the deletes allowed: %v", err)
	}
	g.AllowClears = []string{"email"}
	if err := g.Check(p); err != nil {
		t.Errorf("both allowed: %v", err)
	}
}

func TestClearAttribute(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"emails", "emails"}, {"email", "emails"}, {"EMAIL", "emails"}, {"phoneNumber", "phoneNumbers"},
		{"middleName", "name.middleName"}, {"name.middleName", "name.middleName"}, {"address.locality", "addresses.locality"},
		{"title", "title"}, {"manager", "manager"}, {"department", "department"},
		{"emial", ""}, {"", ""}, {"active", ""},
	} {
		got, ok := ClearAttribute(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ClearAttribute(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestBlockedErrorFields(t *testing.T) {
	w, users := clearWorld(10)
	p := compute(w, scim.Snapshot{Users: edited(users, 10, func(u *scim.User) { u.Title = "" })}, Options{})
	err := DefaultGuards.Check(p)
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("not blocked: %v", err)
	}
	want := &BlockedError{Reason: be.Reason, Clears: map[string]int{"title": 10}, Flags: []string{"--allow-clears title"}}
	if diff := cmp.Diff(want, be); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
