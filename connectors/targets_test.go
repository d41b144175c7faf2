package connectors

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
)

// TestDeprecatedTargetSpellings maps through the older spellings (the SCIM paths and the file
// connector's phone): each still sets its target, and each is reported with the key to write.
func TestDeprecatedTargetSpellings(t *testing.T) {
	c, err := decodeConfig(t, `
mapping:
  user:
    emails: attr("work")
    phone: attr("tel")
    addresses.locality: attr("l")
    title: attr("title")
`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(testFlavour, c.Mapping, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u, _, _, err := m.mapUser(newEvaluator(), &Entry{ID: "1", Attributes: map[string][]string{
		"work": {"w@x.com"}, "tel": {"+1 555"}, "l": {"Paris"}, "title": {"eng"}}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "w@x.com" || u.PhoneNumber != "+1 555" || u.Address == nil || u.Address.Locality != "Paris" || u.Title != "eng" {
		t.Errorf("mapped user = %+v, want email, phoneNumber and address.locality set through the old spellings", u)
	}
	want := []string{
		"mapping.user.addresses.locality (line 6): addresses.locality is a deprecated spelling; write mapping.user.address.locality",
		"mapping.user.emails (line 4): emails is a deprecated spelling; write mapping.user.email",
		"mapping.user.phone (line 5): phone is a deprecated spelling; write mapping.user.phoneNumber",
	}
	if diff := cmp.Diff(want, m.Deprecated()); diff != "" {
		t.Errorf("Deprecated (-want +got):\n%s", diff)
	}
	if got := m.Targets(); !containsTarget(got, "phoneNumber", `attr("tel")`) {
		t.Errorf("Targets = %+v, want phoneNumber under its key", got)
	}
	if m2, err := Compile(testFlavour, MappingConfig{}, ScopeConfig{}); err != nil || len(m2.Deprecated()) != 0 {
		t.Errorf("flavour defaults: Deprecated = %v, %v; want none", m2.Deprecated(), err)
	}
}

func containsTarget(ts []MappedTarget, name, expr string) bool {
	for _, t := range ts {
		if t.Target == name && t.Expression == expr {
			return true
		}
	}
	return false
}

// TestDeprecatedSpellingBesideKey: the old and the new spelling of one target together are a
// configuration error, reported with every other one.
func TestDeprecatedSpellingBesideKey(t *testing.T) {
	_, err := Compile(testFlavour, MappingConfig{User: map[string]Expression{
		"email": Expr(`attr("a")`), "emails": Expr(`attr("b")`),
		"phone": Expr(`attr("c")`), "phoneNumber": Expr(`attr("d")`),
		"nope": Expr(`id`),
	}}, ScopeConfig{})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, want := range []string{
		"mapping.user.emails: maps email, which mapping.user.email maps too",
		"mapping.user.phoneNumber: maps phoneNumber, which mapping.user.phone maps too",
		"mapping.user.nope: unknown target",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
}

// TestUserTargetsFollowTable: the mapping's targets are the table's keyed rows, in its order.
func TestUserTargetsFollowTable(t *testing.T) {
	var want []string
	for _, a := range scim.UserAttributes() {
		if a.Key != "" {
			want = append(want, a.Key)
		}
	}
	if diff := cmp.Diff(want, UserTargets()); diff != "" {
		t.Errorf("UserTargets (-want +got):\n%s", diff)
	}
}

// TestExplanationShowsEveryAttribute: Explain's text lists every attribute of the table that has
// a value, by its key (the hand-picked list it had left out phoneType, profileUrl and others).
func TestExplanationShowsEveryAttribute(t *testing.T) {
	u := scim.User{ExternalID: "1", UserName: "a@x.com", DisplayName: "A B", GivenName: "A", FamilyName: "B",
		ProfileURL: "https://x/a", PhoneNumber: "+1 555", PhoneType: "mobile", Active: true,
		Address:    &scim.Address{Locality: "Paris", Country: "FR", Type: "work"},
		Enterprise: scim.Enterprise{Department: "Eng"}}
	got := Explanation{Kind: "user", Entry: Entry{ID: "1"}, Scope: "in scope", User: &u}.String()
	want := `user "1": in scope
  externalId         1
  userName           a@x.com
  displayName        A B
  givenName          A
  familyName         B
  profileUrl         https://x/a
  phoneNumber        +1 555
  phoneType          mobile
  active             true
  department         Eng
  address            Paris, FR
`
	if got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}
