package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/conformance"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/golden"
)

const example = "../../deploy/examples/directory.yaml"

func openSource(t *testing.T, path string) connectors.Source {
	t.Helper()
	src, err := Config{Path: path}.Open(nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func mapFile(t *testing.T, path string, m connectors.MappingConfig, s connectors.ScopeConfig) scim.Snapshot {
	t.Helper()
	d, err := openSource(t, path).Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	mp, err := connectors.Compile(Flavour(), m, s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return mp.Apply(d)
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name, file, golden string
		scope              connectors.ScopeConfig
	}{
		{name: "quickstart", file: example, golden: "quickstart.golden"},
		{name: "quickstart admins only", file: example, golden: "quickstart_admins.golden",
			scope: connectors.ScopeConfig{Groups: connectors.GroupScope{Names: []string{"administrators"}}, UserMode: connectors.UserModeGroupMembers, InactiveUsers: connectors.InactiveExclude}},
		{name: "edge cases", file: "testdata/edge.yaml", golden: "edge.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := mapFile(t, tc.file, connectors.MappingConfig{}, tc.scope)
			got, err := json.MarshalIndent(snap, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.golden), append(got, '\n'))
		})
	}
}

func TestQuickstartFacts(t *testing.T) {
	snap := mapFile(t, example, connectors.MappingConfig{}, connectors.ScopeConfig{})
	if len(snap.Skipped) != 0 {
		t.Errorf("Skipped = %v, want none", snap.Skipped)
	}
	users := map[string]scim.User{}
	for _, u := range snap.Users {
		users[u.ExternalID] = u
	}
	groups := map[string][]string{}
	for _, g := range snap.Groups {
		groups[g.DisplayName] = g.Members
	}
	if got := len(snap.Users); got != 15 {
		t.Errorf("got %d users, want 15", got)
	}
	if users["u-1013"].Active {
		t.Errorf("suspended user u-1013 is active")
	}
	if got := users["u-1006"].Enterprise.Manager; got != "u-1005" {
		t.Errorf("u-1006 manager = %q, want u-1005", got)
	}
	if got := users["u-1002"].DisplayName; got != "Ada Lovelace" {
		t.Errorf("u-1002 displayName = %q, want the default from given and family names", got)
	}
	// SRE is nested in Platform, which is nested in Engineering: SRE's members are in all three.
	for _, g := range []string{"SRE", "Platform", "Engineering", "Administrators", "Everyone"} {
		if !contains(groups[g], "u-1006") {
			t.Errorf("group %s members %v lack u-1006 (via SRE)", g, groups[g])
		}
	}
	if got := len(groups["Everyone"]); got != 15 {
		t.Errorf("Everyone has %d members, want all 15 users", got)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestFlavourDefaults checks the default mapping of every field of the file format.
func TestFlavourDefaults(t *testing.T) {
	m, err := connectors.Compile(Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	full := `users:
  - id: u1
    userName: full@example.com
    displayName: Full Name
    givenName: Given
    familyName: Family
    middleName: Middle
    honorificPrefix: Dr.
    honorificSuffix: Jr.
    nickName: Nick
    profileUrl: https://example.com/u1
    title: Title
    userType: Employee
    preferredLanguage: en
    locale: en-GB
    timezone: Europe/Paris
    email: full@example.com
    phoneNumber: "+33 1"
    employeeNumber: "42"
    costCenter: CC
    organization: Org
    division: Div
    department: Dep
    manager: u2
    address:
      streetAddress: 1 Rue
      locality: Paris
      region: IDF
      postalCode: "75001"
      country: FR
  - id: u2
    userName: min@example.com
    givenName: Min
    familyName: Imal
    active: false
groups:
  - id: g1
    members: [u1]
  - id: g2
    name: Named
    members: [full@example.com, min@example.com]
`
	d, err := Parse([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	snap := m.Apply(d)
	want := scim.Snapshot{
		Users: []scim.User{
			{ExternalID: "u1", UserName: "full@example.com", DisplayName: "Full Name", GivenName: "Given", FamilyName: "Family",
				MiddleName: "Middle", HonorificPrefix: "Dr.", HonorificSuffix: "Jr.", NickName: "Nick", ProfileURL: "https://example.com/u1",
				Title: "Title", UserType: "Employee", PreferredLanguage: "en", Locale: "en-GB", Timezone: "Europe/Paris",
				Email: "full@example.com", EmailType: "work", PhoneNumber: "+33 1", PhoneType: "work",
				Address:    &scim.Address{StreetAddress: "1 Rue", Locality: "Paris", Region: "IDF", PostalCode: "75001", Country: "FR", Type: "work"},
				Active:     true,
				Enterprise: scim.Enterprise{EmployeeNumber: "42", CostCenter: "CC", Organization: "Org", Division: "Div", Department: "Dep", Manager: "u2"}},
			{ExternalID: "u2", UserName: "min@example.com", DisplayName: "Min Imal", GivenName: "Min", FamilyName: "Imal"},
		},
		Groups: []scim.Group{
			{ExternalID: "g1", DisplayName: "g1", Members: []string{"u1"}},
			{ExternalID: "g2", DisplayName: "Named", Members: []string{"u1", "u2"}},
		},
	}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
}

// TestLegacyKeysStillWork checks that the older spellings of user keys (phone, and the address's
// fields written flat) map exactly as the current ones do, keep their old attribute names for
// mapping expressions written for them, and are reported with the key to write instead.
func TestLegacyKeysStillWork(t *testing.T) {
	m, err := connectors.Compile(Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	current := "users:\n  - id: u1\n    userName: a@example.com\n    givenName: A\n    familyName: B\n" +
		"    phoneNumber: \"+1 555\"\n    address:\n      locality: Paris\n      country: FR\n"
	legacy := "users:\n  - id: u1\n    userName: a@example.com\n    givenName: A\n    familyName: B\n" +
		"    phone: \"+1 555\"\n    locality: Paris\n    country: FR\n"
	cd, cw, err := ParseWithWarnings([]byte(current))
	if err != nil {
		t.Fatal(err)
	}
	if len(cw) != 0 {
		t.Errorf("warnings for current keys: got %q, want none", cw)
	}
	ld, lw, err := ParseWithWarnings([]byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Apply(cd), m.Apply(ld)); diff != "" {
		t.Errorf("snapshot of legacy keys differs (-current +legacy):\n%s", diff)
	}
	if got := ld.Users[0].Get("phone"); got != "+1 555" {
		t.Errorf("attr phone of a legacy file: got %q, want %q", got, "+1 555")
	}
	want := []string{
		`user key "country" is a deprecated spelling (lines 8); write address: {country: ...}`,
		`user key "locality" is a deprecated spelling (lines 7); write address: {locality: ...}`,
		`user key "phone" is a deprecated spelling (lines 6); write phoneNumber`,
	}
	if diff := cmp.Diff(want, lw); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	d, err := Parse([]byte("users:\n  - id: u1\n    userName: a\n    address: {city: Paris}\n"))
	if err != nil || len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0].Reason, `address: unknown key "city"`) {
		t.Errorf("unknown address key: got %v, %+v, want u1 left out naming the key", err, d)
	}
}

// TestParseErrors covers problems of the file as a whole (and records without an id), which fail
// the read, and problems of one record, which leave that record out with its id and line and let
// the rest through.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		fatal bool
		want  []string // substrings, each in some error line or skipped record
	}{
		{"empty", "", true, []string{"the file is empty"}},
		{"not yaml", "users: [", true, []string{"not valid YAML"}},
		{"not a mapping", "- a\n- b\n", true, []string{"must be a mapping"}},
		{"unknown top key", "users: []\nteams: []\n", true, []string{`(line 2): unknown key "teams"`}},
		{"users not a list", "users: {a: b}\n", true, []string{"users must be a list"}},
		{"missing id", "users:\n  - userName: a\n", true, []string{"users[0] (line 2): id is required"}},
		{"unknown user key", "users:\n  - id: u1\n    userName: a\n    titel: x\n", false, []string{`user "u1": line 4: unknown key "titel"`}},
		{"wrong type", "users:\n  - id: u1\n    title: [a, b]\n", false, []string{`user "u1": line 3: title must be a single value, not a list`}},
		{"bad bool", "users:\n  - id: u1\n    active: maybe\n", false, []string{`active must be true or false, not "maybe"`}},
		{"contradiction", "users:\n  - id: u1\n    active: true\n    suspended: true\n", false, []string{"contradict"}},
		{"repeated key", "users:\n  - id: u1\n    title: a\n    title: b\n", false, []string{`key "title" appears twice`}},
		{"duplicate ids", "users:\n  - id: x\n    userName: a\ngroups:\n  - id: x\n    name: X\n", false, []string{`group "x": line 5: id is already used by a user`}},
		{"duplicate userName", "users:\n  - id: a\n    userName: Same\n  - id: b\n    userName: same\n", false, []string{`user "b": line 4: userName "same" is already used by user "a"`}},
		{"duplicate email", "users:\n  - {id: a, email: x@y}\n  - {id: b, email: X@y}\n", false, []string{`email "X@y" is already used`}},
		{"duplicate group name", "groups:\n  - {id: a, name: G}\n  - {id: b, name: g}\n", false, []string{`group "b": line 3: name "g" is already used`}},
		{"members not a list", "groups:\n  - id: g\n    members: u1\n", false, []string{`group "g": line 3: members must be a list`}},
		{"self member", "groups:\n  - id: g\n    members: [g]\n", false, []string{"lists itself"}},
		{"attribute shadows field", "users:\n  - id: u\n    attributes: {Title: x}\n", false, []string{`"Title" is a field of the record`}},
		{"attribute nested", "users:\n  - id: u\n    attributes: {x: {y: z}}\n", false, []string{`"x" must be a value or a list of values`}},
		{"unknown group key", "groups:\n  - id: g\n    owner: u\n", false, []string{`group "g": line 3: unknown key "owner"`}},
		{"every problem at once", "users:\n  - id: u1\n    bad1: x\n  - id: u2\n    bad2: y\ngroups:\n  - name: nameless\n", true,
			[]string{`user "u1" (line 3): unknown key "bad1"`, `user "u2" (line 5): unknown key "bad2"`, "groups[0] (line 7): id is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(tc.in))
			var text string
			if tc.fatal {
				if err == nil {
					t.Fatalf("Parse = %v, nil; want an error", d)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("error %v holds no *ParseError", err)
				}
				text = err.Error()
			} else {
				if err != nil {
					t.Fatalf("Parse: %v; a problem of one record must not fail the read", err)
				}
				if len(d.Skipped) == 0 {
					t.Fatal("the bad record was not reported as skipped")
				}
				for _, p := range d.Skipped {
					if !p.Dropped || p.ID == "" {
						t.Errorf("skipped %+v: want a dropped record with its id", p)
					}
					for _, e := range append(d.Users, d.Groups...) {
						if e.ID == p.ID && !strings.Contains(tc.name, "duplicate") {
							t.Errorf("record %q is both skipped and read", p.ID)
						}
					}
					text += p.Error() + "\n"
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("problems\n%v\nlack %q", text, w)
				}
			}
		})
	}
}

func TestOneBadRecordLetsTheRestThrough(t *testing.T) {
	d, err := Parse([]byte("users:\n  - id: u1\n    userName: a@x\n    givenName: A\n  - id: u2\n    userName: b@x\n    titel: typo\n  - id: u3\n    userName: a@X\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Users) != 1 || d.Users[0].ID != "u1" {
		t.Errorf("users = %+v, want u1 only", d.Users)
	}
	if len(d.Skipped) != 2 || d.Skipped[0].ID != "u2" || d.Skipped[1].ID != "u3" {
		t.Errorf("skipped = %+v, want u2 (unknown key) and u3 (duplicate userName)", d.Skipped)
	}
}

func TestParseAttributes(t *testing.T) {
	d, err := Parse([]byte("users:\n  - id: u\n    userName: u@x\n    email: e@x\n    suspended: true\n    attributes:\n      badge: 7\n      tags: [a, b]\n      none:\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := connectors.Entry{ID: "u", Keys: []string{"u@x", "e@x"}, Attributes: map[string][]string{
		"userName": {"u@x"}, "email": {"e@x"}, "active": {"false"}, "badge": {"7"}, "tags": {"a", "b"}, "none": {},
	}}
	if diff := cmp.Diff(want, d.Users[0]); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Error("Validate of an empty path: nil error")
	}
	if _, err := (Config{Path: filepath.Join(t.TempDir(), "missing.yaml")}).Open(nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want os.ErrNotExist", err)
	}
	path := filepath.Join(t.TempDir(), "d.yaml")
	if err := os.WriteFile(path, []byte("users:\n  - userName: u\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := openSource(t, path)
	if _, err := src.Read(context.Background()); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) {
		t.Errorf("Read of a bad file: %v, want ErrInvalid naming the path", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := openSource(t, example).Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context: %v", err)
	}
}

func TestCheck(t *testing.T) {
	src := openSource(t, example)
	rep, err := src.(connectors.Checker).Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Identity, "file /") || rep.Details["users"] != "15" || rep.Details["groups"] != "6" || len(rep.Details["sha256"]) != 64 {
		t.Errorf("Check = %+v", rep)
	}
}

func TestConformance(t *testing.T) {
	conformance.CheckSource(t, openSource(t, example))
	conformance.CheckSourceOptions(t, openSource(t, "testdata/edge.yaml"), conformance.Options{AllowUnresolvedMembers: true})
}

// TestReadIsStable checks that two reads give the same bytes.
func TestReadIsStable(t *testing.T) {
	src := openSource(t, example)
	a, _ := src.Read(context.Background())
	b, _ := src.Read(context.Background())
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Error("two reads differ")
	}
}
