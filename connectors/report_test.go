package connectors

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// reportDirectory: five users, u2 and u4 without mail, u3 without department; two groups.
func reportDirectory() *Directory {
	d := &Directory{
		Users: []Entry{user("u1", "department", "Eng"), user("u2", "department", "Ops"), user("u3"),
			user("u4", "department", "Eng"), user("u5", "department", "Eng", "employeeType", "staff")},
		Groups: []Entry{group("g1", "Eng", "u1"), group("g2", "Ops", "u2")},
	}
	delete(d.Users[1].Attributes, "mail")
	delete(d.Users[3].Attributes, "mail")
	d.Users[1].Attributes["uid"] = []string{"u2"}
	d.Users[3].Attributes["uid"] = []string{"u4"}
	return d
}

func TestReport(t *testing.T) {
	// The test flavour takes userName from mail: users without one are given a userName here.
	base := MappingConfig{User: map[string]Expression{"userName": Expr(`default(attr("mail"), attr("uid") + "@example.com")`)}}
	with := func(kv ...string) MappingConfig {
		m := MappingConfig{User: map[string]Expression{}, Group: map[string]Expression{}}
		for k, v := range base.User {
			m.User[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if name, ok := strings.CutPrefix(kv[i], "group."); ok {
				m.Group[name] = Expr(kv[i+1])
			} else {
				m.User[kv[i]] = Expr(kv[i+1])
			}
		}
		return m
	}
	emailMissing := MissingTarget{Target: "email", Key: "flavour test default mapping.user.email", Count: 2, Of: 5, First: []string{"u2", "u4"}}
	for _, tc := range []struct {
		name    string
		mapping MappingConfig
		scope   ScopeConfig
		want    Report
		lines   []string
	}{
		{name: "users without email; flavour defaults are not expected", mapping: with(),
			want:  Report{Missing: []MissingTarget{emailMissing}},
			lines: []string{"2 of 5 users synced have no email (flavour test default mapping.user.email; first: u2, u4)"}},
		{name: "a target the configuration maps is expected", mapping: with("department", `attr("department")`, "title", `attr("title")`),
			want: Report{Missing: []MissingTarget{
				{Target: "title", Key: "mapping.user.title", Count: 5, Of: 5, First: []string{"u1", "u2", "u3", "u4", "u5"}},
				emailMissing,
				{Target: "department", Key: "mapping.user.department", Count: 1, Of: 5, First: []string{"u3"}},
			}, Absent: []AbsentAttribute{{Key: "mapping.user.title", Attribute: "title", Kind: "user", Entries: 5}}}},
		{name: "a misspelt attribute", mapping: with("email", `lower(attr("mial"))`),
			want: Report{
				Missing: []MissingTarget{{Target: "email", Key: "mapping.user.email", Count: 5, Of: 5, First: []string{"u1", "u2", "u3", "u4", "u5"}}},
				Absent:  []AbsentAttribute{{Key: "mapping.user.email", Attribute: "mial", Kind: "user", Entries: 5, Suggest: "mail"}},
			},
			lines: []string{"5 of 5 users synced have no email (mapping.user.email; first: u1, u2, u3, u4, u5)",
				`mapping.user.email: attribute "mial" is on none of the 5 user entries read (did you mean "mail"?)`}},
		{name: "every way of naming an attribute, and the group mapping",
			mapping: with("department", `join(values("departmnet"), ",") + attr("department")`,
				"division", `hasValue("employeeType", "staff") ? "S" : (attrs.costCentre == nil ? "" : "C")`,
				"group.displayName", `attrs["nmae"] != nil ? "x" : attr("cn")`),
			want: Report{
				Missing: []MissingTarget{emailMissing,
					{Target: "division", Key: "mapping.user.division", Count: 4, Of: 5, First: []string{"u1", "u2", "u3", "u4"}},
					{Target: "department", Key: "mapping.user.department", Count: 1, Of: 5, First: []string{"u3"}}},
				Absent: []AbsentAttribute{
					{Key: "mapping.user.division", Attribute: "costCentre", Kind: "user", Entries: 5},
					{Key: "mapping.user.department", Attribute: "departmnet", Kind: "user", Entries: 5, Suggest: "department"},
					{Key: "mapping.group.displayName", Attribute: "nmae", Kind: "group", Entries: 2},
				},
			}},
		{name: "scope filters", mapping: with(),
			scope: ScopeConfig{Users: UserScope{Exclude: Expr(`attr("employeType") == "svc"`)}, Groups: GroupScope{Include: Expr(`attr("cn") != ""`)}},
			want: Report{Missing: []MissingTarget{emailMissing},
				Absent: []AbsentAttribute{{Key: "scope.users.exclude", Attribute: "employeType", Kind: "user", Entries: 5, Suggest: "employeeType"}}},
			lines: []string{"2 of 5 users synced have no email (flavour test default mapping.user.email; first: u2, u4)",
				`scope.users.exclude: attribute "employeType" is on none of the 5 user entries read (did you mean "employeeType"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(testFlavour, tc.mapping, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			d := reportDirectory()
			got := m.Report(d, m.Apply(d))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Report (-want +got):\n%s", diff)
			}
			if tc.lines != nil {
				if diff := cmp.Diff(tc.lines, got.Lines()); diff != "" {
					t.Errorf("Lines (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestReportOfAnEmptyDirectory(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{User: map[string]Expression{"title": Expr(`attr("ttle")`)}}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d := &Directory{}
	if got := m.Report(d, m.Apply(d)); !got.Empty() {
		t.Errorf("Report of an empty directory = %+v, want nothing", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"mial", "mail", 1}, {"", "abc", 3}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"ca", "abc", 3}, {"departmnet", "department", 1}, {"x", "x", 0}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestMappedTargets(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{User: map[string]Expression{"title": Expr(`attr("a") + "|" + attr("b")`), "manager": Expr("")}}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mt := range m.Targets() {
		got = append(got, mt.Kind+" "+mt.Target+" "+mt.Expression+" "+map[bool]string{true: "config", false: "default"}[mt.FromConfig])
	}
	want := []string{
		`user userName lower(attr("mail")) default`,
		`user displayName default(attr("displayName"), attr("givenName") + " " + attr("sn")) default`,
		`user givenName attr("givenName") default`,
		`user familyName attr("sn") default`,
		`user title attr("a") + "|" + attr("b") config`,
		`user email attr("mail") default`,
		`user active attr("disabled") != "true" default`,
		`user department attr("department") default`,
		`group displayName attr("cn") default`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
}
