package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// TestSlicedPlanEqualsWholePlan is the property the selective runs' cost rests on: a run that
// names users and groups plans only the slice of the directory and of the state store that
// they can touch, and that plan equals planning everything and keeping the selection's changes.
// Random directories, random churn (renames, leavers, joiners, manager moves, membership
// moves, new and deleted groups), unowned objects that clash with source records, random
// selections (changed, unchanged, deleted and unknown ids); then the selections are applied
// through sliced runs and a full read afterwards plans nothing for what they covered.
func TestSlicedPlanEqualsWholePlan(t *testing.T) {
	seeds := []uint64{11, 12, 13, 14, 15, 16, 17, 18}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			c, st := e.client, e.st
			d := newLBDirectory(seed)
			cfg := reconcile.Config{
				Desired: func(context.Context) (scim.Snapshot, error) { return d.snapshot(), nil },
				Target:  c, Reader: c, State: st,
				FullReconcileEvery: time.Hour,
				Guards:             plan.Guards{MaxDeletes: -1, MaxDeletePercent: -1, MaxClearPercent: -1},
			}
			sliced, err := reconcile.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := reconcile.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			reconcile.PlanWhole(whole)
			if _, err := sliced.RunOnce(ctx, reconcile.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			d.churn()
			// Objects made by hand, which scimbridge does not own: one holds the name a source
			// user is renamed to, one the externalId of another source user, one the name a
			// source group is renamed to (clashes), and one stands alone.
			rng := d.rng
			for _, u := range []scim.User{
				{UserName: "taken@example.com", DisplayName: "By hand", GivenName: "B", FamilyName: "H", Active: true},
				{ExternalID: d.users[rng.IntN(len(d.users))].ExternalID, UserName: "hand-made@example.com", DisplayName: "By hand", GivenName: "B", FamilyName: "H", Active: true},
				{UserName: "alone@example.com", DisplayName: "Alone", GivenName: "A", FamilyName: "L", Active: true},
			} {
				if _, err := c.CreateUser(ctx, u, ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.CreateGroup(ctx, scim.Group{DisplayName: "Taken group"}, nil); err != nil {
				t.Fatal(err)
			}
			d.users[rng.IntN(len(d.users))].UserName = "TAKEN@example.com"
			d.groups[rng.IntN(len(d.groups))].DisplayName = "taken GROUP"
			// A full read records them as unowned, and applies everything but the clashes.
			if _, err := sliced.RunOnce(ctx, reconcile.RunOptions{FullRead: true}); err != nil {
				t.Fatal(err)
			}
			d.churn()
			nameMoves(d)
			snap := d.snapshot()
			ids := func(kind string) []string {
				var out []string
				if kind == scim.KindUser {
					for _, u := range snap.Users {
						out = append(out, u.ExternalID)
					}
				} else {
					for _, g := range snap.Groups {
						out = append(out, g.ExternalID)
					}
				}
				objs, err := st.Objects(ctx, state.Kind(kind))
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					out = append(out, o.ExternalID)
				}
				return append(out, "unknown-"+kind)
			}
			users, groups := ids(scim.KindUser), ids(scim.KindGroup)
			pick := func(from []string, n int) []string {
				var out []string
				for range n {
					out = append(out, from[rng.IntN(len(from))])
				}
				return out
			}
			ignore := cmpopts.IgnoreFields(plan.Plan{}, "UserIDs")
			var all reconcile.Selection
			for i := range 12 {
				sel := reconcile.Selection{Users: pick(users, rng.IntN(6)), Groups: pick(groups, rng.IntN(3))}
				if sel.Empty() {
					sel.Users = pick(users, 1)
				}
				sel = sel.Merge(reconcile.Selection{})
				all = all.Merge(sel)
				got, err := sliced.RunOnce(ctx, reconcile.RunOptions{DryRun: true, Only: &sel})
				if err != nil {
					t.Fatalf("selection %d (%s), sliced: %v", i, sel, err)
				}
				want, err := whole.RunOnce(ctx, reconcile.RunOptions{DryRun: true, Only: &sel})
				if err != nil {
					t.Fatalf("selection %d (%s), whole: %v", i, sel, err)
				}
				if got.FullRead || want.FullRead {
					t.Fatalf("selection %d: a dry run read the target (sliced %v, whole %v)", i, got.FullRead, want.FullRead)
				}
				if diff := cmp.Diff(got.Plan, want.Plan, ignore); diff != "" {
					t.Errorf("selection %d (%s): the sliced plan differs from the whole one (-sliced +whole):\n%s", i, sel, diff)
				}
			}
			// Applying the selections through sliced runs, then a sliced run selecting everything,
			// converges: a full read then plans nothing. (A selection may fail a record, such as a
			// rename into a name that an unselected user gives up: that is the selection's
			// meaning, planned alike by the whole plan above.)
			every := reconcile.Selection{Users: users, Groups: groups}.Merge(reconcile.Selection{})
			for _, sel := range []reconcile.Selection{{Users: all.Users}, {Groups: all.Groups}, every, every} {
				res, err := sliced.RunOnce(ctx, reconcile.RunOptions{Only: &sel})
				if err != nil && !errors.Is(err, reconcile.ErrPartial) {
					t.Fatalf("applying %s: %v (errors %v)", sel, err, res.Errors)
				}
			}
			res, err := whole.RunOnce(ctx, reconcile.RunOptions{DryRun: true, FullRead: true})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Plan.Empty() {
				t.Errorf("a full read after the sliced runs still plans %+v: updates %+v", res.Plan.Summarize(100), res.Plan.UpdateUsers)
			}
		})
	}
}

// nameMoves makes the renames whose plan depends on other users' names: a chain (a takes b's
// name, b a fresh one), a swap (c and e exchange names) and a joiner taking a leaver's name. A
// slice that holds a but not b must still see b holding the name.
func nameMoves(d *lbDirectory) {
	r := d.rng
	if len(d.users) < 8 {
		return
	}
	p := r.Perm(len(d.users))
	a, b, c, e, f := &d.users[p[0]], &d.users[p[1]], &d.users[p[2]], &d.users[p[3]], d.users[p[4]]
	a.UserName, b.UserName = b.UserName, fmt.Sprintf("fresh%05d@example.com", r.IntN(1e5))
	c.UserName, e.UserName = e.UserName, c.UserName
	d.users = slices.DeleteFunc(d.users, func(u scim.User) bool { return u.ExternalID == f.ExternalID })
	for i := range d.users {
		if d.users[i].Enterprise.Manager == f.ExternalID {
			d.users[i].Enterprise.Manager = ""
		}
	}
	for i := range d.groups {
		d.groups[i].Members = slices.DeleteFunc(slices.Clone(d.groups[i].Members), func(m string) bool { return m == f.ExternalID })
	}
	j := d.newUser()
	j.UserName = strings.ToUpper(f.UserName)
	d.users = append(d.users, j)
	if len(d.groups) >= 2 {
		g, h := &d.groups[0], &d.groups[1]
		g.DisplayName, h.DisplayName = h.DisplayName, g.DisplayName
	}
}
