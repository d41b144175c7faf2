package connectors_test

import (
	"errors"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
)

// FuzzCompile compiles random expression text as a user attribute, a group name and a scope
// filter: Compile must never panic, fail only with errors wrapping ErrConfig, and a mapping it
// accepts must map a small directory without panicking, whatever the expression does at run time.
// Run: go test -fuzz FuzzCompile -fuzztime 2m ./connectors/
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`attr("title")`, `lower(trim(default(attr("userName"), id)))`, `split(attr("title"), "/")[1]`,
		`regexReplace(attr("title"), "[", "-")`, `regexMatch(attr("x"), ".*")`, `join(values("nick"), " ")`,
		`attr("department") == "Engineering"`, `1/0`, `[1,2,3][9]`, `{"a": 1}`, `nil`, `true`, `"" + nil`,
		`let x = 1; x`, `map(1..1000000, #)`, `first(values("x"))`, `hasPrefix(attr("a"), "b")`, `(`, `attr(`,
		`attr("a") in ["x", "y"]`, `values("a")[0:2]`, `repeat("x", 100000000)`, `toJSON(attr("a"))`,
	} {
		f.Add(s)
	}
	d := &connectors.Directory{
		Users: []connectors.Entry{
			{ID: "u1", Attributes: map[string][]string{"userName": {"a@example.com"}, "givenName": {"A"}, "familyName": {"B"}, "title": {"x/y"}}},
			{ID: "u2", Attributes: map[string][]string{"userName": {"b@example.com"}, "givenName": {"B"}, "familyName": {"C"}}},
		},
		Groups: []connectors.Entry{{ID: "g1", Attributes: map[string][]string{"name": {"G"}}, Members: []string{"u1", "u2", "g1"}}},
	}
	f.Fuzz(func(t *testing.T, text string) {
		x := connectors.Expr(text)
		configs := []struct {
			m connectors.MappingConfig
			s connectors.ScopeConfig
		}{
			{m: connectors.MappingConfig{User: map[string]connectors.Expression{"title": x}}},
			{m: connectors.MappingConfig{User: map[string]connectors.Expression{"active": x}}},
			{m: connectors.MappingConfig{Group: map[string]connectors.Expression{"displayName": x}}},
			{s: connectors.ScopeConfig{Users: connectors.UserScope{Include: x}}},
			{s: connectors.ScopeConfig{Groups: connectors.GroupScope{Exclude: x}}},
		}
		for _, c := range configs {
			m, err := connectors.Compile(file.Flavour(), c.m, c.s)
			if err != nil {
				if !errors.Is(err, connectors.ErrConfig) {
					t.Fatalf("Compile(%q) error does not wrap ErrConfig: %v", text, err)
				}
				continue
			}
			snap := m.Apply(d)
			for _, u := range snap.Users {
				if err := u.Check(); err != nil {
					t.Errorf("Compile(%q): user %s passed but fails Check: %v", text, u.ExternalID, err)
				}
			}
		}
	})
}
