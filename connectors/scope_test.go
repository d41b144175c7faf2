package connectors

import (
	"testing"
)

// TestGroupMayBeInScope: a source that asks GroupMayBeInScope before reading members leaves out
// only groups that Apply leaves out of scope (not the ones it reports as failed), and leaves out
// every group the filters or the name selection exclude.
func TestGroupMayBeInScope(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scope ScopeConfig
		want  map[string]bool // group id -> may be in scope
	}{
		{"everything", ScopeConfig{}, map[string]bool{"admins": true, "ops": true, "dev": true}},
		{"names", ScopeConfig{Groups: GroupScope{Names: []string{"OPS"}}}, map[string]bool{"admins": false, "ops": true, "dev": false}},
		{"pattern", ScopeConfig{Groups: GroupScope{NamePattern: Expr(`^aws-`)}}, map[string]bool{"admins": true, "ops": false, "dev": true}},
		{"include", ScopeConfig{Groups: GroupScope{Include: Expr(`attr("cn") != "ops"`)}}, map[string]bool{"admins": true, "ops": false, "dev": true}},
		{"exclude and names", ScopeConfig{Groups: GroupScope{Exclude: Expr(`id == "dev"`), Names: []string{"aws-dev", "ops"}}},
			map[string]bool{"admins": false, "ops": true, "dev": false}},
		{"filter fails for one", ScopeConfig{Groups: GroupScope{Exclude: Expr(`values("flag")[0] == "x"`), Names: []string{"ops"}}},
			map[string]bool{"admins": true, "ops": true, "dev": true}}, // none has flag: all fail, so all "may be"
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(testFlavour, MappingConfig{}, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			d := scopeDirectory()
			snap := m.Apply(d)
			kept := map[string]bool{}
			for _, g := range snap.Groups {
				kept[g.ExternalID] = true
			}
			for id := range snap.SkippedIDs("group") {
				kept[id] = true
			}
			for i := range d.Groups {
				g := &d.Groups[i]
				got := m.GroupMayBeInScope(g)
				if got != tc.want[g.ID] {
					t.Errorf("GroupMayBeInScope(%s) = %t, want %t", g.ID, got, tc.want[g.ID])
				}
				if kept[g.ID] && !got {
					t.Errorf("group %s is in the snapshot or reported as skipped, but GroupMayBeInScope says no", g.ID)
				}
			}
		})
	}
}
