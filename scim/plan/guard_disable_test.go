package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
)

// A user disabled in the directory is a disable, not an update, in the summary, the text and the
// JSON; one re-enabled is an update.
func TestDirectoryDisableCountsAsDisabled(t *testing.T) {
	w := newWorld()
	alice, bob, carol := user("1", "alice"), user("2", "bob"), user("3", "carol")
	carolBefore := carol
	carolBefore.Active = false
	w.addUser(alice, true)
	w.addUser(bob, true)
	w.addUser(carolBefore, true)
	aliceNow := alice
	aliceNow.Active = false // disabled in the directory
	aliceNow.Title = "Former engineer"
	bobNow := bob
	bobNow.Title = "Engineer"
	p := compute(w, scim.Snapshot{Users: []scim.User{aliceNow, bobNow, carol}}, Options{})
	if len(p.UpdateUsers) != 3 {
		t.Fatalf("the plan updates %d users, want 3", len(p.UpdateUsers))
	}
	for _, u := range p.UpdateUsers {
		if got, want := u.Disables(), u.User.ExternalID == "1"; got != want {
			t.Errorf("%s: Disables() = %v, want %v", u.User.ExternalID, got, want)
		}
	}
	s := p.Summarize(100)
	if s.DisableUsers != 1 || s.UpdateUsers != 2 {
		t.Errorf("summary: %d to disable, %d to update; want 1 and 2", s.DisableUsers, s.UpdateUsers)
	}
	if got, want := p.LowerBound(100), 3; got != want {
		t.Errorf("LowerBound = %d, want %d", got, want)
	}

	var text bytes.Buffer
	if err := p.WriteText(&text, 100); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`! disable user "alice" (1): disabled in the directory`, `active: "true" -> "false"`, `~ user "bob" (2)`, `~ user "carol" (3)`, "2 to update, 1 to disable"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text plan lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := p.WriteJSON(&js, 100); err != nil {
		t.Fatal(err)
	}
	var out struct{ Summary Summary }
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Summary.DisableUsers != 1 || out.Summary.UpdateUsers != 2 {
		t.Errorf("JSON summary: %+v, want 1 to disable and 2 to update", out.Summary)
	}
}

// Users disabled in the directory count against the deprovisioning guards like disables of
// leavers: a mapping that reads `active` from a misspelt attribute would lock everyone out.
func TestDirectoryDisablesMeetTheGuards(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabled int
		blocked  bool
	}{
		{"a few leave", 3, false},
		{"half the company", 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			var now []scim.User
			for i := range 40 {
				u := user(fmt.Sprint(i), fmt.Sprintf("user%02d", i))
				w.addUser(u, true)
				if i < tc.disabled {
					u.Active = false
				}
				now = append(now, u)
			}
			p := compute(w, scim.Snapshot{Users: now}, Options{})
			if users, _ := p.Deprovisions(); users != tc.disabled {
				t.Errorf("Deprovisions() = %d users, want %d", users, tc.disabled)
			}
			err := DefaultGuards.Check(p)
			if got := err != nil; got != tc.blocked {
				t.Fatalf("blocked: got %v (%v), want %v", got, err, tc.blocked)
			}
			if tc.blocked && !strings.Contains(err.Error(), "20 of 40 owned users") {
				t.Errorf("message %q does not count the disables", err)
			}
		})
	}
}
