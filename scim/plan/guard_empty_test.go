package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
)

// emptyPlan owns users and groups (each group holds every user) and returns the plan for a source
// that keeps the first keepUsers users and keepGroups groups.
func emptyPlan(users, groups, keepUsers, keepGroups int, opts Options) *Plan {
	w := newWorld()
	var desired scim.Snapshot
	var ids, exts []string
	for i := range users {
		u := user(fmt.Sprintf("%03d", i), fmt.Sprintf("user%03d", i))
		ids = append(ids, w.addUser(u, true))
		if i < keepUsers {
			desired.Users = append(desired.Users, u)
			exts = append(exts, u.ExternalID)
		}
	}
	for i := range groups {
		ext, name := fmt.Sprint("g", i), fmt.Sprint("Group ", i)
		w.addGroup(ext, name, true, ids...)
		if i < keepGroups {
			desired.Groups = append(desired.Groups, scim.Group{ExternalID: ext, DisplayName: name, Members: exts})
		}
	}
	return compute(w, desired, opts)
}

func TestEmptySourceNeedsItsOwnConsent(t *testing.T) {
	limitsOff := Guards{MaxDeletes: -1, MaxDeletePercent: -1, MaxClearPercent: -1}
	with := func(g Guards, f func(*Guards)) Guards { f(&g); return g }
	tests := []struct {
		name   string
		plan   *Plan
		guards Guards
		// empty is whether the empty-source guard blocks; flags is what the message asks for
		// ("" when the run goes through).
		empty bool
		flags string
	}{
		{"empty source, no consent", emptyPlan(15, 6, 0, 0, Options{}), DefaultGuards, true, "--allow-empty-source --allow-deletes 21"},
		{"empty source, only --allow-deletes", emptyPlan(15, 6, 0, 0, Options{}),
			with(DefaultGuards, func(g *Guards) { g.AllowDeletes = 1091 }), true, "--allow-empty-source --allow-deletes 21"},
		{"empty source, only --allow-empty-source: the count guard stays", emptyPlan(15, 6, 0, 0, Options{}),
			with(DefaultGuards, func(g *Guards) { g.AllowEmptySource = true }), false, "--allow-empty-source --allow-deletes 21"},
		{"empty source, both", emptyPlan(15, 6, 0, 0, Options{}),
			with(DefaultGuards, func(g *Guards) { g.AllowEmptySource, g.AllowDeletes = true, 21 }), false, ""},
		{"empty source, delete limits off", emptyPlan(3, 0, 0, 0, Options{}), limitsOff, true, "--allow-empty-source"},
		{"empty source, delete limits off, consent", emptyPlan(3, 0, 0, 0, Options{}),
			with(limitsOff, func(g *Guards) { g.AllowEmptySource = true }), false, ""},
		{"near-empty: 4 of 100 users left", emptyPlan(100, 0, 4, 0, Options{}),
			with(DefaultGuards, func(g *Guards) { g.AllowDeletes = 96 }), true, "--allow-empty-source --allow-deletes 96"},
		{"10 of 100 users left is not near-empty", emptyPlan(100, 0, 10, 0, Options{}), DefaultGuards, false, "--allow-deletes 90"},
		{"10 of 100 users left, allowed", emptyPlan(100, 0, 10, 0, Options{}),
			with(DefaultGuards, func(g *Guards) { g.AllowDeletes = 90 }), false, ""},
		{"users kept, no groups left", emptyPlan(10, 3, 10, 0, Options{}), with(DefaultGuards, func(g *Guards) { g.AllowDeletes = 3 }), true, "--allow-empty-source --allow-deletes 3"},
		{"empty source under upsert-only deprovisions nothing", emptyPlan(15, 6, 0, 0, Options{Policy: PolicyUpsertOnly}), DefaultGuards, false, ""},
		{"empty source disabling instead of deleting", emptyPlan(15, 0, 0, 0, Options{Deprovision: DeprovisionDisable}),
			with(DefaultGuards, func(g *Guards) { g.AllowDeletes = 15 }), true, "--allow-empty-source --allow-deletes 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guards.Check(tt.plan)
			if tt.flags == "" {
				if err != nil {
					t.Fatalf("blocked: %v", err)
				}
				return
			}
			var be *BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("not blocked (err %v); want a block asking for %s", err, tt.flags)
			}
			if be.EmptySource != tt.empty {
				t.Errorf("EmptySource = %v, want %v: %v", be.EmptySource, tt.empty, err)
			}
			if tt.empty && !strings.Contains(err.Error(), "the source holds") {
				t.Errorf("the message does not say the source is empty: %v", err)
			}
			if !tt.empty && strings.Contains(err.Error(), "the source holds") {
				t.Errorf("the message blames the source: %v", err)
			}
			if want := "re-run with " + tt.flags + " to let it through"; !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant it to hold %q", err, want)
			}
		})
	}
}

func TestNearEmptyMessage(t *testing.T) {
	err := DefaultGuards.Check(emptyPlan(100, 0, 4, 0, Options{}))
	want := "the source holds only 4 users, fewer than 10% of the 100 users scimbridge owns (near-empty), and the plan would deprovision 96 of them"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant it to hold %q", err, want)
	}
	err = DefaultGuards.Check(emptyPlan(15, 0, 0, 0, Options{}))
	want = "the source holds no users, and the plan would deprovision 15 of the 15 users scimbridge owns"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant it to hold %q", err, want)
	}
}
