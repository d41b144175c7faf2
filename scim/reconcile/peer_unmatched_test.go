package reconcile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// TestPeerLeaversWithAdoptUnmatched: people and a group that left the directory between the
// peer's last run and scimbridge's first are, with sync.adopt_unmatched, taken over and
// deprovisioned under the guards; objects without an externalId (made by hand) stay untouched.
func TestPeerLeaversWithAdoptUnmatched(t *testing.T) {
	for _, p := range []peer{peers[0], peers[2]} { // the shapes that carry an externalId
		for _, mode := range []plan.Deprovision{plan.DeprovisionDelete, plan.DeprovisionDisable} {
			t.Run(p.name+"/"+string(mode), func(t *testing.T) {
				e := newEnv(t)
				ctx := context.Background()
				v0 := directory(20, 3)
				v0.Groups = append(v0.Groups, scim.Group{ExternalID: "0g9999999", DisplayName: "Old Team", Members: []string{v0.Users[18].ExternalID}})
				fillAsPeer(t, e, p, v0, false)
				// Made by hand (no externalId): never taken.
				glass := person("", "breakglass")
				if _, err := e.client.CreateUser(ctx, glass, ""); err != nil {
					t.Fatal(err)
				}
				if _, err := e.client.CreateGroup(ctx, scim.Group{DisplayName: "AWSControlTowerAdmins"}, nil); err != nil {
					t.Fatal(err)
				}
				v1 := leave(v0, v0.Users[18].ExternalID, v0.Users[19].ExternalID)
				v1.Groups = v1.Groups[:3]
				e.set(v1)
				r := e.reconciler(func(c *reconcile.Config) {
					c.Plan.Adopt, c.Plan.AdoptUnmatched, c.Plan.Deprovision = p.adopt, true, mode
					c.Guards = plan.DefaultGuards
				})

				// scimbridge owns nothing yet: deprovisioning the leavers needs a person's consent.
				e.srv.Emu.ResetStats()
				res, err := r.RunOnce(ctx, reconcile.RunOptions{})
				var blocked *plan.BlockedError
				if !errors.As(err, &blocked) || writes(e.srv.Emu.Stats()) != 0 {
					t.Fatalf("first run: got %v with %d writes, want blocked with none\n%s", err, writes(e.srv.Emu.Stats()), planText(res.Plan))
				}
				users, groups := res.Plan.Deprovisions()
				if users != 2 || groups != 1 { // groups have no disable: the left group is deleted in both modes
					t.Fatalf("deprovisions: %d users, %d groups; want 2 and 1\n%s", users, groups, planText(res.Plan))
				}
				t.Logf("plan:\n%s", planText(res.Plan))

				e.srv.Emu.ResetStats()
				res = e.run(r, reconcile.RunOptions{AllowDeletes: users + groups})
				if got, lb := writes(e.srv.Emu.Stats()), int64(res.Plan.LowerBound(100)); got != lb {
					t.Errorf("adoption with leavers: %d writes, lower bound %d\n%s", got, lb, planText(res.Plan))
				}
				v := e.view()
				for _, leaver := range []string{"user00018@example.com", "user00019@example.com"} {
					u, ok := v.Users[leaver]
					switch mode {
					case plan.DeprovisionDelete:
						if ok {
							t.Errorf("leaver %s still there: %s", leaver, u)
						}
					case plan.DeprovisionDisable:
						if !ok || u[len(u)-5:] != "false" {
							t.Errorf("leaver %s: got %q, want disabled", leaver, u)
						}
					}
				}
				if _, ok := v.Groups["Old Team"]; ok {
					t.Errorf("the group that left is still there")
				}
				if _, ok := v.Users["breakglass@example.com"]; !ok {
					t.Errorf("the hand-made user was touched")
				}
				if _, ok := v.Groups["AWSControlTowerAdmins"]; !ok {
					t.Errorf("the hand-made group was touched")
				}
				// Converged: a full read plans nothing and leaves only the hand-made objects alone.
				next := e.run(r, reconcile.RunOptions{FullRead: true}).Plan
				if !next.Empty() || next.Adoptions() != 0 || next.UnmanagedUsers != 1 || next.UnmanagedGroups != 1 {
					t.Errorf("after adoption: unmanaged %d/%d\n%s", next.UnmanagedUsers, next.UnmanagedGroups, planText(next))
				}
				// A trusted run makes no request.
				e.srv.Emu.ResetStats()
				r2 := e.reconciler(func(c *reconcile.Config) {
					c.Plan.Adopt, c.Plan.AdoptUnmatched, c.Plan.Deprovision = p.adopt, true, mode
					c.FullReconcileEvery = time.Hour
				})
				if res := e.run(r2, reconcile.RunOptions{}); res.FullRead || total(e.srv.Emu.Stats()) != 0 {
					t.Errorf("trusted run after adoption: full read %v, %d requests\n%s", res.FullRead, total(e.srv.Emu.Stats()), planText(res.Plan))
				}
			})
		}
	}
}
