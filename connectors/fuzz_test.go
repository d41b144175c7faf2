package connectors_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
	"github.com/scimbridge/scimbridge/scim"
)

// FuzzApply feeds random entries through the file flavour's default mapping (plus a mapping and
// scope that exercise the functions) and checks that Apply neither panics nor lets through a
// record that Identity Center would refuse. Run: go test -fuzz FuzzApply -fuzztime 2m ./connectors/
func FuzzApply(f *testing.F) {
	f.Add("u1", "alice@example.com", "Alice", "Liddell", "alice@example.com", "u2", "true", "g1", "Team", "u1,u2,g1", "a/b")
	f.Add("", "", "", "", "", "", "", "", "", "", "")
	f.Add("x", "has space", "\x00", "\xff", "not-an-email", "x", "maybe", "x", "x", "x,x,,", "(")
	f.Add("u1", strings.Repeat("a", 200), "G", "F", "a@b", "U1", "false", "G1", "", "u1", "\t")
	defaults, err := connectors.Compile(file.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		f.Fatal(err)
	}
	custom, err := connectors.Compile(file.Flavour(), connectors.MappingConfig{User: map[string]connectors.Expression{
		"userName":   connectors.Expr(`lower(trim(default(attr("userName"), id)))`),
		"title":      connectors.Expr(`regexReplace(attr("title"), "[^a-z]+", "-")`),
		"department": connectors.Expr(`split(attr("title"), "/")[1]`), // fails when there is no "/"
		"nickName":   connectors.Expr(`join(values("nick"), " ")`),
	}}, connectors.ScopeConfig{
		Users:    connectors.UserScope{Exclude: connectors.Expr(`regexMatch(attr("title"), "^svc")`)},
		Groups:   connectors.GroupScope{NamePattern: connectors.Expr(`.`)},
		UserMode: connectors.UserModeGroupMembers,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, userName, given, family, email, manager, active, gid, gname, members, title string) {
		d := &connectors.Directory{
			Users: []connectors.Entry{
				{ID: id, Keys: []string{userName, email}, Attributes: map[string][]string{
					"userName": {userName}, "givenName": {given}, "familyName": {family}, "email": {email},
					"manager": {manager}, "active": {active}, "title": {title}, "nick": strings.Split(given, " "),
				}},
				{ID: id + "2", Attributes: map[string][]string{"userName": {userName + "2"}, "givenName": {family}, "familyName": {given}}},
			},
			Groups: []connectors.Entry{
				{ID: gid, Keys: []string{gname}, Attributes: map[string][]string{"name": {gname}}, Members: strings.Split(members, ",")},
				{ID: gid + "-parent", Attributes: map[string][]string{"name": {gname + " parent"}}, Members: []string{gid, gname, id}},
			},
		}
		for _, m := range []*connectors.Mapping{defaults, custom} {
			snap := m.Apply(d)
			for _, u := range snap.Users {
				if err := u.Check(); err != nil {
					t.Errorf("user %q passed but fails Check: %v", u.ExternalID, err)
				}
				if !utf8.ValidString(u.UserName) || u.UserName == "" {
					t.Errorf("user %q has userName %q", u.ExternalID, u.UserName)
				}
			}
			users := map[string]bool{}
			for _, u := range snap.Users {
				users[u.ExternalID] = true
			}
			skipped := snap.SkippedIDs(scim.KindUser)
			for _, g := range snap.Groups {
				if g.DisplayName == "" || g.ExternalID == "" {
					t.Errorf("group %+v lacks a name or id", g)
				}
				for _, mem := range g.Members {
					if !users[mem] && !skipped[mem] {
						t.Errorf("group %q member %q is not a user of the snapshot", g.ExternalID, mem)
					}
				}
			}
			if _, err := m.Explain(d, id); err != nil && id != "" {
				t.Errorf("Explain(%q): %v", id, err)
			}
		}
	})
}
