package plan

import (
	"fmt"
	"slices"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
)

// lbWorld is a target holding n owned users u000.. (all in the desired snapshot) and returns the
// world with the desired snapshot of those users and no groups.
func lbWorld(n int) (*world, scim.Snapshot, []string) {
	w := newWorld()
	var desired scim.Snapshot
	var ids []string
	for i := range n {
		u := user(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i))
		ids = append(ids, w.addUser(u, true))
		desired.Users = append(desired.Users, u)
	}
	return w, desired, ids
}

func exts(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("u%03d", i))
	}
	return out
}

// TestLowerBoundByHand checks plan.LowerBound against values counted by hand from the rule (one
// request per object changed; ceil(changes/100) member PATCHes per group, after the 100 members a
// new group's POST carries; a group rename rides on its first member PATCH). Each case then
// applies the plan and checks that the next plan is empty, so the plan it counts is a real one.
func TestLowerBoundByHand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		users int
		// setup edits the world and desired snapshot (ids are the target ids of the users).
		setup func(w *world, d *scim.Snapshot, ids []string)
		opts  Options
		want  int
	}{
		{name: "nothing changes", users: 5, want: 0,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids[:3]...)
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(0, 3)}}
			}},
		// Member adds to an existing group: one PATCH per 100 changes.
		{name: "99 adds", users: 99, want: 1, setup: addsTo(0, 99)},
		{name: "100 adds", users: 100, want: 1, setup: addsTo(0, 100)},
		{name: "101 adds", users: 101, want: 2, setup: addsTo(0, 101)},
		{name: "250 adds", users: 250, want: 3, setup: addsTo(0, 250)},
		// Member removes from an existing group.
		{name: "99 removes", users: 99, want: 1, setup: removesFrom(99)},
		{name: "100 removes", users: 100, want: 1, setup: removesFrom(100)},
		{name: "101 removes", users: 101, want: 2, setup: removesFrom(101)},
		{name: "250 removes", users: 250, want: 3, setup: removesFrom(250)},
		// Adds and removes of one group share the batches: 60 + 41 = 101 changes, 2 PATCHes.
		{name: "60 adds and 41 removes", users: 101, want: 2,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids[60:]...)
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(0, 60)}}
			}},
		// Two groups are batched apart: 99 + 2 changes are 2 PATCHes, not 1.
		{name: "99 and 2 adds in two groups", users: 101, want: 2,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("a", "A", true)
				w.addGroup("b", "B", true)
				d.Groups = []scim.Group{{ExternalID: "a", DisplayName: "A", Members: exts(0, 99)},
					{ExternalID: "b", DisplayName: "B", Members: exts(99, 101)}}
			}},
		// A new group carries 100 members in its POST, the rest in PATCHes of 100.
		{name: "new group of 0", users: 1, want: 1, setup: newGroup(0)},
		{name: "new group of 100", users: 100, want: 1, setup: newGroup(100)},
		{name: "new group of 101", users: 101, want: 2, setup: newGroup(101)},
		{name: "new group of 250", users: 250, want: 3, setup: newGroup(250)},
		{name: "new group of 250 new users", users: 0, want: 250 + 3,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				for i := range 250 {
					d.Users = append(d.Users, user(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i)))
				}
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(0, 250)}}
			}},
		// Disables: deprovisioned by disabling (one PATCH each; the plan also takes them out of
		// their group, one more PATCH), or disabled in the directory.
		{name: "3 leavers disabled", users: 10, want: 3 + 1, opts: Options{Deprovision: DeprovisionDisable},
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids...)
				d.Users = d.Users[:7]
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(0, 10)[:7]}}
			}},
		{name: "2 disabled in the directory", users: 10, want: 2,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				d.Users[3].Active = false
				d.Users[8].Active = false
			}},
		// Deletes: one DELETE per user or group; the target drops a deleted user's memberships
		// and a deleted group's members itself.
		{name: "3 users and 1 group deleted", users: 10, want: 4,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids...)
				w.addGroup("gone", "Gone", true, ids...)
				d.Users = d.Users[3:]
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(3, 10)}}
			}},
		{name: "250 users deleted from a group", users: 260, want: 250,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids...)
				d.Users = d.Users[250:]
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(250, 260)}}
			}},
		// Renames: a user rename is one PUT; a group rename alone is one PATCH, and a rename of
		// a group whose members change rides on its first member PATCH.
		{name: "user rename", users: 3, want: 1,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids...)
				d.Users[1].UserName = "renamed"
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(0, 3)}}
			}},
		{name: "group rename alone", users: 3, want: 1,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true, ids...)
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G renamed", Members: exts(0, 3)}}
			}},
		{name: "group rename with 5 adds", users: 5, want: 1,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true)
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G renamed", Members: exts(0, 5)}}
			}},
		{name: "group rename with 250 adds", users: 250, want: 3,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("g", "G", true)
				d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G renamed", Members: exts(0, 250)}}
			}},
		{name: "two renamed groups, one with 101 removes", users: 101, want: 1 + 2,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("a", "A", true, ids...)
				w.addGroup("b", "B", true)
				d.Groups = []scim.Group{{ExternalID: "a", DisplayName: "A2"}, {ExternalID: "b", DisplayName: "B2"}}
			}},
		// Everything at once: 2 creates, 1 update, 1 disable in the directory, 2 deletes, a new
		// group of 150 (1 POST + 1 PATCH), a renamed group with 101 adds (2 PATCHes), a group
		// deleted (1): 2+1+1+2+2+2+1 = 11.
		{name: "everything at once", users: 160, want: 11,
			setup: func(w *world, d *scim.Snapshot, ids []string) {
				w.addGroup("renamed", "Old", true)
				w.addGroup("gone", "Gone", true, ids[:10]...)
				d.Users = d.Users[:158]
				d.Users = append(d.Users, user("new1", "new1"), user("new2", "new2"))
				d.Users[0].Title = "Boss"
				d.Users[1].Active = false
				d.Groups = []scim.Group{{ExternalID: "new", DisplayName: "New", Members: exts(0, 150)},
					{ExternalID: "renamed", DisplayName: "New name", Members: exts(0, 101)}}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, desired, ids := lbWorld(tc.users)
			tc.setup(w, &desired, ids)
			p := compute(w, desired, tc.opts)
			if len(p.Problems) > 0 {
				t.Fatalf("problems: %v", p.Problems)
			}
			if got := p.LowerBound(100); got != tc.want {
				t.Errorf("LowerBound(100) = %d, want %d (plan %+v)", got, tc.want, p.Summarize(100))
			}
			if got := p.Summarize(100).LowerBound; got != tc.want {
				t.Errorf("Summarize(100).LowerBound = %d, want %d", got, tc.want)
			}
			w.apply(t, p)
			// The target drops a deleted user's memberships itself; the world does not.
			for _, g := range w.groups {
				g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return w.users[id] == nil })
			}
			if p2 := compute(w, desired, tc.opts); !p2.Empty() || p2.LowerBound(100) != 0 {
				t.Errorf("second plan: got %+v (lower bound %d), want empty", p2.Changes, p2.LowerBound(100))
			}
		})
	}
}

// addsTo makes an empty owned group whose desired members are users from..to-1.
func addsTo(from, to int) func(*world, *scim.Snapshot, []string) {
	return func(w *world, d *scim.Snapshot, ids []string) {
		w.addGroup("g", "G", true)
		d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(from, to)}}
	}
}

// removesFrom makes an owned group holding the first n users, none of them desired in it.
func removesFrom(n int) func(*world, *scim.Snapshot, []string) {
	return func(w *world, d *scim.Snapshot, ids []string) {
		w.addGroup("g", "G", true, ids[:n]...)
		d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G"}}
	}
}

// newGroup desires a new group of the first n (existing) users.
func newGroup(n int) func(*world, *scim.Snapshot, []string) {
	return func(w *world, d *scim.Snapshot, ids []string) {
		d.Groups = []scim.Group{{ExternalID: "g", DisplayName: "G", Members: exts(0, n)}}
	}
}

// TestLowerBoundOtherBatchSizes checks that the batch size is the one passed in (and 100 when
// none is): 250 adds are 3 PATCHes of 100, 5 of 50, 250 of 1.
func TestLowerBoundOtherBatchSizes(t *testing.T) {
	w, desired, _ := lbWorld(250)
	addsTo(0, 250)(w, &desired, nil)
	p := compute(w, desired, Options{})
	for _, tc := range []struct{ max, want int }{{0, 3}, {100, 3}, {50, 5}, {1, 250}, {1000, 1}} {
		if got := p.LowerBound(tc.max); got != tc.want {
			t.Errorf("LowerBound(%d) = %d, want %d", tc.max, got, tc.want)
		}
	}
}
