package connectors

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim"
	"go.yaml.in/yaml/v3"
)

// testFlavour is a minimal LDAP-like flavour.
var testFlavour = Flavour{
	Name: "test",
	User: map[string]string{
		"userName":    `lower(attr("mail"))`,
		"displayName": `default(attr("displayName"), attr("givenName") + " " + attr("sn"))`,
		"givenName":   `attr("givenName")`,
		"familyName":  `attr("sn")`,
		"email":       `attr("mail")`,
		"title":       `attr("title")`,
		"active":      `attr("disabled") != "true"`,
		"manager":     `attr("manager")`,
		"department":  `attr("department")`,
	},
	Group: map[string]string{"displayName": `attr("cn")`},
}

type fileConfig struct {
	Mapping MappingConfig `yaml:"mapping"`
	Scope   ScopeConfig   `yaml:"scope"`
}

func decodeConfig(t *testing.T, src string) (fileConfig, error) {
	t.Helper()
	var c fileConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func TestCompileFromYAML(t *testing.T) {
	c, err := decodeConfig(t, `
mapping:
  user:
    title: upper(attr("title"))
    department: ""
    costCenter: attr("cc")
    address.locality: attr("l")
  group:
    displayName: '"aws-" + attr("cn")'
scope:
  users:
    exclude: hasPrefix(attr("mail"), "svc")
  groups:
    name_pattern: ^aws-
  user_mode: all
  inactive_users: exclude
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Mapping.User["title"]; got.Line != 4 || got.Text != `upper(attr("title"))` {
		t.Errorf("title expression = %+v, want line 4", got)
	}
	m, err := Compile(testFlavour, c.Mapping, c.Scope)
	if err != nil {
		t.Fatal(err)
	}
	d := &Directory{
		Users: []Entry{
			{ID: "1", Attributes: map[string][]string{"mail": {"A@x.com"}, "givenName": {"A"}, "sn": {"B"}, "title": {"eng"}, "department": {"D"}, "cc": {"7"}, "l": {"Paris"}}},
			{ID: "2", Attributes: map[string][]string{"mail": {"svc@x.com"}, "givenName": {"S"}, "sn": {"V"}}},
			{ID: "3", Attributes: map[string][]string{"mail": {"off@x.com"}, "givenName": {"O"}, "sn": {"F"}, "disabled": {"true"}}},
		},
		Groups: []Entry{{ID: "g", Attributes: map[string][]string{"cn": {"eng"}}, Members: []string{"1", "2", "3"}}},
	}
	got := m.Apply(d)
	want := scim.Snapshot{
		Users: []scim.User{{ExternalID: "1", UserName: "a@x.com", DisplayName: "A B", GivenName: "A", FamilyName: "B", Email: "A@x.com",
			Title: "ENG", Active: true, Address: &scim.Address{Locality: "Paris"}, Enterprise: scim.Enterprise{CostCenter: "7"}}},
		Groups: []scim.Group{{ExternalID: "g", DisplayName: "aws-eng", Members: []string{"1"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
}

func TestCompileErrors(t *testing.T) {
	c, err := decodeConfig(t, `
mapping:
  user:
    titel: attr("title")
    department: lower(values("department"))
    manager: attr(
    active: attr("x") + 1
  group:
    name: attr("cn")
scope:
  users:
    include: nope()
  groups:
    name_pattern: "(["
    names: ["ok", " "]
`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(testFlavour, c.Mapping, c.Scope)
	if err == nil {
		t.Fatal("Compile: nil error")
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("error does not wrap ErrConfig: %v", err)
	}
	for _, want := range []string{
		"mapping.user.titel (line 4): unknown target",
		"mapping.user.department (line 5): cannot use []string",
		"mapping.user.manager (line 6): unexpected token",
		"mapping.user.active (line 7): ",
		"mapping.group.name (line 9): unknown target",
		"scope.users.include (line 12): unknown name nope",
		"scope.groups.name_pattern (line 14): error parsing regexp",
		"scope.groups.names[1]: empty name",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 8 {
		t.Errorf("got %d error lines, want 8:\n%v", n, err)
	}
}

func TestCompileRequiredAndFlavourErrors(t *testing.T) {
	_, err := Compile(Flavour{Name: "bare", User: map[string]string{"userName": `attr("x")`, "nope": `id`}}, MappingConfig{
		User: map[string]Expression{"givenName": Expr(`attr("g")`)},
	}, ScopeConfig{UserMode: "some", InactiveUsers: "keep"})
	for _, want := range []string{
		"flavour bare: mapping.user.nope: unknown target",
		"mapping.user.displayName: required",
		"mapping.user.familyName: required",
		"mapping.group.displayName: required",
		`scope.user_mode: must be "all" or "group_members", not "some"`,
		`scope.inactive_users: must be "disable" or "exclude", not "keep"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	// Removing a required default is an error too.
	_, err = Compile(testFlavour, MappingConfig{User: map[string]Expression{"userName": Expr("")}}, ScopeConfig{})
	if err == nil || !strings.Contains(err.Error(), "mapping.user.userName: required") {
		t.Errorf("removing userName: %v", err)
	}
}

func TestDecodeStrict(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown scope key", "scope:\n  users:\n    includes: x\n", "field includes not found"},
		{"bad user_mode", "scope:\n  user_mode: members\n", `line 2: user_mode must be "all" or "group_members", not "members"`},
		{"bad inactive_users", "scope:\n  inactive_users: delete\n", `line 2: inactive_users must be "disable" or "exclude"`},
		{"expression not a string", "mapping:\n  user:\n    title: [a]\n", "line 3: an expression must be a string, not a list"},
		{"every problem", "scope:\n  user_mode: x\n  inactive_users: y\n", "inactive_users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeConfig(t, tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decode: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestExpressionYAMLRoundTrip(t *testing.T) {
	in := fileConfig{Mapping: MappingConfig{User: map[string]Expression{"title": Expr(`upper(attr("t"))`)}}, Scope: ScopeConfig{UserMode: UserModeGroupMembers}}
	var b bytes.Buffer
	if err := yaml.NewEncoder(&b).Encode(in); err != nil {
		t.Fatal(err)
	}
	out, err := decodeConfig(t, b.String())
	if err != nil {
		t.Fatalf("decode %s: %v", b.String(), err)
	}
	if got := out.Mapping.User["title"].Text; got != `upper(attr("t"))` || out.Scope.UserMode != UserModeGroupMembers {
		t.Errorf("round trip of\n%s gave %+v", b.String(), out)
	}
}

func TestTargets(t *testing.T) {
	if got := len(UserTargets()); got != 32 {
		t.Errorf("%d user targets, want 32", got)
	}
	// Every target sets something: map each to a distinct value and check none is lost.
	user := map[string]Expression{}
	for _, name := range UserTargets() {
		switch name {
		case "active":
			user[name] = Expr("false")
		case "manager":
			user[name] = Expr(`"boss"`)
		case "email":
			user[name] = Expr(`"x@example.com"`)
		default:
			user[name] = Expr(`"` + name + `"`)
		}
	}
	m, err := Compile(Flavour{Name: "none"}, MappingConfig{User: user, Group: map[string]Expression{"displayName": Expr("id")}}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvaluator()
	u, mgr, _, err := m.mapUser(ev, &Entry{ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	want := scim.User{ExternalID: "id", UserName: "userName", DisplayName: "displayName", GivenName: "givenName", FamilyName: "familyName",
		MiddleName: "middleName", HonorificPrefix: "honorificPrefix", HonorificSuffix: "honorificSuffix", NickName: "nickName",
		ProfileURL: "profileUrl", Title: "title", UserType: "userType", PreferredLanguage: "preferredLanguage", Locale: "locale",
		Timezone: "timezone", Email: "x@example.com", EmailType: "emailType", PhoneNumber: "phoneNumber", PhoneType: "phoneType",
		Address: &scim.Address{Formatted: "address.formatted", StreetAddress: "address.streetAddress", Locality: "address.locality",
			Region: "address.region", PostalCode: "address.postalCode", Country: "address.country", Type: "address.type"},
		Enterprise: scim.Enterprise{EmployeeNumber: "employeeNumber", CostCenter: "costCenter", Organization: "organization",
			Division: "division", Department: "department"}}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("mapUser (-want +got):\n%s", diff)
	}
	if mgr != "boss" {
		t.Errorf("manager reference = %q, want boss", mgr)
	}
	if m.Flavour() != "none" {
		t.Errorf("Flavour() = %q", m.Flavour())
	}
}

func TestTargetNamesIgnoreCase(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{User: map[string]Expression{"TITLE": Expr(`"x"`)}}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u, _, _, err := m.mapUser(newEvaluator(), &Entry{ID: "1"})
	if err != nil || u.Title != "x" {
		t.Errorf("title = %q, %v; want the config's override", u.Title, err)
	}
}
